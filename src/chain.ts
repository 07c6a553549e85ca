// A descriptor chain popped from the available ring. Its descriptors were read
// by the crate in the same native call that popped it; they live in the
// batch's Uint32Array (see crate/src/batch.rs for the layout).
import { UNKNOWN_TOTAL } from './batch'
import { Descriptor, VRING_DESC_F_WRITE } from './descriptor'
import { VirtioQueueError } from './errors'
import { Reader, Writer } from './io'
import { type GuestMemory, Segments } from './memory'
import { BATCH_DESC_WORDS } from './native'

import type { ChainStopReason } from '../index'

export type { ChainStopReason }

/** Status numbers from the native batch, indexed as crate/src/chain_status.rs. */
export const CHAIN_STOP_REASONS: ReadonlyArray<ChainStopReason | null> = [
  null,
  'InvalidDescriptorIndex',
  'InvalidIndirectDescriptor',
  'InvalidIndirectDescriptorTable',
  'GuestMemory',
  'DescriptorChainOverflow',
  'InvalidChain',
  'AddressOverflow',
]

export class DescriptorChain {
  /** Index of the chain's first descriptor in the descriptor table: what addUsed takes. */
  readonly headIndex: number
  /** The guest memory the chain's buffers live in. */
  readonly memory: GuestMemory
  /**
   * Why the crate stopped before the chain's end, or null when the last descriptor had no
   * NEXT flag. The crate's iterator ends silently at a malformed descriptor; the
   * descriptors before it are still yielded.
   */
  readonly stopReason: ChainStopReason | null
  // The memory the chain was popped from, as the chain uses it (the public field is only
  // read-only to TypeScript).
  readonly #mem: GuestMemory
  readonly #words: Uint32Array
  readonly #first: number
  readonly #count: number
  // Byte totals from the pop, UNKNOWN_TOTAL when #checked must walk the descriptors.
  readonly #readable: number
  readonly #writable: number
  #descs: Descriptor[] | undefined

  /** @internal */
  constructor(
    memory: GuestMemory,
    words: Uint32Array,
    head: number,
    firstWord: number,
    count: number,
    status: number,
    readable: number,
    writable: number,
  ) {
    this.memory = memory
    this.#mem = memory
    this.headIndex = head
    this.#words = words
    this.#first = firstWord
    this.#count = count
    this.#readable = readable
    this.#writable = writable
    // status 0 is a complete chain (null); an unknown number is reported as InvalidChain.
    this.stopReason = status === 0 ? null : (CHAIN_STOP_REASONS[status] ?? 'InvalidChain')
  }

  /** True when the chain ended at a descriptor without the NEXT flag. */
  get isComplete(): boolean {
    return this.stopReason === null
  }

  /** Number of descriptors the crate yielded (indirect tables expanded). */
  get length(): number {
    return this.#count
  }

  /** The descriptors, in chain order (an indirect table's entries in place of the table). */
  descriptors(): Descriptor[] {
    if (!this.#descs) {
      const w = this.#words
      const out: Descriptor[] = new Array(this.#count)
      for (let i = 0, o = this.#first; i < this.#count; i++, o += BATCH_DESC_WORDS) {
        out[i] = new Descriptor(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!)
      }
      this.#descs = out
    }
    return this.#descs.slice()
  }

  [Symbol.iterator](): IterableIterator<Descriptor> {
    return this.descriptors()[Symbol.iterator]()
  }

  /** The device-readable descriptors (the crate's `readable()`). */
  readable(): Descriptor[] {
    return this.descriptors().filter((d) => !d.isWriteOnly())
  }

  /** The device-writable descriptors (the crate's `writable()`). */
  writable(): Descriptor[] {
    return this.descriptors().filter((d) => d.isWriteOnly())
  }

  /**
   * A stream over the readable buffers. Throws InvalidChain if one is not in guest memory,
   * DetachedBuffer if a region's buffer was detached.
   */
  reader(): Reader {
    this.#mem.checkAttached()
    const total = this.#readable !== UNKNOWN_TOTAL ? this.#readable : this.#checked(false)
    return new Reader(this.#mem, this.#words, this.#first, this.#count, total)
  }

  /** A stream over the writable buffers; throws as {@link reader} does. */
  writer(): Writer {
    this.#mem.checkAttached()
    const total = this.#writable !== UNKNOWN_TOTAL ? this.#writable : this.#checked(true)
    return new Writer(this.#mem, this.#words, this.#first, this.#count, total)
  }

  /** Zero-copy Buffer views of every descriptor's memory, in order (a buffer spanning two regions gives two views). */
  buffers(): Buffer[] {
    return this.#views(null)
  }

  /** Zero-copy views of the readable buffers. */
  readableBuffers(): Buffer[] {
    return this.#views(false)
  }

  /** Zero-copy views of the writable buffers. */
  writableBuffers(): Buffer[] {
    return this.#views(true)
  }

  /**
   * The views of buffers(): a buffer within one region is viewed directly (no piece list);
   * the first one spanning regions sends the whole call to #segments.
   */
  #views(writable: boolean | null): Buffer[] {
    const w = this.#words
    const out: Buffer[] = []
    for (let i = 0, o = this.#first; i < this.#count; i++, o += BATCH_DESC_WORDS) {
      if (writable !== null && ((w[o + 3]! & VRING_DESC_F_WRITE) !== 0) !== writable) continue
      const high = w[o + 1]!
      const len = w[o + 2]!
      if (len === 0) continue
      const view = high < 0x200000 ? this.#mem.view(high * 2 ** 32 + w[o]!, len) : null
      if (view === null) return this.#segments(writable).views()
      out.push(view)
    }
    return out
  }

  #segments(writable: boolean | null): Segments {
    const w = this.#words
    const seg = new Segments()
    for (let i = 0, o = this.#first; i < this.#count; i++, o += BATCH_DESC_WORDS) {
      const isWrite = (w[o + 3]! & VRING_DESC_F_WRITE) !== 0
      if (writable !== null && isWrite !== writable) continue
      const high = w[o + 1]!
      const addr = high * 2 ** 32 + w[o]!
      const len = w[o + 2]!
      if (len === 0) continue
      if (high >= 0x200000 || !this.#mem.resolve(addr, len, seg)) throw this.#notInMemory(i, o)
    }
    return seg
  }

  /**
   * Total bytes of the readable or writable buffers, after checking they are all in guest
   * memory: the walk behind reader()/writer() when the pop could not give the total.
   */
  #checked(writable: boolean): number {
    const w = this.#words
    let total = 0
    for (let i = 0, o = this.#first; i < this.#count; i++, o += BATCH_DESC_WORDS) {
      if (((w[o + 3]! & VRING_DESC_F_WRITE) !== 0) !== writable) continue
      const high = w[o + 1]!
      const len = w[o + 2]!
      if (len === 0) continue
      if (high >= 0x200000 || !this.#mem.covers(high * 2 ** 32 + w[o]!, len)) throw this.#notInMemory(i, o)
      total += len
    }
    return total
  }

  #notInMemory(i: number, o: number): VirtioQueueError {
    const w = this.#words
    return new VirtioQueueError(
      `descriptor ${i} of chain ${this.headIndex} (0x${((BigInt(w[o + 1]!) << 32n) | BigInt(w[o]!)).toString(16)}, ${w[o + 2]!} bytes) is not in guest memory`,
      'InvalidChain',
    )
  }
}
