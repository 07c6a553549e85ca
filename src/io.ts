// Readers and writers over a chain's buffers: the crate's Reader and Writer (reads,
// writes, typed fields, split_at), except that a buffer may span two adjacent guest
// memory regions. The cursor they share lives in cursor.ts.
//
// Reader and Writer are two plain classes sharing module functions rather than
// subclasses of a common cursor: V8 constructs derived classes through a generic
// stub, which cost more than everything else a reader() or writer() call does.
// Buffer from node:buffer, not the global: in Node the global is a getter, which the
// JIT does not fold away (it cost ~10 ns per Buffer.allocUnsafe on the read path).
import { Buffer } from 'node:buffer'
import { toCount, toUint } from './address'
import { uint8Length, uint8Whole } from './bytes'
import {
  advance,
  type Cursor,
  fieldAddress,
  fileTransfer,
  nextDescriptor,
  pastEnd,
  splitInto,
  splitOutOfBounds,
  transfer,
} from './cursor'
import { VRING_DESC_F_WRITE } from './descriptor'
import { rangeError, typeError } from './errors'
import type { GuestMemory } from './memory'
import { BATCH_DESC_WORDS } from './native'

// Scratch for a field straddling two descriptors: one array per width, so a transfer
// copies exactly the field (no user code runs between filling and using them).
const S2 = new Uint8Array(2)
const S4 = new Uint8Array(4)
const S8 = new Uint8Array(8)
const S2V = new DataView(S2.buffer)
const S4V = new DataView(S4.buffer)
const S8V = new DataView(S8.buffer)
const U64_MAX = 0xffffffffffffffffn

/**
 * Reads a chain's device-readable buffers in order, as one stream: the crate's `Reader`
 * (from {@link DescriptorChain.reader}). It is a copy cursor over guest memory; the chain's
 * readable bytes are read once each, front to back.
 *
 * @example
 * ```ts
 * const r = chain.reader()
 * const header = r.read(16) // a Buffer; throws a RangeError, reading nothing, if fewer are left
 * const payload = Buffer.alloc(r.availableBytes())
 * r.readInto(payload)
 * ```
 */
export class Reader {
  // `declare`d fields, all assigned in the constructor: no class-field initializer
  // function, so constructing one is a few stores V8 inlines into the caller.
  /** @internal */ declare readonly mem: GuestMemory
  /** @internal */ declare readonly words: Uint32Array
  /** @internal */ declare readonly end: number
  /** @internal */ declare readonly dir: number
  /** @internal */ declare total: number
  /** @internal */ declare at: number
  /** @internal */ declare offset: number
  /** @internal */ declare consumed: number

  /** Readers come from {@link DescriptorChain.reader}. */
  // Made through `newReader`: over the readable descriptors among `count` from word
  // `firstWord` of `words`, which DescriptorChain checked lie in guest memory and hold
  // `total` bytes.
  private constructor(mem: GuestMemory, words: Uint32Array, firstWord: number, count: number, total: number) {
    this.mem = mem
    this.words = words
    this.end = firstWord + BATCH_DESC_WORDS * count
    this.dir = 0
    this.total = total
    this.offset = 0
    this.consumed = 0
    this.at = nextDescriptor(this, firstWord)
  }

  /** Bytes left to read (the crate's `available_bytes`). */
  availableBytes(): number {
    return this.total - this.consumed
  }

  /** Bytes read so far by this reader (the crate's `bytes_read`). */
  bytesRead(): number {
    return this.consumed
  }

  /**
   * Reads exactly `length` bytes into a new Buffer (the crate's `read_exact`).
   * @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer are left, or `length`
   *   is not a non-negative integer; TypeError if it is not a number.
   */
  read(length: number): Buffer {
    const n = toCount(length, 'length')
    if (n > this.total - this.consumed) throw pastEnd('read', n, this.total - this.consumed)
    const out = Buffer.allocUnsafe(n)
    transfer(this, out, n, false)
    return out
  }

  /**
   * Reads up to `target.length` bytes into `target` and returns how many: all of `target`
   * when that many are left, else what is left (0 at the end). The crate's `io::Read::read`.
   * The length is the array's real one, whatever its `length` property says.
   * @throws TypeError `ERR_INVALID_ARG_TYPE` unless `target` is a Uint8Array (a Buffer is one).
   */
  readInto(target: Uint8Array): number {
    const len = uint8Length(target)
    if (len < 0) throw typeError('target', 'a Uint8Array', target)
    const n = Math.min(len, this.total - this.consumed)
    // Nothing left: return before making an empty view (a chain with no readable bytes).
    if (n > 0) transfer(this, uint8Whole(target, len, n), n, false)
    return n
  }

