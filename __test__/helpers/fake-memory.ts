import type { DriverMemory } from '../../src/driver/index'

/** Options of {@link FakeMemory}. */
export interface FakeMemoryOptions {
  /** Back the memory with a SharedArrayBuffer (atomics go through Atomics.*). */
  shared?: boolean
  /** Make slice() throw, as for an area spanning two regions (tests the driver's fallback). */
  noSlice?: boolean
  /** Called on every storeU16, before the store (to check publish ordering). */
  onStoreU16?: (addr: number, value: number) => void
}

/**
 * A tiny DriverMemory over one (Shared)ArrayBuffer mapped at guest address
 * `base`. Every access outside [base, base + size) throws a RangeError.
 */
export class FakeMemory implements DriverMemory {
  readonly bytes: Uint8Array
  private readonly dv: DataView
  private readonly u16: Uint16Array | undefined
  private readonly opts: FakeMemoryOptions

  constructor(
    readonly base: number,
    readonly size: number,
    opts: FakeMemoryOptions = {},
  ) {
    const buf = opts.shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size)
    this.bytes = new Uint8Array(buf)
    this.dv = new DataView(buf)
    this.u16 = opts.shared ? new Uint16Array(buf, 0, size >>> 1) : undefined
    this.opts = opts
  }

  private off(addr: number, len: number): number {
    if (!Number.isSafeInteger(addr) || addr < this.base || addr + len > this.base + this.size) {
      throw new RangeError(`guest range [0x${addr.toString(16)}, +${len}) is outside the fake memory`)
    }
    return addr - this.base
  }

  readU8(addr: number): number {
    return this.dv.getUint8(this.off(addr, 1))
  }
  writeU8(addr: number, v: number): void {
    this.dv.setUint8(this.off(addr, 1), v)
  }
  readU16(addr: number): number {
    return this.dv.getUint16(this.off(addr, 2), true)
  }
  writeU16(addr: number, v: number): void {
    this.dv.setUint16(this.off(addr, 2), v, true)
  }
  readU32(addr: number): number {
    return this.dv.getUint32(this.off(addr, 4), true)
  }
  writeU32(addr: number, v: number): void {
    this.dv.setUint32(this.off(addr, 4), v, true)
  }
  readU64(addr: number): bigint {
    return this.dv.getBigUint64(this.off(addr, 8), true)
  }
  writeU64(addr: number, v: bigint | number): void {
    this.dv.setBigUint64(this.off(addr, 8), BigInt(v), true)
  }
  read(addr: number, length: number): Buffer {
    return Buffer.from(this.bytes.slice(this.off(addr, length), addr - this.base + length))
  }
  write(addr: number, src: Uint8Array): void {
    this.bytes.set(src, this.off(addr, src.length))
  }

  slice(addr: number, length: number): Buffer {
    if (this.opts.noSlice) throw new RangeError('slice() disabled (spans regions)')
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.off(addr, length), length)
  }

  loadU16(addr: number): number {
    const o = this.off(addr, 2)
    return this.u16 !== undefined && (o & 1) === 0 ? Atomics.load(this.u16, o >>> 1) : this.dv.getUint16(o, true)
  }

  storeU16(addr: number, v: number): void {
    const o = this.off(addr, 2)
    this.opts.onStoreU16?.(addr, v)
    if (this.u16 !== undefined && (o & 1) === 0) Atomics.store(this.u16, o >>> 1, v)
    else this.dv.setUint16(o, v, true)
  }
}
