// Readers and writers over a chain's buffers, like the crate's Reader/Writer,
// but a buffer may span two adjacent guest memory regions. A cursor walks the
// chain's descriptor words (the batch the chain was popped into) and copies
// through GuestMemory.readInto/write, whose single-region fast path allocates
// nothing: making a Reader or Writer builds no list of pieces.
//
// Reader and Writer are two plain classes sharing module functions rather than
// subclasses of a common cursor: V8 constructs derived classes through a generic
// stub, which cost more than everything else a reader() or writer() call does.
// Buffer from node:buffer, not the global: in Node the global is a getter, which the
// JIT does not fold away (it cost ~10 ns per Buffer.allocUnsafe on the read path).
import { Buffer } from 'node:buffer'
import { toCount, u64Number } from './address'
import { nextBuffer, VRING_DESC_F_WRITE } from './descriptor'
import { outOfRange, typeError } from './errors'
import type { GuestMemory } from './memory'
import { BATCH_DESC_WORDS } from './native'

/** The cursor state of a Reader or Writer (their internal fields). */
interface Cursor {
  readonly mem: GuestMemory
  readonly words: Uint32Array
  /** Word offset past the chain's last descriptor. */
  readonly end: number
  /** The WRITE flag of the descriptors this cursor uses (0 for readable ones). */
  readonly dir: number
  readonly total: number
  /** Word offset of the current descriptor, and bytes of it already used. */
  at: number
  offset: number
  consumed: number
}

/** The first descriptor at or after word `at` the cursor uses: its direction, not empty. */
function nextDescriptor(c: Cursor, at: number): number {
  return nextBuffer(c.words, at, c.end, c.dir)
}

/**
 * Copies between the stream and `bytes` (at most the bytes left): `toGuest` writes into
 * guest memory. The cursor moves past a used-up descriptor lazily, at the next transfer,
 * so a request that ends exactly at a descriptor's end costs no walk.
 */
function transfer(c: Cursor, bytes: Uint8Array, toGuest: boolean): void {
  const n = bytes.length
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
  // One read of .buffer (a runtime call in V8) for all the pieces.
  const ab = bytes.buffer
  const base = bytes.byteOffset
  let done = 0
  for (;;) {
    if (offset === len) {
      at = nextDescriptor(c, at + BATCH_DESC_WORDS)
      offset = 0
      len = w[at + 2]!
    }
    const k = Math.min(n - done, len - offset)
    const addr = u64Number(w, at) + offset
    // A plain Uint8Array view: a Buffer's subarray() goes through its species constructor,
    // several times slower.
    const part = new Uint8Array(ab, base + done, k)
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

/**
 * Reads a chain's device-readable buffers in order, as one stream (from
 * {@link DescriptorChain.reader}).
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
  /** @internal */ declare readonly total: number
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

  /** Bytes left to read. */
  availableBytes(): number {
    return this.total - this.consumed
  }

  /** Bytes read so far. */
  bytesRead(): number {
    return this.consumed
  }

  /**
   * Reads exactly `length` bytes.
   * @throws RangeError (reading nothing) if fewer are left.
   */
  read(length: number): Buffer {
    const n = toCount(length, 'length')
    if (n > this.availableBytes()) throw pastEnd('read', n, this.availableBytes())
    const out = Buffer.allocUnsafe(n)
    transfer(this, out, false)
    return out
  }

  /** Reads up to `target.length` bytes into `target`; returns how many. */
  readInto(target: Uint8Array): number {
    if (!(target instanceof Uint8Array)) throw typeError('target', 'a Uint8Array', target)
    const n = Math.min(target.length, this.availableBytes())
    // Nothing left: return before making an empty view (a chain with no readable bytes).
    if (n > 0) transfer(this, n === target.length ? target : target.subarray(0, n), false)
    return n
  }
}

/**
 * Writes a chain's device-writable buffers in order, as one stream (from
 * {@link DescriptorChain.writer}).
 *
 * @example
 * ```ts
 * const w = chain.writer()
 * w.write(data) // throws a RangeError, writing nothing, if it does not fit
 * w.write(Uint8Array.of(0)) // status byte
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
  /** @internal */ declare readonly total: number
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

  /** Bytes left to write. */
  availableBytes(): number {
    return this.total - this.consumed
  }

  /** Bytes written so far. */
  bytesWritten(): number {
    return this.consumed
  }

  /**
   * Writes all of `bytes`, returning its length.
   * @throws RangeError (writing nothing) if they do not fit.
   */
  write(bytes: Uint8Array): number {
    if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array', bytes)
    if (bytes.length > this.availableBytes()) throw pastEnd('write', bytes.length, this.availableBytes())
    transfer(this, bytes, true)
    return bytes.length
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

function pastEnd(op: string, n: number, left: number): RangeError {
  return outOfRange(
    `cannot ${op} ${n} bytes: only ${left} ${op === 'read' ? 'readable' : 'writable'} bytes are left in the chain`,
  )
}