  /**
   * Reads a u8 (the crate's `read_obj::<u8>`).
   * @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) at the end of the chain.
   */
  readU8(): number {
    need(this, 1, 'read')
    const v = this.mem.readU8(fieldAddress(this, 1))
    advance(this, 1)
    return v
  }

  /**
   * Reads a little-endian u16 (the crate's `read_obj::<Le16>`); it may straddle two
   * descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer than 2
   * bytes are left.
   */
  readU16(): number {
    need(this, 2, 'read')
    const a = fieldAddress(this, 2)
    if (a < 0) {
      transfer(this, S2, 2, false)
      return S2V.getUint16(0, true)
    }
    const v = this.mem.readU16(a)
    advance(this, 2)
    return v
  }

  /**
   * Reads a little-endian u32 (the crate's `read_obj::<Le32>`); it may straddle two
   * descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer than 4
   * bytes are left.
   */
  readU32(): number {
    need(this, 4, 'read')
    const a = fieldAddress(this, 4)
    if (a < 0) {
      transfer(this, S4, 4, false)
      return S4V.getUint32(0, true)
    }
    const v = this.mem.readU32(a)
    advance(this, 4)
    return v
  }

  /**
   * Reads a little-endian u64 as a bigint (the crate's `read_obj::<Le64>`); it may straddle
   * two descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer than
   * 8 bytes are left.
   */
  readU64(): bigint {
    need(this, 8, 'read')
    const a = fieldAddress(this, 8)
    if (a < 0) {
      transfer(this, S8, 8, false)
      return S8V.getBigUint64(0, true)
    }
    const v = this.mem.readU64(a)
    advance(this, 8)
    return v
  }

  /**
   * Writes the next `length` readable bytes (default: all that are left) into the file `fd`
   * at byte `position`, with one `pwritev` on guest memory (no copy in JavaScript, no
   * Buffer per buffer), and returns the bytes written: `length`, unless the system call
   * wrote fewer (then call again for the rest). The reader moves past them. `EINTR` is
   * retried. The file's own offset is not used or moved (but on a file opened with
   * `O_APPEND`, Linux writes at its end whatever `position` says, as for Node's positional
   * `fs.write`). Linux only (elsewhere a {@link SystemError} `ENOSYS`).
   *
   * Each buffer's range is checked against guest memory natively, whatever the chain's
   * words say; `fd` must be an open file descriptor (an int32), `position` an integer
   * below 2^53.
   * @throws {@link SystemError} with the errno's name as `code` (`EBADF`, `ENOSPC`, `EINVAL`,
   *   ...), `errno` negative and `syscall: 'pwritev'`, as on Node's fs errors, when the call
   *   failed before writing anything; VirtioQueueError `DetachedBuffer` if guest memory was detached; `InvalidChain` if a
   *   buffer is not in guest memory. Nothing moves then.
   * @throws RangeError `ERR_OUT_OF_RANGE` if `length` is more than the bytes left, or
   *   `position`, `length` or `fd` is not a non-negative integer in range; TypeError if one
   *   is not a number.
   */
  writeToFile(fd: number, position: number, length?: number): number {
    const left = this.total - this.consumed
    const n = length === undefined ? left : toCount(length, 'length')
    if (n > left) throw pastEnd('read', n, left)
    return fileTransfer(this, fd, toCount(position, 'position'), n, true)
  }

  /**
   * Splits this reader at `offset` bytes of what it has left (the crate's `split_at`): this
   * reader keeps the first `offset` bytes, and the returned reader reads the rest, with its
   * own cursor and counters (`bytesRead()` 0; this reader's is unchanged). `splitAt(0)`
   * leaves this reader nothing to read, `splitAt(availableBytes())` returns an empty reader.
   * Either part can be split again. The split may fall inside a descriptor.
   * @throws VirtioQueueError `SplitOutOfBounds` if `offset > availableBytes()`;
   *   `DetachedBuffer` if guest memory was detached.
   * @throws RangeError / TypeError if `offset` is not a non-negative integer.
   */
  splitAt(offset: number): Reader {
    const n = toCount(offset, 'offset')
    this.mem.checkAttached()
    if (n > this.total - this.consumed) throw splitOutOfBounds(n, this.total - this.consumed)
    // Over no descriptors until splitInto places it at this reader's byte `n`.
    const rest = new Reader(this.mem, this.words, this.end, 0, 0)
    splitInto(this, rest, n)
    return rest
  }
}

