// Guest memory: regions of host memory at guest physical addresses, shared
// zero-copy between JavaScript (Buffers) and the native queue (vm-memory).
// Buffer from node:buffer, not the global: in Node the global is a getter, which the
// JIT does not fold away (it cost ~10 ns per Buffer.allocUnsafe on the read path).
import { Buffer, constants as bufferConstants } from 'node:buffer'
import { type GuestAddressLike, toAddress, toCount, toUint } from './address'
import { addressError, rangeError, typeError, VirtioQueueError } from './errors'
import { type MemoryHandle, native, PAGE_SIZE } from './native'
import { typedArrayBacking, uint8Buffer, uint8ByteOffset, uint8Length } from './bytes'

/**
 * A Buffer over `length` bytes of region `r` from `offset`, without a copy. Buffer.from on
 * the ArrayBuffer costs about half of a subarray(), which goes through the species
 * constructor; the backing store and offset are the region's own, kept when it was made.
 */
function viewOf(r: Region, offset: number, length: number): Buffer {
  return Buffer.from(r.ab, r.base + offset, length)
}

/** A region of guest memory as returned by {@link GuestMemory.regions}. */
export interface GuestRegion {
  /** Guest physical address of the region's first byte. */
  readonly guestAddress: number
  /** Size in bytes. */
  readonly size: number
  /** A Buffer aliasing the region's memory (no copy): writes through it are guest memory writes. */
  readonly buffer: Buffer
}

/** Memory that can back a region given to {@link GuestMemory.fromBuffers}. */
export type RegionBacking = ArrayBufferView | ArrayBuffer | SharedArrayBuffer

/** @internal Flat list of (buffer, offset, length) pieces of guest memory. */
export class Segments {
  readonly regions: Region[] = []
  readonly offsets: number[] = []
  readonly lengths: number[] = []
  total = 0

  push(region: Region, offset: number, length: number): void {
    this.regions.push(region)
    this.offsets.push(offset)
    this.lengths.push(length)
    this.total += length
  }

  /** Zero-copy views of every piece. */
  views(): Buffer[] {
    return this.regions.map((r, i) => viewOf(r, this.offsets[i]!, this.lengths[i]!))
  }
}

interface Region extends GuestRegion {
  readonly end: number
  readonly view: DataView
  readonly u16: Uint16Array | null
  /** The region as a plain Uint8Array (cheaper subarray() than a Buffer's). */
  readonly bytes: Uint8Array
  /** The region's backing store and its byte offset there, as the intrinsics reported them. */
  readonly ab: ArrayBuffer | SharedArrayBuffer
  readonly base: number
  readonly index: number
}

/** The largest Buffer this Node.js can allocate. */
const MAX_BUFFER_LENGTH = bufferConstants.MAX_LENGTH

/** readInto copies up to this many bytes with copySmall (cheaper than creating a view). */
const SMALL_COPY = 16

/**
 * Copies `len` ≤ 16 bytes at offset `o` of `view` (which has 16 bytes there) into `target`.
 * Every byte is read before any is written, so a target overlapping the source gets the
 * source as it was, as set() gives (checking target.buffer to rule that out costs more).
 * A 16-byte copy (a virtio request header) is straight-line code; other lengths go
 * through copyWords, so the common case stays small enough to inline.
 */
function copySmall(view: DataView, o: number, target: Uint8Array, len: number): void {
  const a0 = view.getUint32(o, true)
  const a1 = view.getUint32(o + 4, true)
  const a2 = view.getUint32(o + 8, true)
  const a3 = view.getUint32(o + 12, true)
  if (len !== 16) return copyWords(target, len, a0, a1, a2, a3)
  target[0] = a0
  target[1] = a0 >>> 8
  target[2] = a0 >>> 16
  target[3] = a0 >>> 24
  target[4] = a1
  target[5] = a1 >>> 8
  target[6] = a1 >>> 16
  target[7] = a1 >>> 24
  target[8] = a2
  target[9] = a2 >>> 8
  target[10] = a2 >>> 16
  target[11] = a2 >>> 24
  target[12] = a3
  target[13] = a3 >>> 8
  target[14] = a3 >>> 16
  target[15] = a3 >>> 24
}

