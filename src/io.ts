// Readers and writers over a chain's buffers, like the crate's Reader/Writer,
// but a buffer may span two adjacent guest memory regions. A cursor walks the
// chain's descriptor words (the batch the chain was popped into) and copies
// through GuestMemory.readInto/write, whose single-region fast path allocates
// nothing: making a Reader or Writer builds no list of pieces.
import { toCount } from './address'
import { typeError } from './errors'
import type { GuestMemory } from './memory'
import { BATCH_DESC_WORDS } from './native'

const TWO_32 = 2 ** 32
const F_WRITE = 2

class Cursor {
  readonly #mem: GuestMemory
  readonly #words: Uint32Array
  /** Word offset past the chain's last descriptor. */
  readonly #end: number
  /** The WRITE flag of the descriptors this cursor uses (0 for readable ones). */
  readonly #dir: number
  readonly #total: number
  /** Word offset of the current descriptor, and bytes of it already used. */
  #at: number
  #offset = 0
  protected consumed = 0

  /**
   * @internal Over the descriptors `firstWord, firstWord + 4, ...` (`count` of them) of
   * `words` in one direction, which DescriptorChain checked lie in guest memory and sum to `total` bytes.
   */
  constructor(mem: GuestMemory, words: Uint32Array, firstWord: number, count: number, writable: boolean, total: number) {
    this.#mem = mem
    this.#words = words
    this.#end = firstWord + BATCH_DESC_WORDS * count
    this.#dir = writable ? F_WRITE : 0
    this.#total = total
    this.#at = this.#next(firstWord)
  }

  /** Bytes left. */
  availableBytes(): number {
    return this.#total - this.consumed
  }

  /** The first descriptor at or after word `at` this cursor uses: its direction, not empty. */
  #next(at: number): number {
    const w = this.#words
    while (at < this.#end && ((w[at + 3]! & F_WRITE) !== this.#dir || w[at + 2] === 0)) at += BATCH_DESC_WORDS
    return at
  }

  /** Copies between the stream and `bytes` (at most availableBytes()): `toGuest` writes into guest memory. */
  protected transfer(bytes: Uint8Array, toGuest: boolean): void {
    const n = bytes.length
    if (n === 0) return
    const w = this.#words
    const mem = this.#mem
    let at = this.#at
    let offset = this.#offset
    let len = w[at + 2]!
    if (n > len - offset) {
      // Several descriptors: covers() throws DetachedBuffer for a detached region, so
      // checking every piece first means nothing is copied to or from a stale view.
      for (let p = at, left = n + offset; left > 0; p = this.#next(p + BATCH_DESC_WORDS)) {
        mem.covers(w[p + 1]! * TWO_32 + w[p]!, w[p + 2]!)
        left -= w[p + 2]!
      }
    }
    let done = 0
    for (;;) {
      const k = Math.min(n - done, len - offset)
      const addr = w[at + 1]! * TWO_32 + w[at]! + offset
      const part = k === n ? bytes : bytes.subarray(done, done + k)
      if (toGuest) mem.write(addr, part)
      else mem.readInto(addr, part)
      done += k
      offset += k
      if (offset === len) {
        at = this.#next(at + BATCH_DESC_WORDS)
        offset = 0
      }
      if (done === n) break
      len = w[at + 2]!
    }
    this.#at = at
    this.#offset = offset
    this.consumed += n
  }
}

/** Reads a chain's device-readable buffers in order. */
export class Reader extends Cursor {
  /** Bytes read so far. */
  bytesRead(): number {
    return this.consumed
  }

  /** Reads exactly `length` bytes; throws RangeError (reading nothing) if fewer are left. */
  read(length: number): Buffer {
    const n = toCount(length, 'length')
    if (n > this.availableBytes()) throw pastEnd('read', n, this.availableBytes())
    const out = Buffer.allocUnsafe(n)
    this.transfer(out, false)
    return out
  }

  /** Reads up to `target.length` bytes into `target`; returns how many. */
  readInto(target: Uint8Array): number {
    if (!(target instanceof Uint8Array)) throw typeError('target', 'a Uint8Array', target)
    const n = Math.min(target.length, this.availableBytes())
    this.transfer(n === target.length ? target : target.subarray(0, n), false)
    return n
  }
}

/** Writes a chain's device-writable buffers in order. */
export class Writer extends Cursor {
  /** Bytes written so far. */
  bytesWritten(): number {
    return this.consumed
  }

  /** Writes all of `bytes` and returns its length; throws RangeError (writing nothing) if they do not fit. */
  write(bytes: Uint8Array): number {
    if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array', bytes)
    if (bytes.length > this.availableBytes()) throw pastEnd('write', bytes.length, this.availableBytes())
    this.transfer(bytes, true)
    return bytes.length
  }
}

function pastEnd(op: string, n: number, left: number): RangeError {
  const e = new RangeError(`cannot ${op} ${n} bytes: only ${left} ${op === 'read' ? 'readable' : 'writable'} bytes are left in the chain`)
  ;(e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE'
  return e
}
