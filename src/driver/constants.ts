/**
 * Split-virtqueue constants from the virtio 1.x specification. They are
 * grouped in one frozen object (instead of top-level names) so they cannot
 * collide with the constants of the package's main entry.
 */
export const DriverConstants = Object.freeze({
  /** Descriptor flag: the chain continues in the descriptor named by `next` (1). */
  VIRTQ_DESC_F_NEXT: 1,
  /** Descriptor flag: the buffer is device-writable; otherwise device-readable (2). */
  VIRTQ_DESC_F_WRITE: 2,
  /** Descriptor flag: the buffer holds an indirect descriptor table (4). */
  VIRTQ_DESC_F_INDIRECT: 4,
  /** Available-ring flag: the driver asks the device not to interrupt; only without event idx (1). */
  VRING_AVAIL_F_NO_INTERRUPT: 1,
  /** Used-ring flag: the device asks the driver not to notify; only without event idx (1). */
  VRING_USED_F_NO_NOTIFY: 1,
  /** Feature bit number of VIRTIO_F_INDIRECT_DESC (28). */
  VIRTIO_F_INDIRECT_DESC: 28,
  /** Feature bit number of VIRTIO_F_EVENT_IDX (29). */
  VIRTIO_F_EVENT_IDX: 29,
  /** Bytes per descriptor: `le64 addr, le32 len, le16 flags, le16 next` (16). */
  DESC_SIZE: 16,
  /** Bytes per used-ring element: `le32 id, le32 len` (8). */
  USED_ELEM_SIZE: 8,
  /** Required alignment of the descriptor table (16). */
  DESC_TABLE_ALIGN: 16,
  /** Required alignment of the available ring (2). */
  AVAIL_RING_ALIGN: 2,
  /** Required alignment of the used ring (4). */
  USED_RING_ALIGN: 4,
  /** Used-ring alignment of the legacy (virtio 0.9.5) contiguous layout (4096). */
  LEGACY_USED_RING_ALIGN: 4096,
  /** Largest split-virtqueue size (32768). */
  MAX_QUEUE_SIZE: 32768,
} as const)

/**
 * The spec's `vring_need_event(event_idx, new_idx, old_idx)`:
 * `(u16)(new - event - 1) < (u16)(new - old)`, i.e. whether `eventIdx` lies in
 * the window `[oldIdx, newIdx)` of 16-bit ring indices (wrap-around aware).
 * The driver applies it to `avail_event` before kicking; a device applies it
 * to `used_event` before interrupting.
 * @param eventIdx the other side's event index (u16)
 * @param newIdx the index after the update (u16)
 * @param oldIdx the index at the previous notification decision (u16)
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff)
}
