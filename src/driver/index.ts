/**
 * `virtio-queue/driver`: a guest-driver simulator for split virtqueues, used
 * to exercise the device-side queue in tests, benchmarks and demos.
 */
export { DriverConstants, vringNeedEvent } from './constants'
export { DriverError } from './errors'
export type { DriverErrorCode } from './errors'
export type { DriverMemory } from './memory'
export {
  splitQueueLayout,
  descTableBytes,
  availRingBytes,
  usedRingBytes,
  alignUp,
} from './layout'
export type { SplitQueueLayout, SplitQueueLayoutOptions } from './layout'
export { GuestAllocator } from './allocator'
export { SplitQueueDriver } from './split-queue-driver'
export type {
  AddChainOptions,
  DriverBuffer,
  IndirectTableAllocator,
  IndirectTablePlacement,
  RawDescriptor,
  RawUsedElem,
  SplitQueueDriverOptions,
  UsedElement,
} from './types'
export { setUpDeviceQueue } from './transport'
export type { DeviceQueueSetup, QueueLayoutLike, SetUpDeviceQueueOptions } from './transport'
