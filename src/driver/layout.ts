import { DriverConstants as C } from './constants'
import { checkAddr, checkAligned, checkInt, checkPow2 } from './errors'
import type { SplitQueueLayout, SplitQueueLayoutOptions } from '../../driver'

export type { SplitQueueLayout, SplitQueueLayoutOptions }

/** Bytes of the descriptor table of a queue of `size` descriptors. */
export function descTableBytes(size: number): number {
  return C.DESC_SIZE * size
}
/** Bytes of the available ring (flags, idx, ring[size], used_event). */
export function availRingBytes(size: number): number {
  return 6 + 2 * size
}
/** Bytes of the used ring (flags, idx, ring[size] of 8-byte elements, avail_event). */
export function usedRingBytes(size: number): number {
  return 6 + C.USED_ELEM_SIZE * size
}

/** Rounds `value` up to a multiple of the power of two `align` (exact for safe integers). */
export function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align
}

/**
 * Lays out a split virtqueue contiguously from `base`: descriptor table, then
 * available ring, then (aligned to `usedAlign`) the used ring.
 *
 * @throws RangeError when `base` is not 16-byte aligned, `size` is not a power
 *   of two in [1, 32768], or `usedAlign` is not a power of two in [4, 2^20].
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