/** Stores the first `len` (< 16) little-endian bytes of the words a0..a3 in `target`. */
function copyWords(target: Uint8Array, len: number, a0: number, a1: number, a2: number, a3: number): void {
  putWord(target, 0, a0, len)
  if (len > 4) {
    putWord(target, 4, a1, len)
    if (len > 8) {
      putWord(target, 8, a2, len)
      if (len > 12) putWord(target, 12, a3, len)
    }
  }
}

/** Stores the little-endian bytes of `w` at `at`.. in `target`, those below `len`. */
function putWord(target: Uint8Array, at: number, w: number, len: number): void {
  if (at + 4 <= len) {
    target[at] = w
    target[at + 1] = w >>> 8
    target[at + 2] = w >>> 16
    target[at + 3] = w >>> 24
  } else {
    for (let k = 0; at + k < len; k++) target[at + k] = w >>> (8 * k)
  }
}

/**
 * Guest physical memory: regions of host memory at guest addresses, shared zero-copy
 * between JavaScript and the native queue. Multi-byte accessors are little-endian and, like
 * vm-memory's `read_obj`/`write_obj`, may span two adjacent regions. An
 * address outside guest memory throws a RangeError with `code: 'InvalidGuestAddress'`
 * naming the address.
 *
 * Addresses are numbers or bigints ({@link GuestAddressLike}). Guest memory lies below 2^53
 * ({@link ADDRESS_LIMIT}), so every valid address is an exact number; a value a number
 * cannot hold exactly is rejected, never rounded.
 *
 * @example Native regions, or existing memory mapped without a copy
 * ```ts
 * import { GuestMemory } from 'virtio-queue'
 *
 * const mem = GuestMemory.fromRanges([[0, 0x10000], [0x100000, 0x100000]])
 * mem.writeU32(0x1000, 0xdeadbeef)
 * mem.readU32(0x1000) // 0xdeadbeef
 * mem.regions[0].buffer.readUInt32LE(0x1000) // the same bytes, through a Buffer
 *
 * const shared = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new SharedArrayBuffer(1 << 20) }])
 * shared.write(0x2000, Buffer.from('hello'))
 * shared.read(0x2000, 5).toString() // 'hello'
 * ```
 */
export class GuestMemory {
  readonly #handle: MemoryHandle
  /** The regions, in the order given. */
  readonly regions: readonly GuestRegion[]
  readonly #sorted: readonly Region[]
  readonly #first: Region
  readonly #scratch = Buffer.alloc(8)
  readonly #scratchView = new DataView(this.#scratch.buffer, this.#scratch.byteOffset, 8)
  #off = 0
  #spanAddr = -1

  private constructor(handle: MemoryHandle, regions: Region[]) {
    this.#handle = handle
    this.regions = Object.freeze(
      regions.map(({ guestAddress, size, buffer }) => Object.freeze({ guestAddress, size, buffer })),
    )
    this.#sorted = [...regions].sort((a, b) => a.guestAddress - b.guestAddress)
    this.#first = this.#sorted[0]!
  }

  /** @internal The native memory handle. */
  get handle(): MemoryHandle {
    return this.#handle
  }

  /**
   * @internal The native handle of `value` if it is a GuestMemory made by this module, else
   * null. A private-field test: no getter, Proxy trap or `Symbol.hasInstance` runs.
   */
  static handleOf(value: unknown): MemoryHandle | null {
    return typeof value === 'object' && value !== null && #handle in value ? (value as GuestMemory).#handle : null
  }

