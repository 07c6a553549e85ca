// The cursor behind Reader and Writer: a position in a chain's descriptor words
// (the batch the chain was popped into) and a byte budget. Copies go through
// GuestMemory.readInto/write, whose single-region fast path allocates nothing, so
// making a cursor builds no list of pieces; splitting one moves a position.
import { u64Number } from './address'
import { uint8Buffer, uint8ByteOffset } from './bytes'
import { nextBuffer } from './descriptor'
import { needsLinux, outOfRange, rangeError, systemError, VirtioQueueError } from './errors'
import type { GuestMemory } from './memory'
import { BATCH_DESC_WORDS, CALL_AREA, native } from './native'

const Uint8ArrayCtor = Uint8Array

/** The cursor state of a Reader or Writer (their `@internal` fields). */
export interface Cursor {
  readonly mem: GuestMemory
  readonly words: Uint32Array
  /** Word offset past the chain's last descriptor. */
  readonly end: number
  /** The WRITE flag of the descriptors this cursor uses (0 for readable ones). */
  readonly dir: number
  /** Bytes this cursor may use in all, `consumed` included (lowered by splitAt). */
  total: number
  /**
   * Word offset of the current descriptor, and bytes of it already used. `offset` may equal
   * the descriptor's length: the cursor moves to the next descriptor lazily, at the next
   * transfer, so a request that ends exactly at a descriptor's end costs no walk.
   */
  at: number
  offset: number
  consumed: number
}

/** The first descriptor at or after word `at` the cursor uses: its direction, not empty. */
export function nextDescriptor(c: Cursor, at: number): number {
  return nextBuffer(c.words, at, c.end, c.dir)
}

/**
 * Copies the `n` bytes of `bytes` (a real Uint8Array whose real length is `n`, at most the
 * bytes left) between the stream and guest memory: `toGuest` writes into guest memory.
 * The cursor moves only once every copy succeeded.
 */
export function transfer(c: Cursor, bytes: Uint8Array, n: number, toGuest: boolean): void {
  if (n === 0) return
  const w = c.words
  const mem = c.mem
  let at = c.at
  let offset = c.offset
  let len = w[at + 2]!
  if (offset === len) {
    at = nextDescriptor(c, at + BATCH_DESC_WORDS)
    offset = 0
    len = w[at + 2]!
  }
  if (n <= len - offset) {
    // Within one descriptor (the common case): one copy, cursor updated after it succeeded.
    const addr = u64Number(w, at) + offset
    if (toGuest) mem.write(addr, bytes)
    else mem.readInto(addr, bytes)
    c.at = at
    c.offset = offset + n
    c.consumed += n
    return
  }
  // Several descriptors: covers() throws DetachedBuffer for a detached region, so
  // checking every piece first means nothing is copied to or from a stale view.
  for (let p = at, left = n + offset; left > 0; p = nextDescriptor(c, p + BATCH_DESC_WORDS)) {
    mem.covers(u64Number(w, p), w[p + 2]!)
    left -= w[p + 2]!
  }
  // The real backing store and offset, read once (the buffer getter is a runtime call).
  const ab = uint8Buffer(bytes)
  const base = uint8ByteOffset(bytes)
  let done = 0
  for (;;) {
    if (offset === len) {
      at = nextDescriptor(c, at + BATCH_DESC_WORDS)
      offset = 0
      len = w[at + 2]!
    }
    const k = Math.min(n - done, len - offset)
    const addr = u64Number(w, at) + offset
    const part = new Uint8ArrayCtor(ab, base + done, k)
    if (toGuest) mem.write(addr, part)
    else mem.readInto(addr, part)
    done += k
    offset += k
    if (done === n) break
  }
  c.at = at
  c.offset = offset
  c.consumed += n
}

/** The cursor of a file transfer where there is no call area (reused: no JS runs meanwhile). */
const SPAN = new Uint32Array(6)

/**
 * Puts the span of a transfer of `n` bytes from the cursor (`[at, offset, end, dir, n,
 * toFile]`) where the native file I/O calls read it: the call area's first six slots, or,
 * where there is no call area, a Uint32Array the caller passes as the span argument (it is
 * returned then; null means the call area). The slots are 32-bit: a larger `n` is refused
 * here as the call area's check refuses it, so a Uint32Array slot never wraps a caller's
 * length (only tampered words hold 2^32 bytes or more; the crate caps a chain below that).
 * @throws RangeError `ERR_OUT_OF_RANGE` if `n` is 2^32 or more.
 */