/**
 * Writes a chain's device-writable buffers in order, as one stream: the crate's `Writer`
 * (from {@link DescriptorChain.writer}). It is a copy cursor over guest memory; each
 * writable byte is written at most once, front to back.
 *
 * @example
 * ```ts
 * const w = chain.writer()
 * w.write(data) // throws a RangeError, writing nothing, if it does not fit
 * w.writeU8(0) // status byte
 * guard.addUsed(chain.headIndex, w.bytesWritten())
 * ```
 */
export class Writer {
  // `declare`d fields, all assigned in the constructor: no class-field initializer
  // function, so constructing one is a few stores V8 inlines into the caller.
  /** @internal */ declare readonly mem: GuestMemory
  /** @internal */ declare readonly words: Uint32Array
  /** @internal */ declare readonly end: number
  /** @internal */ declare readonly dir: number
  /** @internal */ declare total: number
  /** @internal */ declare at: number
  /** @internal */ declare offset: number
  /** @internal */ declare consumed: number

  /** Writers come from {@link DescriptorChain.writer}. */
  // Made through `newWriter`: like Reader's, over the writable descriptors.
  private constructor(mem: GuestMemory, words: Uint32Array, firstWord: number, count: number, total: number) {
    this.mem = mem
    this.words = words
    this.end = firstWord + BATCH_DESC_WORDS * count
    this.dir = VRING_DESC_F_WRITE
    this.total = total
    this.offset = 0
    this.consumed = 0
    this.at = nextDescriptor(this, firstWord)
  }

  /** Bytes left to write (the crate's `available_bytes`). */
  availableBytes(): number {
    return this.total - this.consumed
  }

  /** Bytes written so far by this writer (the crate's `bytes_written`): the used length to report. */
  bytesWritten(): number {
    return this.consumed
  }

  /**
   * Writes all of `bytes` and returns its length (the crate's `write_all`). The length is
   * the array's real one, whatever its `length` property says.
   * @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if they do not fit.
   * @throws TypeError `ERR_INVALID_ARG_TYPE` unless `bytes` is a Uint8Array (a Buffer is one).
   */
  write(bytes: Uint8Array): number {
    const n = uint8Length(bytes)
    if (n < 0) throw typeError('bytes', 'a Uint8Array', bytes)
    if (n > this.total - this.consumed) throw pastEnd('write', n, this.total - this.consumed)
    if (n > 0) transfer(this, uint8Whole(bytes, n, n), n, true)
    return n
  }

  /**
   * Writes as much of `bytes` as fits and returns how many bytes that was: all of them, or
   * what is left, 0 when the writer is full (the crate's `io::Write::write`).
   * @throws TypeError `ERR_INVALID_ARG_TYPE` unless `bytes` is a Uint8Array (a Buffer is one).
   */
  writeSome(bytes: Uint8Array): number {
    const len = uint8Length(bytes)
    if (len < 0) throw typeError('bytes', 'a Uint8Array', bytes)
    const n = Math.min(len, this.total - this.consumed)
    if (n > 0) transfer(this, uint8Whole(bytes, len, n), n, true)
    return n
  }

  /**
   * Writes a u8 (the crate's `write_obj`).
   * @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if the writer is full, or
   *   `value` is not an integer in 0..255; TypeError if it is not a number.
   */
  writeU8(value: number): void {
    const v = toUint(value, 'value', 0xff)
    need(this, 1, 'write')
    this.mem.writeU8(fieldAddress(this, 1), v)
    advance(this, 1)
  }

  /**
   * Writes a little-endian u16 (the crate's `write_obj` of an `Le16`); it may straddle two
   * descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if fewer than 2
   * bytes are left, or `value` is not an integer in 0..65535; TypeError if not a number.
   */
  writeU16(value: number): void {
    const v = toUint(value, 'value', 0xffff)
    need(this, 2, 'write')
    const a = fieldAddress(this, 2)
    if (a < 0) {
      S2V.setUint16(0, v, true)
      transfer(this, S2, 2, true)
      return
    }
    this.mem.writeU16(a, v)
    advance(this, 2)
  }

  /**
   * Writes a little-endian u32 (the crate's `write_obj` of an `Le32`); it may straddle two
   * descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if fewer than 4
   * bytes are left, or `value` is not an integer in 0..2^32-1; TypeError if not a number.
   */
  writeU32(value: number): void {
    const v = toUint(value, 'value', 0xffffffff)
    need(this, 4, 'write')
    const a = fieldAddress(this, 4)
    if (a < 0) {
      S4V.setUint32(0, v, true)
      transfer(this, S4, 4, true)
      return
    }
    this.mem.writeU32(a, v)
    advance(this, 4)
  }