  /**
   * Allocates page-aligned, zero-filled regions, `[[guestAddress, size], ...]` (the
   * analogue of vm-memory's `GuestMemoryMmap::from_ranges`). Each region's memory is
   * visible as a Buffer in {@link regions}: a page-aligned window of an ArrayBuffer a page
   * longer than the region, which V8 owns (a transfer to another thread takes it along).
   * @throws VirtioQueueError `InvalidRegion` for empty, overlapping or misaligned (guest
   * address not a multiple of 8) regions, regions ending beyond 2^53, or a region larger
   * than `buffer.constants.MAX_LENGTH` (4 GiB on Node.js 20) or than can be allocated.
   */
  static fromRanges(ranges: ReadonlyArray<readonly [GuestAddressLike, GuestAddressLike]>): GuestMemory {
    if (!Array.isArray(ranges)) throw typeError('ranges', 'an array of [guestAddress, size] pairs', ranges)
    const spec: Array<number | bigint> = []
    ranges.forEach((range, i) => {
      if (!Array.isArray(range) || range.length !== 2)
        throw typeError(`ranges[${i}]`, 'a [guestAddress, size] pair', range)
      spec.push(toAddress(range[0], `ranges[${i}][0]`), toAddress(range[1], `ranges[${i}][1]`))
    })
    // Memory V8 owns (see the README's threat model): each region is an ArrayBuffer a page
    // longer than asked, whose page-aligned window the native side maps; it returns the
    // window's offsets.
    const allocations: ArrayBuffer[] = []
    const withBuffers: Array<number | bigint | ArrayBuffer> = []
    for (let i = 0; i < spec.length; i += 2) {
      const ab = allocateRegion(spec[i + 1]!, i / 2)
      allocations.push(ab)
      withBuffers.push(spec[i]!, ab)
    }
    const [handle, ...offsets] = native.memoryCreate(withBuffers)
    return new GuestMemory(
      handle,
      allocations.map((ab, i) =>
        region(i, spec[2 * i] as number, Buffer.from(ab, offsets[i] as number, ab.byteLength - PAGE_SIZE)),
      ),
    )
  }

  /**
   * Maps existing memory as guest regions without copying: `[{ guestAddress, buffer }, ...]`.
   * The memory must be 8-byte aligned in the host (ring indices are accessed atomically;
   * `Buffer.alloc` of 8 bytes or more and `new ArrayBuffer(n)` are) and each backing store
   * stays alive while this memory or a queue using it does. Detaching an ArrayBuffer
   * afterwards (a transfer: `structuredClone(ab, { transfer: [ab] })`, or `ab.transfer()` on
   * Node.js 22 and later) makes later accesses throw `DetachedBuffer`. Resizable ArrayBuffers
   * and views of them are refused (`InvalidRegion`); growable SharedArrayBuffers are accepted.
   * The backing store, offset, length and resizability come from the intrinsic accessors
   * captured at load, never from the caller's object; the native side checks each backing
   * store's real length again before every access.
   * @throws VirtioQueueError `InvalidRegion` as for {@link fromRanges}, and for misaligned buffers.
   */
  static fromBuffers(
    list: ReadonlyArray<{ readonly guestAddress: GuestAddressLike; readonly buffer: RegionBacking }>,
  ): GuestMemory {
    if (!Array.isArray(list)) throw typeError('regions', 'an array of { guestAddress, buffer } objects', list)
    const spec: Array<number | Uint8Array> = []
    const views: Buffer[] = []
    list.forEach((entry, i) => {
      if (entry === null || typeof entry !== 'object')
        throw typeError(`regions[${i}]`, 'an object { guestAddress, buffer }', entry)
      // Each property of the entry is read once.
      const [bytes, buffer, offset, length] = toBytes(entry.buffer, `regions[${i}].buffer`)
      spec.push(toAddress(entry.guestAddress, `regions[${i}].guestAddress`), bytes)
      // An empty (or detached) backing is refused by memoryCreate below.
      views.push(length === 0 ? Buffer.alloc(0) : Buffer.from(buffer, offset, length))
    })
    const [handle] = native.memoryCreate(spec)
    return new GuestMemory(
      handle,
      views.map((b, i) => region(i, spec[2 * i] as number, b)),
    )
  }

  /**
   * @internal Guest memory over a native memory handle the package made elsewhere (a
   * vhost-user frontend's table): `views` are the regions' Buffers, `[guestAddress, buffer]`.
   */
  static fromNative(handle: MemoryHandle, views: ReadonlyArray<readonly [number, Buffer]>): GuestMemory {
    return new GuestMemory(
      handle,
      views.map(([addr, b], i) => region(i, addr, b)),
    )
  }

  /** Total size of all regions in bytes. */
  get size(): number {
    return this.#sorted.reduce((n, r) => n + r.size, 0)
  }

  /** Reads a u8. */
  readU8(addr: GuestAddressLike): number {
    return this.#view(addr, 1, false).getUint8(this.#off)
  }

