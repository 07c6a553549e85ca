// A descriptor chain popped from the available ring. Its descriptors were read
// by the crate in the same native call that popped it; they live in the
// batch's Uint32Array (see crate/src/engine/batch.rs for the layout).
import { toCount, u64BigInt, u64Exact } from './address'
import { ANY_DIRECTION, type Descriptor, newDescriptor, nextBuffer, VRING_DESC_F_WRITE } from './descriptor'
import { VirtioQueueError } from './errors'
import { newReader, newWriter, type Reader, type Writer } from './io'
import { type GuestMemory, Segments } from './memory'
import { BATCH_DESC_WORDS, UNKNOWN_TOTAL } from './native'

/** Why the crate stopped reading a chain before its end. */
export type ChainStopReason =
  /** The head or a `next` index is outside the (indirect) table. */
  | 'InvalidDescriptorIndex'
  /** An indirect descriptor inside an indirect table. */
  | 'InvalidIndirectDescriptor'
  /** An indirect table whose length is not a multiple of 16 (or longer than 65535 entries). */
  | 'InvalidIndirectDescriptorTable'
  /** A descriptor could not be read from guest memory. */
  | 'GuestMemory'
  /** The buffers' total length overflows 32 bits. */
  | 'DescriptorChainOverflow'
  /** More descriptors than the table holds: the chain loops. */
  | 'InvalidChain'
  /** A descriptor's address overflows 64 bits. */
  | 'AddressOverflow'

/**
 * Chain status numbers of {@link ChainBatch.status}: index 0 (null) is a complete chain.
 * (Indexed as the native side numbers them, crate/src/engine/chain_status.rs.)
 */
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

