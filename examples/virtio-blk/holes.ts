// Deallocating and zeroing ranges of the disk image, for DISCARD and WRITE_ZEROES, with
// virtio-queue/file's fallocate(2) (Linux): punchHoleSync (PUNCH_HOLE | KEEP_SIZE) and
// zeroRangeSync (ZERO_RANGE, or its fallbacks). Node's fs has no fallocate.
//
// The synchronous forms, like the rest of this device's I/O (ChainBatch.readFromFile /
// writeToFile): a punch is a system call of microseconds for small ranges (8-25 µs for
// 4 KiB, 60-150 µs for 1 MiB here: README, "Block-device files") where an awaited punchHole costs a threadpool round trip of 50 µs or
// more; but a large range blocks the event loop while the file system frees it (tens of
// milliseconds for 64 MiB). A device that completes requests asynchronously should call
// punchHole / zeroRange for large ranges instead.
//
// Where the file system cannot punch holes (a SystemError with code EOPNOTSUPP) or this is
// not Linux (ENOSYS), ranges are zeroed by writing zeros instead: ZERO_FILL_FALLBACK. The
// guest sees the same data (a punched hole reads as zeros), the file just keeps its blocks.
//
// In your project, import from 'virtio-queue/file' instead of '../../file'.
import * as fs from 'node:fs'

import { punchHoleSync, SystemError, zeroRangeSync } from '../../file'

/** How a range is deallocated. */
export type HoleMethod = 'punch-hole' | 'zero-fill fallback'
export const PUNCH_HOLE: HoleMethod = 'punch-hole'
export const ZERO_FILL_FALLBACK: HoleMethod = 'zero-fill fallback'

/** Zeros written per writev call: IOV_MAX views of one shared zero buffer. */
const ZERO_CHUNK = 1 << 20
let zeros: Buffer | null = null

/**
 * Makes `length` bytes at `offset` of `fd` read as zeros, allocated (WRITE_ZEROES without
 * unmap): fallocate's ZERO_RANGE where there is fallocate, else zeros written.
 */
export function writeZeroes(fd: number, offset: number, length: number): void {
  if (length === 0) return
  try {
    zeroRangeSync(fd, offset, length)
    return
  } catch (e) {
    if (!(e instanceof SystemError && e.code === 'ENOSYS')) throw e
  }
  writeZeroBytes(fd, offset, length)
}

/** Writes `length` zero bytes at `offset` of `fd` (the fallback off Linux). */
function writeZeroBytes(fd: number, offset: number, length: number): void {
  zeros ??= Buffer.alloc(ZERO_CHUNK)
  let pos = offset
  const end = offset + length
  while (pos < end) {
    const views: Buffer[] = []
    for (let at = pos; at < end && views.length < 1024; at += ZERO_CHUNK)
      views.push(zeros.subarray(0, Math.min(ZERO_CHUNK, end - at)))
    let rest: Buffer[] = views
    while (rest.length > 0) {
      const n = fs.writevSync(fd, rest, pos)
      pos += n
      rest = dropBytes(rest, n)
    }
  }
}

function dropBytes(views: Buffer[], n: number): Buffer[] {
  let i = 0
  let left = n
  while (i < views.length && left >= views[i]!.length) left -= views[i++]!.length
  const rest = views.slice(i)
  if (left > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(left)
  return rest
}

/** Punches holes in one open file; falls back to zero-filling for good once punching is unsupported. */
export class HolePuncher {
  readonly #fd: number
  #method: HoleMethod
  /** Why the fallback is in use (null while punching works). */
  fallbackReason: string | null = null

  /** `probe`: check now that this file can be punched (a no-op punch past its end). */
  constructor(fd: number, sizeBytes: number, options: { probe?: boolean } = {}) {
    this.#fd = fd
    this.#method = PUNCH_HOLE
    if (options.probe !== false) {
      // Past the end with KEEP_SIZE: deallocates nothing, but fails like a real punch would.
      let why: string | null
      try {
        why = this.#punch(sizeBytes, 4096)
      } catch (e) {
        why = (e as Error).message // a file that cannot be punched at all (not open for writing, ...)
      }
      if (why !== null) this.#fallBack(why)
    }
  }

  /** How ranges are deallocated from now on. */
  get method(): HoleMethod {
    return this.#method
  }

  /** Whether holes are really punched (what write_zeroes_may_unmap should say). */
  get punches(): boolean {
    return this.#method === PUNCH_HOLE
  }

  /** Deallocates `length` bytes at `offset`; they read as zeros afterwards, either way. */
  punch(offset: number, length: number): HoleMethod {
    if (length === 0) return this.#method
    if (this.#method === PUNCH_HOLE) {
      const why = this.#punch(offset, length)
      if (why === null) return PUNCH_HOLE
      this.#fallBack(why)
    }
    writeZeroBytes(this.#fd, offset, length)
    return ZERO_FILL_FALLBACK
  }

  /**
   * punchHoleSync; null on success, else why punching is not possible here. Other
   * failures (EBADF, EIO, ...) are thrown: the request fails, the method stays.
   */
  #punch(offset: number, length: number): string | null {
    try {
      punchHoleSync(this.#fd, offset, length)
      return null
    } catch (e) {
      // EOPNOTSUPP: this file system cannot punch holes; ENOSYS: not Linux.
      if (e instanceof SystemError && (e.code === 'EOPNOTSUPP' || e.code === 'ENOSYS')) return e.message
      throw e
    }
  }

  #fallBack(why: string): void {
    this.#method = ZERO_FILL_FALLBACK
    this.fallbackReason = why
  }
}