export function putSpan(c: Cursor, n: number, toFile: boolean): Uint32Array | null {
  if (n > 0xffffffff) throw rangeError('length', `it must be an integer from 0 to 4294967295; received ${n}`)
  // Called once per request on a disk's path: six numbers the native side validates, not a
  // typed array it would have to inspect.
  const s = CALL_AREA ?? SPAN
  s[0] = c.at
  s[1] = c.offset
  s[2] = c.end
  s[3] = c.dir
  s[4] = n
  s[5] = toFile ? 1 : 0
  return s === SPAN ? SPAN : null
}

/**
 * Moves up to `n` bytes (at most the bytes left) between the file `fd` at `position` and
 * the cursor's buffers in one native call (preadv, or pwritev when `toFile`), then moves the
 * cursor past the bytes moved. Returns them: `n`, or fewer when a read reached the end of
 * the file. The native side checks the fd, the position and every buffer against guest
 * memory; `-errno` from it becomes a SystemError. Off Linux there is no native side: `ENOSYS`.
 */
export function fileTransfer(c: Cursor, fd: number, position: number, n: number, toFile: boolean): number {
  const call = toFile ? 'pwritev' : 'preadv'
  const io = native.chainFileIo
  if (io === undefined) throw needsLinux(call, `${call}(2) on guest memory (Writer.readFromFile, Reader.writeToFile)`)
  c.mem.checkAttached()
  const span = putSpan(c, n, toFile)
  const moved = span !== null ? io(c.mem.handle, c.words, fd, position, span) : io(c.mem.handle, c.words, fd, position)
  if (moved < 0) throw systemError(moved, call, `${call} of ${n} bytes at offset ${position} of fd ${fd}`)
  skip(c, moved)
  return moved
}

/** Moves the cursor `n` bytes on (at most the bytes left), as a transfer of `n` bytes would. */
function skip(c: Cursor, n: number): void {
  seek(c, n, c)
  c.consumed += n
}

/**
 * Puts `to` (`c` itself, or a cursor of the same kind over the same words) at the position
 * `n` bytes past `c`'s (at most the bytes `c` has left). Whole descriptors first; the
 * position may end exactly at a descriptor's end, which transfer() handles as it does for a
 * cursor that used a descriptor up.
 */
function seek(c: Cursor, n: number, to: Cursor): void {
  const w = c.words
  let at = c.at
  let offset = c.offset
  let left = n
  while (left > w[at + 2]! - offset) {
    left -= w[at + 2]! - offset
    at = nextDescriptor(c, at + BATCH_DESC_WORDS)
    offset = 0
  }
  to.at = at
  to.offset = offset + left
}

/**
 * The guest address of the next `n` bytes when the current descriptor holds them all, else
 * -1 (a field straddling two descriptors). The caller checked that `n` bytes are left.
 */
export function fieldAddress(c: Cursor, n: number): number {
  const w = c.words
  let at = c.at
  let offset = c.offset
  if (offset === w[at + 2]) {
    at = nextDescriptor(c, at + BATCH_DESC_WORDS)
    offset = 0
    // The same position, one descriptor on: nothing was used.
    c.at = at
    c.offset = 0
  }
  return n <= w[at + 2]! - offset ? u64Number(w, at) + offset : -1
}

/** Counts `n` bytes used by a field read or written at fieldAddress(). */
export function advance(c: Cursor, n: number): void {
  c.offset += n
  c.consumed += n
}

/**
 * The crate's `split_at`: `c` keeps the first `offset` bytes of what it has left, and
 * `rest` (a fresh cursor of the same kind over the same words, with nothing consumed) is
 * moved to the byte after them and given the rest. The caller checked `offset`.
 */
export function splitInto(c: Cursor, rest: Cursor, offset: number): void {
  const left = c.total - c.consumed
  seek(c, offset, rest)
  rest.total = left - offset
  c.total = c.consumed + offset
}

export function splitOutOfBounds(offset: number, left: number): VirtioQueueError {
  return new VirtioQueueError(
    `cannot split at byte ${offset}: only ${left} bytes are left (the crate's Error::SplitOutOfBounds)`,
    'SplitOutOfBounds',
  )
}

export function pastEnd(op: 'read' | 'write', n: number, left: number): RangeError {
  return outOfRange(
    `cannot ${op} ${n} bytes: only ${left} ${op === 'read' ? 'readable' : 'writable'} bytes are left in the chain`,
  )
}