/**
 * A chain popped from the available ring. Its descriptors were read by the crate when it
 * was popped (an indirect table's entries stand in place of the table). A chain the crate
 * cut short at a malformed descriptor has `isComplete === false` and a `stopReason`.
 *
 * @example Serving a request: a header to read, a status byte to write
 * ```ts
 * for (const chain of guard.iter()) {
 *   if (!chain.isComplete) throw new Error(`malformed chain: ${chain.stopReason}`)
 *   const r = chain.reader()
 *   const header = r.read(16)
 *   const w = chain.writer()
 *   w.write(Uint8Array.of(0)) // OK
 *   guard.addUsed(chain.headIndex, w.bytesWritten())
 * }
 * ```
 */
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

  /** Chains come from {@link QueueGuard.popDescriptorChain} and {@link QueueGuard.iter}. */
  // Made through `newDescriptorChain`.
  private constructor(
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
        out[i] = new newDescriptor(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!)
      }
      this.#descs = out
    }
    return this.#descs.slice()
  }

  /**
   * The descriptor at `index` in chain order (`descriptors()[index]` without building the
   * list: one object), or undefined past the end. `chain.descriptor(chain.length - 1)` is the
   * last one, where a device's status byte usually is.
   * @throws RangeError `ERR_OUT_OF_RANGE` unless `index` is a non-negative integer;
   *   TypeError `ERR_INVALID_ARG_TYPE` if it is not a number.
   */
  descriptor(index: number): Descriptor | undefined {
    const i = toCount(index, 'index')
    if (i >= this.#count) return undefined
    if (this.#descs) return this.#descs[i]
    const w = this.#words
    const o = this.#first + BATCH_DESC_WORDS * i
    return new newDescriptor(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!)
  }

  /** The descriptors in chain order, for `for...of`. */
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
   * A stream over the readable buffers (the crate's `Reader`; buffers may span adjacent regions).
   * @throws VirtioQueueError `InvalidChain` if a buffer is not in guest memory,
   * `DetachedBuffer` if a region's buffer was detached.
   */
  reader(): Reader {
    this.#mem.checkAttached()
    const total = this.#readable !== UNKNOWN_TOTAL ? this.#readable : this.#checked(0)
    return new newReader(this.#mem, this.#words, this.#first, this.#count, total)
  }

  /**
   * A stream over the writable buffers (the crate's `Writer`).
   * @throws VirtioQueueError `InvalidChain` or `DetachedBuffer`, as {@link reader} does.
   */
  writer(): Writer {
    this.#mem.checkAttached()
    const total = this.#writable !== UNKNOWN_TOTAL ? this.#writable : this.#checked(VRING_DESC_F_WRITE)
    return new newWriter(this.#mem, this.#words, this.#first, this.#count, total)
  }

  /**
   * Zero-copy Buffer views of every buffer, in order (one spanning two regions gives two
   * views; empty buffers none): ready for `fs.readSync`/`fs.writeSync`, sockets, ...
   */
  buffers(): Buffer[] {
    return this.#views(ANY_DIRECTION)
  }

  /** Zero-copy views of the readable buffers. */
  readableBuffers(): Buffer[] {
    return this.#views(0)
  }

  /** Zero-copy views of the writable buffers. */
  writableBuffers(): Buffer[] {
    return this.#views(VRING_DESC_F_WRITE)
  }

  // The walks below visit the buffers in direction `dir`, as nextBuffer() defines it.

  /**
   * The views of buffers(): a buffer within one region is viewed directly (no piece list);
   * the first one spanning regions sends the whole call to #segments.
   */
  #views(dir: number): Buffer[] {
    const w = this.#words
    const end = this.#first + BATCH_DESC_WORDS * this.#count
    const out: Buffer[] = []
    for (let o = nextBuffer(w, this.#first, end, dir); o < end; o = nextBuffer(w, o + BATCH_DESC_WORDS, end, dir)) {
      const addr = u64Exact(w, o)
      const view = addr >= 0 ? this.#mem.view(addr, w[o + 2]!) : null
      if (view === null) return this.#segments(dir).views()
      out.push(view)
    }
    return out
  }

  #segments(dir: number): Segments {
    const w = this.#words
    const end = this.#first + BATCH_DESC_WORDS * this.#count
    const seg = new Segments()
    for (let o = nextBuffer(w, this.#first, end, dir); o < end; o = nextBuffer(w, o + BATCH_DESC_WORDS, end, dir)) {
      const addr = u64Exact(w, o)
      if (addr < 0 || !this.#mem.resolve(addr, w[o + 2]!, seg)) throw this.#notInMemory(o)
    }
    return seg
  }

  /**
   * Total bytes of the readable or writable buffers, after checking they are all in guest
   * memory: the walk behind reader()/writer() when the pop could not give the total.
   */
  #checked(dir: number): number {
    const w = this.#words
    const end = this.#first + BATCH_DESC_WORDS * this.#count
    let total = 0
    for (let o = nextBuffer(w, this.#first, end, dir); o < end; o = nextBuffer(w, o + BATCH_DESC_WORDS, end, dir)) {
      const addr = u64Exact(w, o)
      const len = w[o + 2]!
      if (addr < 0 || !this.#mem.covers(addr, len)) throw this.#notInMemory(o)
      total += len
    }
    return total
  }

  /** The error for the descriptor at word `o`, whose buffer is not in guest memory. */
  #notInMemory(o: number): VirtioQueueError {
    const w = this.#words
    const i = (o - this.#first) / BATCH_DESC_WORDS
    return new VirtioQueueError(
      `descriptor ${i} of chain ${this.headIndex} (0x${u64BigInt(w, o).toString(16)}, ${w[o + 2]!} bytes) is not in guest memory`,
      'InvalidChain',
    )
  }
}

/**
 * @internal DescriptorChain's constructor, for QueueGuard. It is private in the public
 * typings (chains come from the queue), so other modules construct through this alias.
 */
export const newDescriptorChain = DescriptorChain as unknown as new (
  memory: GuestMemory,
  words: Uint32Array,
  head: number,
  firstWord: number,
  count: number,
  status: number,
  readable: number,
  writable: number,
) => DescriptorChain