  /** Reads a little-endian u16. */
  readU16(addr: GuestAddressLike): number {
    return this.#view(addr, 2, false).getUint16(this.#off, true)
  }

  /** Reads a little-endian u32. */
  readU32(addr: GuestAddressLike): number {
    return this.#view(addr, 4, false).getUint32(this.#off, true)
  }

  /** Reads a little-endian u64, as a bigint. */
  readU64(addr: GuestAddressLike): bigint {
    return this.#view(addr, 8, false).getBigUint64(this.#off, true)
  }

  /** Writes a u8. */
  writeU8(addr: GuestAddressLike, value: number): void {
    const v = toUint(value, 'value', 0xff)
    this.#view(addr, 1, true).setUint8(this.#off, v)
    this.#commit(1)
  }

  /** Writes a little-endian u16. */
  writeU16(addr: GuestAddressLike, value: number): void {
    const v = toUint(value, 'value', 0xffff)
    this.#view(addr, 2, true).setUint16(this.#off, v, true)
    this.#commit(2)
  }

  /** Writes a little-endian u32. */
  writeU32(addr: GuestAddressLike, value: number): void {
    const v = toUint(value, 'value', 0xffffffff)
    this.#view(addr, 4, true).setUint32(this.#off, v, true)
    this.#commit(4)
  }

  /** Writes a little-endian 64-bit value: a bigint, or a number that is a safe integer. */
  writeU64(addr: GuestAddressLike, value: bigint | number): void {
    let v: bigint
    if (typeof value === 'bigint') {
      if (value < 0n || value > 0xffffffffffffffffn) throw rangeError('value', `${value}n does not fit in 64 bits`)
      v = value
    } else {
      v = BigInt(toUint(value, 'value', Number.MAX_SAFE_INTEGER))
    }
    this.#view(addr, 8, true).setBigUint64(this.#off, v, true)
    this.#commit(8)
  }

  /** Atomic (sequentially consistent) 16-bit load, as a driver reads ring indices; `addr` must be 2-byte aligned. */
  loadU16(addr: GuestAddressLike): number {
    const [r, o] = this.#atomic(addr, 2)
    return r.u16 ? Atomics.load(r.u16, o >> 1) : r.view.getUint16(o, true)
  }

  /** Atomic (sequentially consistent) 16-bit store, as a driver publishes ring indices; `addr` must be 2-byte aligned. */
  storeU16(addr: GuestAddressLike, value: number): void {
    const v = toUint(value, 'value', 0xffff)
    const [r, o] = this.#atomic(addr, 2)
    if (r.u16) Atomics.store(r.u16, o >> 1, v)
    else r.view.setUint16(o, v, true)
  }

  /** Copies `length` bytes out of guest memory (the range may span adjacent regions). */
  read(addr: GuestAddressLike, length: number): Buffer {
    const n = toCount(length, 'length')
    // The range is checked before the allocation: a length past guest memory is an address
    // error naming the range, not the allocator's complaint about its size.
    if (this.#within(addr, n) === null) {
      const a = toAddress(addr, 'addr')
      if (!this.checkRange(a, n)) throw addressError(a, n)
      if (n > MAX_BUFFER_LENGTH)
        throw rangeError('length', `it must be at most ${MAX_BUFFER_LENGTH} (the largest Buffer); received ${n}`)
    }
    const out = Buffer.allocUnsafe(n)
    this.readInto(addr, out)
    return out
  }

  /** Copies `target.length` bytes out of guest memory into `target`. */
  readInto(addr: GuestAddressLike, target: Uint8Array): void {
    // The brand and length from the intrinsics: no `instanceof` (Symbol.hasInstance can be
    // replaced) and no `length` getter (a subclass's may lie) runs caller code.
    const len = uint8Length(target)
    if (len < 0) throw typeError('target', 'a Uint8Array', target)
    const r = this.#within(addr, len)
    if (r !== null) {
      // Fast path (one region): small copies through four 32-bit loads, else set() from a
      // plain Uint8Array view (a Buffer's subarray() is slower).
      const o = (addr as number) - r.guestAddress
      if (len <= SMALL_COPY && o <= r.size - SMALL_COPY) copySmall(r.view, o, target, len)
      else target.set(r.bytes.subarray(o, o + len))
      return
    }
    this.#readSpans(addr, target)
  }

