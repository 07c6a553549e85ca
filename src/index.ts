/**
 * virtio-queue: rust-vmm's `virtio-queue` (0.14) and `vm-memory` (0.16) crates for Node.js,
 * for the device side of virtio split virtqueues over Buffers mapped as guest memory.
 *
 * The data path: a JS call, one native call into the crate, the result. Chains are popped
 * in batches; {@link ChainBatch} and {@link UsedBatch} expose that boundary directly.
 *
 * Start with {@link GuestMemory} (guest RAM), {@link Queue} and its {@link QueueGuard} (the
 * crate's queue API), then {@link DescriptorChain}, {@link Reader} and {@link Writer}.
 * The guest-driver simulator is the `virtio-queue/driver` entry.
 *
 * @module virtio-queue
 */
export { GuestMemory } from './memory'
export type { GuestRegion, RegionBacking } from './memory'
export type { GuestAddressLike } from './address'
export { Queue } from './queue'
export { QueueGuard, AvailIter } from './guard'
export type { MemoryOrdering } from './guard'
export { DescriptorChain, CHAIN_STOP_REASONS } from './chain'
export type { ChainStopReason } from './chain'
export { Descriptor, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, VRING_DESC_F_INDIRECT } from './descriptor'
export { Reader, Writer } from './io'
export { ChainBatch } from './batch'
export { UsedBatch } from './used-batch'
export { FileIoBatch } from './file-io-batch'
export type { QueueState } from './state'
export { SystemError, VirtioQueueError } from './errors'
export type { SystemCall, SystemErrorCode, VirtioQueueErrorCode } from './errors'
export { PAGE_SIZE, ADDRESS_LIMIT } from './native'
