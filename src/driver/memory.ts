// The memory interface the driver writes through, and its fast access to fixed areas.
import { argTypeError } from './errors'

/**
 * The guest memory the driver reads and writes; the package's `GuestMemory`
 * satisfies it structurally. Addresses are guest physical addresses (safe
 * integers), values little-endian. Out-of-range accesses should throw.
 */
export interface DriverMemory {
  /** Reads a u8. */
  readU8(addr: number): number
  /** Writes a u8. */
  writeU8(addr: number, value: number): void
  /** Reads a little-endian u16. */
  readU16(addr: number): number
  /** Writes a little-endian u16. */
  writeU16(addr: number, value: number): void
  /** Reads a little-endian u32. */
  readU32(addr: number): number
  /** Writes a little-endian u32. */
  writeU32(addr: number, value: number): void
  /** Reads a little-endian u64. */
  readU64(addr: number): bigint
  /** Writes a little-endian u64 (a number must be a non-negative safe integer). */
  writeU64(addr: number, value: bigint | number): void
  /** Copies `length` bytes out of guest memory. */
  read(addr: number, length: number): Buffer
  /** Copies `bytes` into guest memory. */
  write(addr: number, bytes: Uint8Array): void
  /**
   * Zero-copy view of `length` bytes within one region. The driver caches
   * views of its rings; if this throws (e.g. the area spans two regions) it
   * falls back to the per-access methods.
   */
  slice(addr: number, length: number): Buffer
  /** Atomic u16 load (`Atomics.load` on shared memory): acquire. */
  loadU16(addr: number): number
  /** Atomic u16 store (`Atomics.store` on shared memory): release / publish. */
  storeU16(addr: number, value: number): void
}

const METHODS = [
  'readU8',
  'writeU8',
  'readU16',
  'writeU16',
  'readU32',
  'writeU32',
  'readU64',
  'writeU64',
  'read',
  'write',
  'slice',
  'loadU16',
  'storeU16',
] as const

/** Throws a TypeError naming `memory` unless every DriverMemory method exists. */
export function checkMemory(memory: unknown): DriverMemory {
  if (memory === null || typeof memory !== 'object') {
    throw argTypeError('memory must be an object implementing DriverMemory')
  }
  for (const m of METHODS) {
    if (typeof (memory as Record<string, unknown>)[m] !== 'function') {
      throw argTypeError(`memory.${m} must be a function (DriverMemory)`)
    }
  }
  return memory as DriverMemory
}

const TWO_32 = 4294967296

/**
 * Plain (non-atomic) access to one fixed area of guest memory, e.g. a
 * descriptor table or a ring. Internal: picks a cached zero-copy DataView when
 * `memory.slice()` can map the whole area, otherwise falls back to per-access
 * memory calls (an area that straddles two regions).
 */
export interface AreaAccess {
  u16(off: number): number
  setU16(off: number, v: number): void
  u32(off: number): number
  setU32(off: number, v: number): void
  /** Writes a u64 given as a non-negative safe integer. */
  setU64(off: number, v: number): void
}

class ViewAccess implements AreaAccess {
  constructor(private readonly dv: DataView) {}
  u16(off: number): number {
    return this.dv.getUint16(off, true)
  }
  setU16(off: number, v: number): void {
    this.dv.setUint16(off, v, true)
  }
  u32(off: number): number {
    return this.dv.getUint32(off, true)
  }
  setU32(off: number, v: number): void {
    this.dv.setUint32(off, v, true)
  }
  setU64(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, true)
    this.dv.setUint32(off + 4, Math.floor(v / TWO_32), true)
  }
}

class CallAccess implements AreaAccess {
  constructor(
    private readonly mem: DriverMemory,
    private readonly base: number,
  ) {}
  u16(off: number): number {
    return this.mem.readU16(this.base + off)
  }
  setU16(off: number, v: number): void {
    this.mem.writeU16(this.base + off, v)
  }
  u32(off: number): number {
    return this.mem.readU32(this.base + off)
  }
  setU32(off: number, v: number): void {
    this.mem.writeU32(this.base + off, v)
  }
  setU64(off: number, v: number): void {
    this.mem.writeU64(this.base + off, v)
  }
}

/** Returns the fastest access object for `[addr, addr + length)`. */
export function openArea(memory: DriverMemory, addr: number, length: number): AreaAccess {
  let view: Buffer | undefined
  try {
    view = memory.slice(addr, length)
  } catch {
    view = undefined // e.g. spans two regions: use per-access calls
  }
  if (view !== undefined && view.byteLength === length) {
    return new ViewAccess(new DataView(view.buffer, view.byteOffset, length))
  }
  return new CallAccess(memory, addr)
}