  // The general paths of readInto/write live in their own methods: a closure in readInto
  // or write themselves would allocate its context on every call, fast path included.
  #readSpans(addr: GuestAddressLike, target: Uint8Array): void {
    this.#spans(addr, uint8Length(target), (r, o, done, n) => {
      target.set(r.bytes.subarray(o, o + n), done)
    })
  }

  /**
   * Copies `bytes` into guest memory (the range may span adjacent regions); nothing is
   * written if any part is outside guest memory.
   */
  write(addr: GuestAddressLike, bytes: Uint8Array): void {
    const len = uint8Length(bytes)
    if (len < 0) throw typeError('bytes', 'a Uint8Array', bytes)
    const r = this.#within(addr, len)
    if (r !== null) {
      r.buffer.set(bytes, (addr as number) - r.guestAddress)
      return
    }
    this.#writeSpans(addr, bytes, len)
  }

  #writeSpans(addr: GuestAddressLike, bytes: Uint8Array, len: number): void {
    const buffer = uint8Buffer(bytes)
    const offset = uint8ByteOffset(bytes)
    this.#spans(addr, len, (r, o, done, n) => {
      r.buffer.set(n === len ? bytes : new Uint8ArrayCtor(buffer, offset + done, n), o)
    })
  }

  /** A zero-copy Buffer view of `length` bytes, which must lie within one region. */
  slice(addr: GuestAddressLike, length: number): Buffer {
    const [r, o] = this.#at(addr, toCount(length, 'length'))
    return viewOf(r, o, length)
  }

  /** Whether `[addr, addr + length)` lies in guest memory (possibly across adjacent regions). */
  checkRange(addr: GuestAddressLike, length: number): boolean {
    const n = toCount(length, 'length')
    const a = toAddress(addr, 'addr')
    // An empty range is guest memory only at an address inside a region.
    return this.#find(a) !== undefined && this.covers(a, n)
  }

  /**
   * @internal A view of `[a, a + len)` (a safe integer address) when one region holds it all,
   * else null (spanning regions, or not guest memory); throws DetachedBuffer like resolve().
   */
  view(a: number, len: number): Buffer | null {
    const r = this.#within(a, len)
    return r === null ? null : viewOf(r, a - r.guestAddress, len)
  }

  /** @internal Throws DetachedBuffer if a region's buffer was detached (transferred). */
  checkAttached(): void {
    const rs = this.#sorted
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!
      if (r.buffer.length !== r.size) throw detached(r)
    }
  }

  /**
   * @internal Whether `[a, a + len)` (a safe integer address) is guest memory, possibly across
   * adjacent regions, as resolve() decides, without listing the pieces; throws DetachedBuffer
   * if a region it touches was detached.
   */
  covers(a: number, len: number): boolean {
    if (this.#within(a, len) !== null) return true
    let done = 0
    while (done < len) {
      const r = this.#find(a + done)
      if (!r) return false
      if (r.buffer.length !== r.size) throw detached(r)
      done += Math.min(len - done, r.end - (a + done))
    }
    return true
  }

  /**
   * @internal The pieces (region buffer, offset, length) of `[a, a + len)`, which may span
   * adjacent regions; null when part of it is not guest memory.
   */
  resolve(a: number, len: number, out: Segments): boolean {
    const hit = this.#within(a, len)
    if (hit !== null) {
      out.push(hit, a - hit.guestAddress, len)
      return true
    }
    let done = 0
    while (done < len) {
      const r = this.#find(a + done)
      if (!r) return false
      if (r.buffer.length !== r.size) throw detached(r)
      const o = a + done - r.guestAddress
      const n = Math.min(len - done, r.size - o)
      out.push(r, o, n)
      done += n
    }
    return true
  }

  /**
   * The DataView holding `[addr, addr + len)` for a scalar access, its offset left in
   * `#off`. A value spanning two adjacent regions (as vm-memory's `read_obj` allows) goes
   * through a scratch view; for a write, `#commit` then copies it into guest memory.
   */
  #view(addr: GuestAddressLike, len: number, forWrite: boolean): DataView {
    const a = typeof addr === 'number' && Number.isSafeInteger(addr) && addr >= 0 ? addr : toAddress(addr, 'addr')
    const hit = this.#within(a, len)
    this.#spanAddr = -1
    if (hit !== null) {
      this.#off = a - hit.guestAddress
      return hit.view
    }
    if (!forWrite) this.readInto(a, this.#scratch.subarray(0, len))
    else if (!this.checkRange(a, len)) throw addressError(a, len)
    this.#spanAddr = a
    this.#off = 0
    return this.#scratchView
  }

  #commit(len: number): void {
    if (this.#spanAddr >= 0) this.write(this.#spanAddr, this.#scratch.subarray(0, len))
  }

  #at(addr: GuestAddressLike, len: number): [Region, number] {
    const a = typeof addr === 'number' && Number.isSafeInteger(addr) && addr >= 0 ? addr : toAddress(addr, 'addr')
    const hit = this.#within(a, len)
    if (hit === null)
      throw addressError(a, len, this.#find(a) ? 'not within one guest memory region' : 'outside guest memory')
    return [hit, a - hit.guestAddress]
  }

  #atomic(addr: GuestAddressLike, len: number): [Region, number] {
    const hit = this.#at(addr, len)
    if (hit[1] % len !== 0)
      throw addressError(toAddress(addr, 'addr'), len, `not ${len}-byte aligned for an atomic access`)
    return hit
  }

  /**
   * The region holding all of `[addr, addr + len)` when `addr` is a number in it (the fast
   * path of every access: no allocation); null sends the caller to the general path. The
   * test is `len <= end - addr`, not `addr + len <= end`: near 2^53 the sum is rounded.
   */
  #within(addr: GuestAddressLike, len: number): Region | null {
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) return null
    let r: Region | undefined = this.#first
    if (!(addr >= r.guestAddress && addr < r.end)) r = this.#find(addr)
    if (r === undefined || len > r.end - addr) return null
    if (r.buffer.length !== r.size) throw detached(r)
    return r
  }

  #find(a: number): Region | undefined {
    const rs = this.#sorted
    let lo = 0
    let hi = rs.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (rs[mid]!.guestAddress <= a) lo = mid + 1
      else hi = mid
    }
    const r = rs[lo - 1]
    return r && a < r.end ? r : undefined
  }

  /** Calls `f` for each region piece of `[addr, addr + length)`; throws unless all of it is mapped. */
  #spans(
    addr: GuestAddressLike,
    length: number,
    f: (r: Region, offset: number, done: number, n: number) => void,
  ): void {
    const start = toAddress(addr, 'addr')
    const pieces: Array<[Region, number, number, number]> = []
    let done = 0
    while (done < length) {
      const r = this.#find(start + done)
      if (!r) throw addressError(start, length)
      if (r.buffer.length !== r.size) throw detached(r)
      const o = start + done - r.guestAddress
      const n = Math.min(length - done, r.size - o)
      pieces.push([r, o, done, n])
      done += n
    }
    if (length === 0 && !this.#find(start)) throw addressError(start, length)
    // Check everything first, so a failing access writes nothing.
    for (const [r, o, d, n] of pieces) f(r, o, d, n)
  }
}

