// The memory interface the driver writes through is declared in driver.d.ts.
import type { DriverMemory } from '../../driver'
import { argTypeError } from './errors'

export type { DriverMemory }

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
