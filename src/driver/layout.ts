import { DriverConstants as C } from './constants'
import { checkAddr, checkAligned, checkInt, checkPow2 } from './errors'

/** Options of {@link splitQueueLayout}. */
export interface SplitQueueLayoutOptions {
  /**
   * Alignment of the used ring: a power of two in [4, 2^20]. Default 4 (the
   * virtio 1.x minimum); 4096 gives the legacy contiguous layout.
   */
  usedAlign?: number
  /**
   * Accepted for symmetry with {@link SplitQueueDriverOptions}; it does not
   * change the layout, because the spec's ring sizes (6 + 2*size and
   * 6 + 8*size) always reserve `used_event` and `avail_event`.
   */
  eventIdx?: boolean
}

/** Guest addresses of the three parts of a split virtqueue. Spreads into {@link SplitQueueDriverOptions}. */
export interface SplitQueueLayout {
  /** Queue size (number of descriptors). */
  size: number
  /** Descriptor table: 16-byte aligned, 16*size bytes. */
  descTable: number
  /** Available ring: 2-byte aligned, 6 + 2*size bytes (flags, idx, ring[size], used_event). */
  availRing: number
  /** Used ring: `usedAlign`-aligned, 6 + 8*size bytes (flags, idx, ring[size], avail_event). */
  usedRing: number
  /** First address after the used ring. */
  end: number
}

/** Bytes of the descriptor table of a `size`-entry queue (16*size). */
export function descTableBytes(size: number): number {
  return C.DESC_SIZE * size
}
/** Bytes of the available ring of a `size`-entry queue (6 + 2*size). */
export function availRingBytes(size: number): number {
  return 6 + 2 * size
}
/** Bytes of the used ring of a `size`-entry queue (6 + 8*size). */
export function usedRingBytes(size: number): number {
  return 6 + C.USED_ELEM_SIZE * size
}

/** Rounds `value` up to a multiple of the power of two `align` (exact for safe integers). */
export function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align
}

/**
 * Lays a split virtqueue out contiguously from `base`: descriptor table, then
 * available ring, then the used ring aligned up to `options.usedAlign`.
 * @param base start address; must be 16-byte aligned
 * @param size queue size: a power of two in [1, 32768]
 * @throws RangeError naming `base`, `size` or `options.usedAlign`
 */
export function splitQueueLayout(base: number, size: number, options: SplitQueueLayoutOptions = {}): SplitQueueLayout {
  checkAddr(base, 'base')
  checkAligned(base, C.DESC_TABLE_ALIGN, 'base')
  checkPow2(size, 'size', C.MAX_QUEUE_SIZE)
  const usedAlign = options.usedAlign ?? C.USED_RING_ALIGN
  checkPow2(usedAlign, 'options.usedAlign', 1 << 20)
  checkInt(usedAlign, 'options.usedAlign', C.USED_RING_ALIGN, 1 << 20)
  const descTable = base
  const availRing = descTable + descTableBytes(size)
  const usedRing = alignUp(availRing + availRingBytes(size), usedAlign)
  const end = usedRing + usedRingBytes(size)
  checkAddr(end, 'base (end of the queue)')
  return { size, descTable, availRing, usedRing, end }
}
