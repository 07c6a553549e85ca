// Copies and file I/O on one chain of a ChainBatch, without a DescriptorChain, Reader or
// Writer per chain: ChainBatch.readInto/write/readFromFile/writeToFile. Each call finds its
// place in the chain's descriptor words from scratch (a chain has a few descriptors), then
// moves the bytes through the same code as Reader/Writer (cursor.ts), with one cursor of
// each kind per batch, made at its first use and re-aimed per call: no JavaScript runs
// between aiming it and the end of the transfer, and real Reader/Writer objects keep
// cursor.ts's property loads monomorphic. They belong to the batch, not to this module:
// a cursor holds the guest memory it last used, which must not outlive the batch (a
// vhost-user frontend's memory is unmapped only once nothing references it).
//
// Nothing in the words is trusted: they are public and writable. The chain's descriptors
// must lie within what the last pop stored; the byte totals are summed here, not read
// from the chain record; each buffer a copy touches is checked against guest memory, and
// the native preadv/pwritev checks every buffer itself.
import { u64Exact } from './address'
import { uint8Length, uint8Whole } from './bytes'
import { type Cursor, fileTransfer, pastEnd, transfer } from './cursor'
import { nextBuffer, VRING_DESC_F_WRITE } from './descriptor'
import { outOfRange, typeError, VirtioQueueError } from './errors'
import { newReader, newWriter, type Reader, type Writer } from './io'
import type { GuestMemory } from './memory'
import { BATCH_CHAIN_WORDS, BATCH_DESC_WORDS, BATCH_HEADER_WORDS, UNKNOWN_TOTAL } from './native'

/** A Reader or Writer re-aimed by {@link aim}: its fields are read-only only to callers. */
type Aimable = { -readonly [K in keyof Cursor]: Cursor[K] }

const NO_WORDS = new Uint32Array(0)

/** @internal A batch's cursors for its I/O calls, made at their first use. */
export interface BatchCursors {
  reader: Reader | null
  writer: Writer | null
}

/**
 * Aims the scratch cursor of direction `dir` (VRING_DESC_F_WRITE: writable buffers, 0:
 * readable ones) at byte `skip` of chain `i`'s buffers in that direction, and returns it.
 * `i` is a valid chain index of `words` (checked by the caller); `base` is the batch's
 * descriptorBase. With `check`, every buffer in that direction must be in guest memory
 * (InvalidChain otherwise; DetachedBuffer for a detached region).
 * @throws VirtioQueueError `InvalidChain` if the chain's descriptors are not within the
 *   descriptors the last pop stored (the words were changed) or, with `check`, a buffer is
 *   not in guest memory; RangeError `ERR_OUT_OF_RANGE` if `skip` is past the chain's bytes.
 */
function aim(
  cursors: BatchCursors,
  mem: GuestMemory,
  words: Uint32Array,
  base: number,
  i: number,
  dir: number,
  skip: number,
  check: boolean,
): Cursor {
  const c = BATCH_HEADER_WORDS + BATCH_CHAIN_WORDS * i
  const first = words[c + 1]!
  const count = words[c + 2]!
  const begin = base + BATCH_DESC_WORDS * first
  const end = begin + BATCH_DESC_WORDS * count
  if (first + count > words[1]! || end > words.length)
    throw new VirtioQueueError(
      `chain ${i}'s descriptors (${first} .. ${first + count - 1}) are not among the ${words[1]!} the last pop stored`,
      'InvalidChain',
    )
  let total = 0
  let at = end
  let offset = 0
  for (let o = nextBuffer(words, begin, end, dir); o < end; o = nextBuffer(words, o + BATCH_DESC_WORDS, end, dir)) {
    const len = words[o + 2]!
    if (check) {
      const addr = u64Exact(words, o)
      if (addr < 0 || !mem.covers(addr, len)) throw notInMemory(words, o, begin, i)
    }
    if (at === end && skip < total + len) {
      at = o
      offset = skip - total
    }
    total += len
  }
  if (skip > total)
    throw outOfRange(
      `cannot skip ${skip} bytes: chain ${i} has only ${total} ${dir === 0 ? 'readable' : 'writable'} bytes`,
    )
  let cursor: Aimable
  if (dir === 0) cursor = (cursors.reader ??= new newReader(mem, NO_WORDS, 0, 0, 0)) as unknown as Aimable
  else cursor = (cursors.writer ??= new newWriter(mem, NO_WORDS, 0, 0, 0)) as unknown as Aimable
  cursor.mem = mem
  cursor.words = words
  cursor.end = end
  cursor.total = total
  cursor.at = at
  cursor.offset = offset
  cursor.consumed = skip
  return cursor
}

