// The batch boundary, for device loops that want native speed: one call pops many chains
// into a ChainBatch's typed array, read here through its accessors and I/O members (their
// I/O in batch-io.ts); the used side, UsedBatch, is in used-batch.ts.
import { toCount, u64Number } from './address'
import { type BatchCursors, batchFileIo, batchFileSpan, batchReadInto, batchWrite } from './batch-io'
import type { Cursor } from './cursor'
import { VRING_DESC_F_WRITE } from './descriptor'
import { rangeError, typeError } from './errors'
import type { GuestMemory } from './memory'
import { BATCH_CHAIN_WORDS, BATCH_DESC_WORDS, BATCH_HEADER_WORDS, UNKNOWN_TOTAL } from './native'

// Module constants rather than `native.X` loads in every accessor: optimized code folds
// them, and the accessors' bytecode stays small enough for V8 to inline them all.
const HEADER_WORDS = BATCH_HEADER_WORDS
const CHAIN_WORDS = BATCH_CHAIN_WORDS
const DESC_WORDS = BATCH_DESC_WORDS
const F_WRITE = VRING_DESC_F_WRITE

/** Word offset of the descriptor area for `maxChains` chains. */
export function descriptorBase(maxChains: number): number {
  return HEADER_WORDS + CHAIN_WORDS * maxChains
}

/**
 * Reusable storage for chains popped by {@link QueueGuard.popChains}. Chain `i` (0 ≤ i <
 * `count`) has head {@link head}(i) and descriptors `descriptorStart(i)` ..
 * `descriptorStart(i) + descriptorCount(i) - 1`, read with {@link addr}, {@link len},
 * {@link flags} and {@link next}. Each pop overwrites the previous contents. An index
 * outside the last pop (i ≥ count, j ≥ descriptorTotal, negative or fractional) throws a
 * RangeError naming it (a TypeError when it is not a number).
 *
 * The accessors read {@link words}, whose layout is public, for loops that want no
 * call per field (see {@link HEADER_WORDS}).
 *
 * @example The batch path: one native call pops many chains, one adds their used entries
 * ```ts
 * import { ChainBatch, UsedBatch } from 'virtio-queue'
 *
 * const batch = new ChainBatch(128)
 * const used = new UsedBatch(128)
 * for (let n = guard.popChains(batch); n > 0; n = guard.popChains(batch)) {
 *   for (let i = 0; i < n; i++) {
 *     const first = batch.descriptorStart(i)
 *     // The request header: the first descriptor's buffer.
 *     const header = guard.memory.read(batch.addr(first), 16)
 *     used.push(batch.head(i), serve(header, batch, first, batch.descriptorCount(i)))
 *   }
 *   guard.addUsedBatch(used)
 * }
 * ```
 */
export class ChainBatch {
  /**
   * Words before the chain table (4): `[chains, descriptors, room needed, avail idx seen]`. Room
   * needed is non-zero only when the first chain did not fit: the descriptors to retry with,
   * enough for any chain of the queue (size + 65535), not that chain's own length.
   */
  static readonly HEADER_WORDS: number = HEADER_WORDS
  /**
   * Words per chain (6), from word `HEADER_WORDS + CHAIN_WORDS * i`: `[head, first descriptor,
   * descriptor count, status, readable bytes, writable bytes]` (a byte total is 0xffffffff
   * where readableBytes()/writableBytes() give -1).
   */
  static readonly CHAIN_WORDS: number = CHAIN_WORDS
  /**
   * Words per descriptor (4), from word `descriptorBase + DESC_WORDS * j`: `[addr low 32 bits,
   * addr high 32 bits, len, flags | next << 16]`.
   */
  static readonly DESC_WORDS: number = DESC_WORDS

  // Private storage: popChains reads these (a private-field read runs no user code, so an
  // accessor or Proxy cannot change the batch under a pop), and the public getters expose them.
  #words: Uint32Array
  readonly #max: number
  readonly #base: number
  // The guest memory of the queue the last pop was from: what the chains' addresses mean.
  #mem: GuestMemory | null = null
  // The cursors of readInto/write/readFromFile/writeToFile (batch-io.ts).
  readonly #cursors: BatchCursors = { reader: null, writer: null }

