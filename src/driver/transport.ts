// What a transport (virtio-pci, virtio-mmio) does on the device side when the
// guest driver sets a queue up: it hands the device queue the size and ring
// addresses the driver chose, the negotiated event-idx feature, then ready.

/**
 * The device-side queue setters a transport uses; the package's `QueueGuard` has them all.
 */
export interface DeviceQueueSetup {
  /** Sets the queue size the driver chose. */
  setSize(size: number): void
  /** Sets the low and/or high 32 bits of the descriptor table address. */
  setDescTableAddress(low?: number | null, high?: number | null): void
  /** Sets the low and/or high 32 bits of the available ring address. */
  setAvailRingAddress(low?: number | null, high?: number | null): void
  /** Sets the low and/or high 32 bits of the used ring address. */
  setUsedRingAddress(low?: number | null, high?: number | null): void
  /** Turns VIRTIO_F_RING_EVENT_IDX handling on or off. */
  setEventIdx(enabled: boolean): void
  /** Marks the queue ready (or not). */
  setReady(ready: boolean): void
}

/** A queue's size and ring addresses: a {@link SplitQueueLayout} or a {@link SplitQueueDriver}. */
export interface QueueLayoutLike {
  /** Queue size. */
  readonly size: number
  /** Descriptor table address. */
  readonly descTable: number
  /** Available ring address. */
  readonly availRing: number
  /** Used ring address. */
  readonly usedRing: number
  /** Whether VIRTIO_F_EVENT_IDX is in use (a SplitQueueDriver has it). */
  readonly eventIdx?: boolean
}

/** Options of {@link setUpDeviceQueue}. */
export interface SetUpDeviceQueueOptions {
  /** VIRTIO_F_EVENT_IDX negotiated; default: `layout.eventIdx`, else false. */
  eventIdx?: boolean
  /** Mark the queue ready at the end (default true). */
  ready?: boolean
}

const TWO_32 = 2 ** 32

/**
 * Programs a device queue with a driver's queue layout, as a transport (virtio-pci,
 * virtio-mmio) does when the guest sets the queue up: the size, the three ring addresses
 * (as low and high 32-bit halves), event idx, then ready. Errors are the device queue's
 * (e.g. VirtioQueueError `InvalidSize`).
 */
export function setUpDeviceQueue(
  queue: DeviceQueueSetup,
  layout: QueueLayoutLike,
  options: SetUpDeviceQueueOptions = {},
): void {
  queue.setSize(layout.size)
  queue.setDescTableAddress(layout.descTable % TWO_32, Math.floor(layout.descTable / TWO_32))
  queue.setAvailRingAddress(layout.availRing % TWO_32, Math.floor(layout.availRing / TWO_32))
  queue.setUsedRingAddress(layout.usedRing % TWO_32, Math.floor(layout.usedRing / TWO_32))
  queue.setEventIdx(options.eventIdx ?? layout.eventIdx ?? false)
  queue.setReady(options.ready ?? true)
}