/** Zero-filled memory for a region of `size` bytes, plus a page for the native side's alignment. */
function allocateRegion(size: number | bigint, index: number): ArrayBuffer {
  if (size > bufferConstants.MAX_LENGTH) {
    throw new VirtioQueueError(
      `region ${index}: ${size} bytes is more than a Buffer can hold in this Node.js (${bufferConstants.MAX_LENGTH})`,
      'InvalidRegion',
    )
  }
  try {
    return new ArrayBuffer(Number(size) + PAGE_SIZE)
  } catch {
    throw new VirtioQueueError(`region ${index}: out of memory allocating a region of ${size} bytes`, 'InvalidRegion')
  }
}

function region(index: number, guestAddress: number, buffer: Buffer): Region {
  // What the region is comes from the intrinsics, as for the backings (see below).
  const [ab, base, size] = typedArrayBacking(buffer)!
  const shared = branded(sabByteLength, ab) !== undefined
  const u16 = shared && base % 2 === 0 ? new Uint16Array(ab, base, size >> 1) : null
  return {
    index,
    guestAddress,
    size,
    end: guestAddress + size,
    buffer,
    view: new DataView(ab, base, size),
    u16,
    bytes: new Uint8Array(ab, base, size),
    ab,
    base,
  }
}

// The real DataView, ArrayBuffer and SharedArrayBuffer accessors (the TypedArray ones are in
// bytes.ts), captured when this module loads and called with a captured Reflect.apply:
// whether a backing store may back
// guest memory, and which bytes of it, is decided from these, never from properties of the
// caller's object (an own `buffer` property, a patched prototype getter, a subclass or a
// null-prototype buffer can lie). Each getter also brand-checks its receiver (it throws for
// anything else), which is how the kind of backing is told apart without instanceof.
const apply = Reflect.apply
function getterOf(proto: object, key: string): (this: unknown) => unknown {
  const get = Object.getOwnPropertyDescriptor(proto, key)?.get
  if (get === undefined) throw new Error(`virtio-queue: this JavaScript engine lacks ${key}`)
  return get
}
const dvBuffer = getterOf(DataView.prototype, 'buffer')
const dvByteOffset = getterOf(DataView.prototype, 'byteOffset')
const dvByteLength = getterOf(DataView.prototype, 'byteLength')
const abByteLength = getterOf(ArrayBuffer.prototype, 'byteLength')
const sabByteLength = getterOf(SharedArrayBuffer.prototype, 'byteLength')
// Absent only on engines without resizable buffers, where no buffer can be resizable.
const abResizable = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')?.get
const Uint8ArrayCtor = Uint8Array