  /** Room for `maxChains` chains (1 to 65535) and `maxDescriptors` descriptors (default `4 * maxChains`; grown on demand). */
  constructor(maxChains = 128, maxDescriptors?: number) {
    this.#max = toCount(maxChains, 'maxChains', 0xffff)
    if (this.#max === 0) throw rangeError('maxChains', 'it must be an integer from 1 to 65535; received 0')
    const descs = maxDescriptors === undefined ? this.#max * 4 : toCount(maxDescriptors, 'maxDescriptors', 1 << 24)
    this.#base = descriptorBase(this.#max)
    this.#words = new Uint32Array(this.#base + DESC_WORDS * Math.max(1, descs))
  }

  /** Most chains one pop stores. */
  get maxChains(): number {
    return this.#max
  }

  /** Word index of descriptor 0 in {@link words}: `HEADER_WORDS + CHAIN_WORDS * maxChains`. */
  get descriptorBase(): number {
    return this.#base
  }

  /**
   * The batch's storage, written by each pop (layout: {@link HEADER_WORDS},
   * {@link CHAIN_WORDS}, {@link DESC_WORDS}). A pop may replace it with a larger array
   * (a chain with more descriptors than it holds): read it after each popChains(). Writing
   * it changes nothing in the queue.
   */
  get words(): Uint32Array {
    return this.#words
  }

  /** Chains stored by the last pop. */
  get count(): number {
    return this.#words[0]!
  }

  /** Descriptors stored by the last pop. */
  get descriptorTotal(): number {
    return this.#words[1]!
  }

  /**
   * @internal The storage of `value` if it is a ChainBatch made by this module, else null:
   * a private-field test, so no getter, Proxy trap or `Symbol.hasInstance` runs.
   */
  static wordsOf(value: unknown): Uint32Array | null {
    return typeof value === 'object' && value !== null && #words in value ? (value as ChainBatch).#words : null
  }

  // Each accessor checks its index inline (a private helper method costs about twice as
  // much on this hot path): an index outside the last pop reads stale or no data.
  // For a number, `(i >>> 0) === i` is the whole test for an integer from 0 to 2^32 - 1
  // (NaN, fractions and negatives fail it).

  /** Head index of chain `i`: what {@link UsedBatch.push} and {@link QueueGuard.addUsed} take. */
  head(i: number): number {
    const w = this.#words
    if (!(typeof i === 'number' && i >>> 0 === i && i < w[0]!)) throw badIndex('i', i, w[0]!, 'chains')
    return w[HEADER_WORDS + CHAIN_WORDS * i]!
  }

  /** Index (for addr/len/flags/next) of chain `i`'s first descriptor. */
  descriptorStart(i: number): number {
    const w = this.#words
    if (!(typeof i === 'number' && i >>> 0 === i && i < w[0]!)) throw badIndex('i', i, w[0]!, 'chains')
    return w[HEADER_WORDS + CHAIN_WORDS * i + 1]!
  }

  /** Number of descriptors of chain `i` (an indirect table's entries in place of the table). */
  descriptorCount(i: number): number {
    const w = this.#words
    if (!(typeof i === 'number' && i >>> 0 === i && i < w[0]!)) throw badIndex('i', i, w[0]!, 'chains')
    return w[HEADER_WORDS + CHAIN_WORDS * i + 2]!
  }

  /** 0 for a complete chain, else the reason it was cut short (index into CHAIN_STOP_REASONS). */
  status(i: number): number {
    const w = this.#words
    if (!(typeof i === 'number' && i >>> 0 === i && i < w[0]!)) throw badIndex('i', i, w[0]!, 'chains')
    return w[HEADER_WORDS + CHAIN_WORDS * i + 3]!
  }

  /**
   * Total length of chain `i`'s device-readable buffers, or -1 when one of them is not in
   * guest memory (a reader() over it would throw InvalidChain) or the total is 2^32 - 1
   * or more. Computed by the pop, so reading it costs no walk over the descriptors.
   */
  readableBytes(i: number): number {
    const w = this.#words
    if (!(typeof i === 'number' && i >>> 0 === i && i < w[0]!)) throw badIndex('i', i, w[0]!, 'chains')
    const t = w[HEADER_WORDS + CHAIN_WORDS * i + 4]!
    return t === UNKNOWN_TOTAL ? -1 : t
  }

  /** Total length of chain `i`'s device-writable buffers, or -1 as for {@link readableBytes}. */
  writableBytes(i: number): number {
    const w = this.#words
    if (!(typeof i === 'number' && i >>> 0 === i && i < w[0]!)) throw badIndex('i', i, w[0]!, 'chains')
    const t = w[HEADER_WORDS + CHAIN_WORDS * i + 5]!
    return t === UNKNOWN_TOTAL ? -1 : t
  }

  /** Guest address of descriptor `j` (exact below 2^53; see Descriptor.addr). */
  addr(j: number): number {
    const w = this.#words
    if (!(typeof j === 'number' && j >>> 0 === j && j < w[1]!)) throw badIndex('j', j, w[1]!, 'descriptors')
    const o = this.#base + DESC_WORDS * j
    return u64Number(w, o)
  }

  /** Buffer length of descriptor `j`. */
  len(j: number): number {
    const w = this.#words
    if (!(typeof j === 'number' && j >>> 0 === j && j < w[1]!)) throw badIndex('j', j, w[1]!, 'descriptors')
    return w[this.#base + DESC_WORDS * j + 2]!
  }

  /** VRING_DESC_F_* flags of descriptor `j`. */
  flags(j: number): number {
    const w = this.#words
    if (!(typeof j === 'number' && j >>> 0 === j && j < w[1]!)) throw badIndex('j', j, w[1]!, 'descriptors')
    return w[this.#base + DESC_WORDS * j + 3]! & 0xffff
  }

  /** The `next` field of descriptor `j`. */
  next(j: number): number {
    const w = this.#words
    if (!(typeof j === 'number' && j >>> 0 === j && j < w[1]!)) throw badIndex('j', j, w[1]!, 'descriptors')
    return w[this.#base + DESC_WORDS * j + 3]! >>> 16
  }

  /** Whether descriptor `j`'s buffer is device-writable. */
  isWriteOnly(j: number): boolean {
    const w = this.#words
    if (!(typeof j === 'number' && j >>> 0 === j && j < w[1]!)) throw badIndex('j', j, w[1]!, 'descriptors')
    return (w[this.#base + DESC_WORDS * j + 3]! & F_WRITE) !== 0
  }

  /**
   * Copies chain `i`'s device-readable bytes, from byte `skip` of them on (default 0), into
   * `target`: all of `target` when that many are left, else what is left (0 at the end).
   * Returns the count. Reader.readInto without a Reader: no object is made, so a device
   * can read a request header into a reused scratch array. The length is the array's real
   * one, whatever its `length` property says.
   * @throws VirtioQueueError `InvalidChain` if one of the chain's readable buffers is not in
   *   guest memory, or its descriptors are not among those the last pop stored (the words
   *   were changed); `DetachedBuffer` if guest memory was detached.
   * @throws RangeError `ERR_OUT_OF_RANGE` if `i` is not a chain of the last pop, or `skip`
   *   is not an integer from 0 to the readable bytes; TypeError if `target` is not a
   *   Uint8Array or `i`/`skip` not a number.
   */
  readInto(i: number, target: Uint8Array, skip = 0): number {
    const mem = this.#chainMemory(i)
    return batchReadInto(this.#cursors, mem, this.#words, this.#base, i, target, toCount(skip, 'skip'))
  }

  /**
   * Copies all of `bytes` into chain `i`'s device-writable bytes, from byte `skip` of them on
   * (default 0), and returns its length: Writer.write without a Writer (all or nothing).
   * @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if they do not fit; otherwise as
   *   {@link readInto}, for the writable buffers.
   */
  write(i: number, bytes: Uint8Array, skip = 0): number {
    const mem = this.#chainMemory(i)
    return batchWrite(this.#cursors, mem, this.#words, this.#base, i, bytes, toCount(skip, 'skip'))
  }

  /**
   * Fills `length` of chain `i`'s device-writable bytes (default: all from `skip` on), from
   * byte `skip` of them on (default 0), with one `preadv` from the file `fd` at byte
   * `position`, straight into guest memory; returns the bytes read: `length`, or fewer when
   * the file ends first (0 at its end). {@link Writer.readFromFile} without a Writer, through
   * the same native call, with the same checks and errors: no object is made per call.
   * `EINTR` is retried and a short read continued; the file's own offset is not used or
   * moved. Linux only (elsewhere `ENOSYS`).
   *
   * @example A virtio-blk read (IN): data into all but the last writable byte, the status byte
   * ```ts
   * const data = batch.writableBytes(i) - 1
   * const n = batch.readFromFile(i, diskFd, sector * 512, 0, data)
   * status[0] = n === data ? 0 : 1 // VIRTIO_BLK_S_OK, or IOERR past the end of the image
   * batch.write(i, status, data)
   * used.push(batch.head(i), data + 1)
   * ```
   * @throws {@link SystemError} with the errno's name as `code` (`EBADF`, `EISDIR`, `EINVAL`,
   *   ...), `errno` negative and `syscall: 'preadv'`, when the call failed before reading
   *   anything (`ENOSYS` off Linux); VirtioQueueError `DetachedBuffer` if guest memory was
   *   detached, `InvalidChain` if a buffer is not in guest memory or the chain's descriptors
   *   are not among those the last pop stored. Nothing moves then.
   * @throws RangeError `ERR_OUT_OF_RANGE` if `i` is not a chain of the last pop, `skip` is
   *   past the writable bytes, `length` more than the bytes from `skip` on, or `position`,
   *   `length` or `fd` is not a non-negative integer in range; TypeError if one is not a number.
   */
  readFromFile(i: number, fd: number, position: number, skip = 0, length?: number): number {
    const mem = this.#chainMemory(i)
    const s = toCount(skip, 'skip')
    const n = length === undefined ? -1 : toCount(length, 'length')
    return batchFileIo(this.#cursors, mem, this.#words, this.#base, i, fd, toCount(position, 'position'), s, n, false)
  }

  /**
   * Writes `length` of chain `i`'s device-readable bytes (default: all from `skip` on), from
   * byte `skip` of them on (default 0; 16 skips a virtio-blk request header), into the file
   * `fd` at byte `position` with one `pwritev`, and returns the bytes written: `length`,
   * unless the system call wrote fewer (call again from `skip` + that). {@link
   * Reader.writeToFile} without a Reader; errors as {@link readFromFile} (`syscall:
   * 'pwritev'`), for the readable buffers.
   */
  writeToFile(i: number, fd: number, position: number, skip = 0, length?: number): number {
    const mem = this.#chainMemory(i)
    const s = toCount(skip, 'skip')
    const n = length === undefined ? -1 : toCount(length, 'length')
    return batchFileIo(this.#cursors, mem, this.#words, this.#base, i, fd, toCount(position, 'position'), s, n, true)
  }

  /**
   * @internal The span of readFromFile (`toFile` false) or writeToFile on chain `i` of
   * `batch`, checked as they check it, for a {@link FileIoBatch}: a scratch cursor of the
   * batch over its words and memory, its budget cut to the bytes to move (`total - consumed`).
   * The caller uses it before any other call on the batch.
   */
  static fileSpan(batch: unknown, i: number, skip: number, length: number | undefined, toFile: boolean): Cursor {
    if (!(typeof batch === 'object' && batch !== null && #words in batch))
      throw typeError('batch', 'a ChainBatch', batch)
    const b = batch as ChainBatch
    const mem = b.#chainMemory(i)
    const s = toCount(skip, 'skip')
    const n = length === undefined ? -1 : toCount(length, 'length')
    return batchFileSpan(b.#cursors, mem, b.#words, b.#base, i, s, n, toFile)
  }

  /** The memory of chain `i` of the last pop, after checking `i` (as the accessors do). */
  #chainMemory(i: number): GuestMemory {
    const w = this.#words
    // Also below maxChains: the count word is writable, and chain records end there.
    const count = Math.min(w[0]!, this.#max)
    const mem = this.#mem
    if (!(typeof i === 'number' && i >>> 0 === i && i < count && mem !== null))
      throw badIndex('i', i, mem === null ? 0 : count, 'chains')
    return mem
  }

  /** @internal Records the guest memory of the queue a pop into `batch` is from (no user code runs). */
  static popFrom(batch: ChainBatch, memory: GuestMemory): void {
    batch.#mem = memory
  }

  /** @internal Grows the descriptor area to hold at least `descriptors`; returns the new storage. */
  grow(descriptors: number): Uint32Array {
    this.#words = new Uint32Array(this.#base + DESC_WORDS * descriptors)
    return this.#words
  }
}

function badIndex(name: string, value: unknown, count: number, what: string): Error {
  if (typeof value !== 'number') return typeError(name, 'of type number', value)
  const allowed =
    count === 0
      ? `the last pop stored no ${what}`
      : `it must be an integer from 0 to ${count - 1} (the last pop stored ${count} ${what})`
  return rangeError(name, `${allowed}; received ${value}`)
}
