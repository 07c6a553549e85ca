/**
 * `virtio-queue/driver` — a guest-driver simulator for virtio split
 * virtqueues (virtio 1.x, section 2.7 "Split Virtqueues").
 *
 * It plays the part of a guest's virtio driver against the device-side queue
 * of the main entry: it lays out and zero-initialises the rings, allocates
 * descriptors from a free list, publishes descriptor chains on the available
 * ring, decides whether the device must be notified (kicked), consumes the
 * used ring and suppresses interrupts. Raw helpers write arbitrary (hostile)
 * values for fuzz and negative tests.
 *
 * All addresses are guest physical addresses given as JS numbers (safe
 * integers); all multi-byte fields are little-endian. Argument errors are
 * `TypeError` / `RangeError` whose message names the argument; state errors
 * are {@link DriverError} with a `code`. It exercises the device-side queue in
 * tests, benchmarks and demos.
 *
 * @example
 * ```ts
 * import { GuestAllocator, SplitQueueDriver, splitQueueLayout } from 'virtio-queue/driver'
 * const layout = splitQueueLayout(0x10000, 256)
 * const allocator = new GuestAllocator(0x100000, 0x100000)
 * const q = new SplitQueueDriver(memory, { ...layout, eventIdx: true, allocator })
 * const head = q.addChain([{ addr: req, len: 16 }, { addr: data, len: 512, writable: true }], { token: 'r1' })
 * if (q.kick()) device.notify()
 * for (let u = q.popUsed(); u !== null; u = q.popUsed()) console.log(u.head, u.len, u.token)
 * ```
 *
 * @module virtio-queue/driver
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