/** Calls the intrinsic getter `get` on `obj`; undefined when `obj` lacks its brand. */
function branded(get: (this: unknown) => unknown, obj: unknown): unknown {
  try {
    return apply(get, obj, [])
  } catch {
    return undefined
  }
}

/** The backing store, offset and length of a region backing, from the intrinsics only. */
function backingOf(b: unknown): [ArrayBuffer | SharedArrayBuffer, number, number] | null {
  if (typeof b !== 'object' || b === null) return null
  let n = branded(abByteLength, b)
  if (n !== undefined) return [b as ArrayBuffer, 0, n as number]
  n = branded(sabByteLength, b)
  if (n !== undefined) return [b as SharedArrayBuffer, 0, n as number]
  const typed = typedArrayBacking(b)
  if (typed !== null) return typed
  const buf = branded(dvBuffer, b)
  if (buf !== undefined) {
    // A DataView's offset and length getters throw once its buffer is detached: empty then.
    const length = branded(dvByteLength, b)
    return length === undefined
      ? [buf as ArrayBuffer, 0, 0]
      : [buf as ArrayBuffer, apply(dvByteOffset, b, []) as number, length as number]
  }
  return null
}

/**
 * A fresh, fixed-length Uint8Array over the bytes `b` designates, built from what the
 * intrinsics report (see above). A resizable ArrayBuffer is refused: it can shrink under a
 * queue. A growable SharedArrayBuffer is accepted: it can only grow, and the view has a
 * fixed length.
 */
function toBytes(b: unknown, name: string): [Uint8Array, ArrayBuffer | SharedArrayBuffer, number, number] {
  const found = backingOf(b)
  if (found === null) throw typeError(name, 'a Buffer, TypedArray, DataView, ArrayBuffer or SharedArrayBuffer', b)
  const [buffer, offset, length] = found
  const shared = branded(sabByteLength, buffer) !== undefined
  if (!shared && abResizable !== undefined && apply(abResizable, buffer, []) === true) {
    const what = buffer === b ? 'resizable ArrayBuffers' : 'views of resizable ArrayBuffers'
    throw new VirtioQueueError(`${name}: ${what} cannot back guest memory (they can shrink)`, 'InvalidRegion')
  }
  // Empty or detached (a view of a detached buffer reports length 0): the native side
  // rejects an empty region with InvalidRegion.
  if (length === 0) return [new Uint8ArrayCtor(0), buffer, 0, 0]
  return [new Uint8ArrayCtor(buffer, offset, length), buffer, offset, length]
}

function detached(r: Region): VirtioQueueError {
  return new VirtioQueueError(
    `the ArrayBuffer backing guest memory region ${r.index} was detached (transferred); the memory is no longer usable`,
    'DetachedBuffer',
  )
}
