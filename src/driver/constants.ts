/**
 * Split-virtqueue constants from the virtio 1.x specification (section 2.7),
 * grouped in one frozen object so they cannot collide with the names exported
 * by the package's main (device-side) entry.
 */
export const DriverConstants = Object.freeze({
  /** Descriptor flag: the chain continues in the descriptor named by `next`. */
  VIRTQ_DESC_F_NEXT: 1,
  /** Descriptor flag: the buffer is device-writable (otherwise device-readable). */
  VIRTQ_DESC_F_WRITE: 2,
  /** Descriptor flag: the buffer holds an indirect descriptor table. */
  VIRTQ_DESC_F_INDIRECT: 4,
  /** Available-ring flag: the driver asks the device not to interrupt (event idx off). */
  VRING_AVAIL_F_NO_INTERRUPT: 1,
  /** Used-ring flag: the device asks the driver not to notify (event idx off). */
  VRING_USED_F_NO_NOTIFY: 1,
  /** Feature bit number of VIRTIO_F_INDIRECT_DESC. */
  VIRTIO_F_INDIRECT_DESC: 28,
  /** Feature bit number of VIRTIO_F_EVENT_IDX. */
  VIRTIO_F_EVENT_IDX: 29,
  /** Size in bytes of one descriptor (`le64 addr, le32 len, le16 flags, le16 next`). */
  DESC_SIZE: 16,
  /** Size in bytes of one used-ring element (`le32 id, le32 len`). */
  USED_ELEM_SIZE: 8,
  /** Required alignment of the descriptor table. */
  DESC_TABLE_ALIGN: 16,
  /** Required alignment of the available ring. */
  AVAIL_RING_ALIGN: 2,
  /** Required alignment of the used ring. */
  USED_RING_ALIGN: 4,
  /** Used-ring alignment of the legacy (virtio 0.9.5) contiguous layout. */
  LEGACY_USED_RING_ALIGN: 4096,
  /** Largest queue size a split virtqueue may have. */
  MAX_QUEUE_SIZE: 32768,
} as const)

/**
 * The spec's `vring_need_event(event_idx, new_idx, old_idx)`: true when
 * `event` lies in the half-open window `[old, new)` of 16-bit ring indices,
 * i.e. `(u16)(new - event - 1) < (u16)(new - old)`.
 *
 * Used for both directions: the driver checks `avail_event` before kicking,
 * the device checks `used_event` before interrupting.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff)
}
