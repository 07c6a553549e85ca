// Deallocating a range of the disk image (DISCARD, and WRITE_ZEROES with unmap):
// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE). Node's fs has no fallocate
// and this example takes no native dependency, so it runs util-linux's fallocate(1)
// on the open file (through /proc/<pid>/fd/<fd>, which also reaches an unlinked
// temporary image). That costs a process spawn (a few ms, blocking the event loop)
// per request, which is tolerable for discards, rare and large, but it is the part a
// native fallocate binding would replace.
//
// Where fallocate(1) is missing (not Linux, no util-linux) or the file system cannot
// punch holes, the range is zeroed instead: ZERO_FILL_FALLBACK. The guest sees the same
// data (a punched hole reads as zeros), the file just keeps its blocks.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'

/** How a range is deallocated. */
export type HoleMethod = 'fallocate(1) punch-hole' | 'zero-fill fallback'
export const PUNCH_HOLE: HoleMethod = 'fallocate(1) punch-hole'
export const ZERO_FILL_FALLBACK: HoleMethod = 'zero-fill fallback'

/** Zeros written per writev call: IOV_MAX views of one shared zero buffer. */
const ZERO_CHUNK = 1 << 20
let zeros: Buffer | null = null

/** Writes `length` zero bytes at `offset` of `fd` (allocating them). */
export function writeZeroes(fd: number, offset: number, length: number): void {
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

/** Punches holes in one open file; falls back to zero-filling for good once punching fails. */
export class HolePuncher {
  readonly #fd: number
  #method: HoleMethod
  /** Why the fallback is in use (null while punching works). */
  fallbackReason: string | null = null

  /** `probe`: check now that fallocate(1) can punch this file (a no-op punch past its end). */
  constructor(fd: number, sizeBytes: number, options: { probe?: boolean } = {}) {
    this.#fd = fd
    this.#method = PUNCH_HOLE
    if (options.probe !== false) {
      // Past the end with KEEP_SIZE: deallocates nothing, but fails like a real punch would.
      const why = this.#fallocate(sizeBytes, 4096)
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
      const why = this.#fallocate(offset, length)
      if (why === null) return PUNCH_HOLE
      this.#fallBack(why)
    }
    writeZeroes(this.#fd, offset, length)
    return ZERO_FILL_FALLBACK
  }

  /** Runs fallocate(1); null on success, else why it failed. */
  #fallocate(offset: number, length: number): string | null {
    const r = spawnSync(
      'fallocate',
      ['--punch-hole', '--offset', String(offset), '--length', String(length), `/proc/${process.pid}/fd/${this.#fd}`],
      { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] },
    )
    if (r.error) return `fallocate(1) could not run: ${r.error.message}`
    if (r.status !== 0) return `fallocate(1) failed: ${r.stderr.trim() || `exit ${r.status}`}`
    return null
  }

  #fallBack(why: string): void {
    this.#method = ZERO_FILL_FALLBACK
    this.fallbackReason = why
  }
}
