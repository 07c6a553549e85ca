import { DriverError, checkAddr, checkInt, checkPow2 } from './errors'
import { alignUp } from './layout'

/** Largest alignment {@link GuestAllocator.alloc} accepts (1 GiB). */
const MAX_ALIGN = 1 << 30

/**
 * A first-fit allocator of guest-physical address ranges, for data buffers
 * and indirect descriptor tables. It hands out addresses only: it never
 * touches guest memory. Freed ranges are coalesced with their neighbours.
 *
 * Allocation is O(number of holes); fine for tests, benchmarks and demos.
 */
export class GuestAllocator {
  /** First address managed. */
  readonly base: number
  /** First address after the managed range. */
  readonly end: number
  // Sorted, non-overlapping, non-adjacent holes [holeStart[i], holeEnd[i]).
  private holeStart: number[] = []
  private holeEnd: number[] = []
  // Live allocations: start address -> length.
  private readonly live = new Map<number, number>()
  private allocatedBytes = 0

  /**
   * @param base first guest address managed (non-negative safe integer)
   * @param length number of bytes managed (≥ 1)
   * @throws RangeError / TypeError naming `base` or `length`
   */
  constructor(base: number, length: number) {
    checkAddr(base, 'base')
    checkInt(length, 'length', 1, Number.MAX_SAFE_INTEGER - base)
    this.base = base
    this.end = base + length
    this.reset()
  }

  /** Bytes managed in total (`end - base`). */
  get length(): number {
    return this.end - this.base
  }
  /** Bytes currently allocated (alignment padding excluded). */
  get bytesAllocated(): number {
    return this.allocatedBytes
  }
  /** Bytes currently free. */
  get bytesFree(): number {
    return this.length - this.allocatedBytes
  }
  /** Number of live allocations. */
  get allocationCount(): number {
    return this.live.size
  }

  /**
   * Allocates `size` bytes aligned to `align` from the lowest hole that fits.
   * @param size bytes (≥ 1)
   * @param align a power of two up to 2^30; default 8
   * @returns the start address
   * @throws DriverError `NO_MEMORY` when no hole fits; RangeError / TypeError for bad arguments
   */
  alloc(size: number, align = 8): number {
    checkInt(size, 'size', 1, Number.MAX_SAFE_INTEGER)
    checkPow2(align, 'align', MAX_ALIGN)
    const starts = this.holeStart
    const ends = this.holeEnd
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i]
      const e = ends[i]
      const a = alignUp(s, align)
      if (a + size > e) continue
      const tail = a + size
      // Replace hole i by its (possibly empty) front and back remainders.
      if (a > s && tail < e) {
        ends[i] = a
        starts.splice(i + 1, 0, tail)
        ends.splice(i + 1, 0, e)
      } else if (a > s) {
        ends[i] = a
      } else if (tail < e) {
        starts[i] = tail
      } else {
        starts.splice(i, 1)
        ends.splice(i, 1)
      }
      this.live.set(a, size)
      this.allocatedBytes += size
      return a
    }
    throw new DriverError(
      'NO_MEMORY',
      `cannot allocate ${size} bytes aligned to ${align} (${this.bytesFree} of ${this.length} bytes free, fragmented into ${starts.length} holes)`,
    )
  }

  /**
   * Frees the allocation that starts at `addr`.
   * @throws DriverError `BAD_FREE` if `addr` is not the start of a live allocation
   */
  free(addr: number): void {
    const size = this.live.get(addr)
    if (size === undefined) {
      throw new DriverError('BAD_FREE', `address ${String(addr)} is not a live allocation (double free?)`)
    }
    this.live.delete(addr)
    this.allocatedBytes -= size
    const end = addr + size
    const starts = this.holeStart
    const ends = this.holeEnd
    // First hole starting after addr.
    let lo = 0
    let hi = starts.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (starts[mid] < addr) lo = mid + 1
      else hi = mid
    }
    const mergePrev = lo > 0 && ends[lo - 1] === addr
    const mergeNext = lo < starts.length && starts[lo] === end
    if (mergePrev && mergeNext) {
      ends[lo - 1] = ends[lo]
      starts.splice(lo, 1)
      ends.splice(lo, 1)
    } else if (mergePrev) {
      ends[lo - 1] = end
    } else if (mergeNext) {
      starts[lo] = addr
    } else {
      starts.splice(lo, 0, addr)
      ends.splice(lo, 0, end)
    }
  }

  /** Length of the live allocation starting at `addr`, or `undefined`. */
  sizeOf(addr: number): number | undefined {
    return this.live.get(addr)
  }

  /** Frees everything. */
  reset(): void {
    this.live.clear()
    this.allocatedBytes = 0
    this.holeStart = [this.base]
    this.holeEnd = [this.end]
  }
}