/**
 * Copies chain `i`'s readable bytes from byte `skip` into `target`: as many as fit, or as
 * are left (0 at the end). Returns the count.
 */
export function batchReadInto(
  cursors: BatchCursors,
  mem: GuestMemory,
  words: Uint32Array,
  base: number,
  i: number,
  target: Uint8Array,
  skip: number,
): number {
  const len = uint8Length(target)
  if (len < 0) throw typeError('target', 'a Uint8Array', target)
  const c = aim(cursors, mem, words, base, i, 0, skip, true)
  const n = Math.min(len, c.total - skip)
  if (n > 0) transfer(c, uint8Whole(target, len, n), n, false)
  return n
}

/** Copies all of `bytes` into chain `i`'s writable bytes from byte `skip`; returns the count. */
export function batchWrite(
  cursors: BatchCursors,
  mem: GuestMemory,
  words: Uint32Array,
  base: number,
  i: number,
  bytes: Uint8Array,
  skip: number,
): number {
  const n = uint8Length(bytes)
  if (n < 0) throw typeError('bytes', 'a Uint8Array', bytes)
  const c = aim(cursors, mem, words, base, i, VRING_DESC_F_WRITE, skip, true)
  if (n > c.total - skip) throw pastEnd('write', n, c.total - skip)
  if (n > 0) transfer(c, uint8Whole(bytes, n, n), n, true)
  return n
}

/**
 * preadv (`toFile` false: into chain `i`'s writable bytes) or pwritev (from its readable
 * bytes) of `length` bytes (-1: all from `skip` on) from byte `skip`, at file `position`.
 * Returns the bytes moved. The native side checks `fd`, `position` and every buffer.
 */
export function batchFileIo(
  cursors: BatchCursors,
  mem: GuestMemory,
  words: Uint32Array,
  base: number,
  i: number,
  fd: number,
  position: number,
  skip: number,
  length: number,
  toFile: boolean,
): number {
  const c = batchFileSpan(cursors, mem, words, base, i, skip, length, toFile)
  return fileTransfer(c, fd, position, c.total - skip, toFile)
}

/**
 * The scratch cursor aimed at the `length` bytes (-1: all from `skip` on) from byte `skip`
 * of chain `i`'s writable (`toFile` false) or readable buffers, its budget (`total`) cut to
 * them: the span of a file transfer, for fileTransfer now or a FileIoBatch later.
 * @throws RangeError `ERR_OUT_OF_RANGE` if `length` is more than the bytes from `skip` on,
 *   and aim()'s errors.
 */
export function batchFileSpan(
  cursors: BatchCursors,
  mem: GuestMemory,
  words: Uint32Array,
  base: number,
  i: number,
  skip: number,
  length: number,
  toFile: boolean,
): Cursor {
  // The pop marks a direction with a buffer outside guest memory (UNKNOWN_TOTAL): only then
  // are its buffers checked here, so such a chain is InvalidChain as for readInto/write and
  // a Reader/Writer, not served in part where the native side finds the bytes it moves in
  // memory. A caller's lie in the record can only add this check; the native side checks
  // every byte it moves either way.
  const check = words[BATCH_HEADER_WORDS + BATCH_CHAIN_WORDS * i + (toFile ? 4 : 5)] === UNKNOWN_TOTAL
  const c = aim(cursors, mem, words, base, i, toFile ? 0 : VRING_DESC_F_WRITE, skip, check) as Aimable
  const left = c.total - skip
  const n = length < 0 ? left : length
  if (n > left) throw pastEnd(toFile ? 'read' : 'write', n, left)
  c.total = skip + n
  return c
}

function notInMemory(words: Uint32Array, o: number, begin: number, i: number): VirtioQueueError {
  const addr = (BigInt(words[o + 1]!) << 32n) | BigInt(words[o]!)
  return new VirtioQueueError(
    `descriptor ${(o - begin) / BATCH_DESC_WORDS} of chain ${i} (0x${addr.toString(16)}, ${words[o + 2]!} bytes) is not in guest memory`,
    'InvalidChain',
  )
}