  /**
   * Writes a little-endian u64 (the crate's `write_obj` of an `Le64`): a bigint in
   * 0..2^64-1 or a safe-integer number; it may straddle two descriptors.
   * @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if fewer than 8 bytes are left,
   *   or `value` is out of range; TypeError if it is neither a bigint nor a number.
   */
  writeU64(value: bigint | number): void {
    let v: bigint
    if (typeof value === 'bigint') {
      if (value < 0n || value > U64_MAX) throw rangeError('value', `${value}n does not fit in 64 bits`)
      v = value
    } else {
      v = BigInt(toUint(value, 'value', Number.MAX_SAFE_INTEGER))
    }
    need(this, 8, 'write')
    const a = fieldAddress(this, 8)
    if (a < 0) {
      S8V.setBigUint64(0, v, true)
      transfer(this, S8, 8, true)
      return
    }
    this.mem.writeU64(a, v)
    advance(this, 8)
  }

  /**
   * Fills the next `length` writable bytes (default: all that are left) from the file `fd`
   * at byte `position`, with one `preadv` straight into guest memory (no copy in JavaScript,
   * no Buffer per buffer), and returns the bytes read: `length`, or fewer when the file
   * ends first (0 at its end). The writer moves past them, so `bytesWritten()` counts them.
   * `EINTR` is retried and a short read is continued until `length` or the end of the file.
   * The file's own offset is not used or moved. Linux only (elsewhere a {@link SystemError}
   * `ENOSYS`).
   *
   * Each buffer's range is checked against guest memory natively, whatever the chain's
   * words say; `fd` must be an open file descriptor (an int32), `position` an integer
   * below 2^53.
   * @example A virtio-blk read: data from the disk image, then the status byte
   * ```ts
   * const data = chain.writer()
   * const status = data.splitAt(data.availableBytes() - 1) // the last byte
   * const want = data.availableBytes()
   * const n = data.readFromFile(diskFd, sector * 512)
   * status.writeU8(n === want ? 0 : 1) // VIRTIO_BLK_S_OK, or IOERR past the end of the image
   * guard.addUsed(chain.headIndex, data.bytesWritten() + status.bytesWritten())
   * ```
   * @throws {@link SystemError} with the errno's name as `code` (`EBADF`, `EISDIR`, `EINVAL`,
   *   ...), `errno` negative and `syscall: 'preadv'`, as on Node's fs errors, when the call
   *   failed before reading anything; VirtioQueueError `DetachedBuffer` if guest memory was detached; `InvalidChain` if a
   *   buffer is not in guest memory. Nothing moves then.
   * @throws RangeError `ERR_OUT_OF_RANGE` if `length` is more than the bytes left, or
   *   `position`, `length` or `fd` is not a non-negative integer in range; TypeError if one
   *   is not a number.
   */
  readFromFile(fd: number, position: number, length?: number): number {
    const left = this.total - this.consumed
    const n = length === undefined ? left : toCount(length, 'length')
    if (n > left) throw pastEnd('write', n, left)
    return fileTransfer(this, fd, toCount(position, 'position'), n, false)
  }

  /**
   * Splits this writer at `offset` bytes of what it has left (the crate's `split_at`): this
   * writer keeps the first `offset` bytes, and the returned writer writes the rest, with its
   * own cursor and counters (`bytesWritten()` 0; this writer's is unchanged, so the used
   * length to report is the sum of the parts'). Splits compose and may fall inside a
   * descriptor. @throws VirtioQueueError `SplitOutOfBounds` if `offset > availableBytes()`;
   *   `DetachedBuffer` if guest memory was detached.
   * @throws RangeError / TypeError if `offset` is not a non-negative integer.
   */
  splitAt(offset: number): Writer {
    const n = toCount(offset, 'offset')
    this.mem.checkAttached()
    if (n > this.total - this.consumed) throw splitOutOfBounds(n, this.total - this.consumed)
    const rest = new Writer(this.mem, this.words, this.end, 0, 0)
    splitInto(this, rest, n)
    return rest
  }
}

/**
 * @internal The constructors of Reader and Writer, for DescriptorChain. They are private in
 * the public typings (streams come from chains), so other modules construct through these.
 */
export const newReader = Reader as unknown as new (
  mem: GuestMemory,
  words: Uint32Array,
  firstWord: number,
  count: number,
  total: number,
) => Reader
/** @internal See {@link newReader}. */
export const newWriter = Writer as unknown as new (
  mem: GuestMemory,
  words: Uint32Array,
  firstWord: number,
  count: number,
  total: number,
) => Writer

/** Throws unless `n` bytes are left; a field is read or written whole or not at all. */
function need(c: Cursor, n: number, op: 'read' | 'write'): void {
  if (n > c.total - c.consumed) throw pastEnd(op, n, c.total - c.consumed)
}
