import type { DriverBuffer } from './types'

const U32_MAX = 0xffffffff

/**
 * Codes of {@link DriverError}:
 * - `NO_SPACE`: not enough free descriptors for the chain;
 * - `BAD_USED`: the device published an invalid used element / used index;
 * - `NO_MEMORY`: {@link GuestAllocator.alloc} found no hole large enough;
 * - `BAD_FREE`: {@link GuestAllocator.free} of an address that is not allocated;
 * - `NO_EVENT_IDX`: an event-index-only operation on a queue without event idx.
 */
export type DriverErrorCode = 'NO_SPACE' | 'BAD_USED' | 'NO_MEMORY' | 'BAD_FREE' | 'NO_EVENT_IDX'

/** A state error of the driver simulator or the allocator. `message` starts with `"<code>: "`. */
export class DriverError extends Error {
  /** Machine-readable reason. */
  readonly code: DriverErrorCode

  /**
   * @param code the reason
   * @param message human-readable detail (prefixed with the code)
   */
  constructor(code: DriverErrorCode, message: string) {
    super(`${code}: ${message}`)
    this.name = 'DriverError'
    this.code = code
  }
}

// ---- argument checks (internal) ----

/** A TypeError for a wrong argument, with Node's `code: 'ERR_INVALID_ARG_TYPE'` as the device side gives. */
export function argTypeError(message: string): TypeError {
  const e = new TypeError(message)
  ;(e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_TYPE'
  return e
}

/** A RangeError for an argument value out of range, with `code: 'ERR_OUT_OF_RANGE'`. */
export function argRangeError(message: string): RangeError {
  const e = new RangeError(message)
  ;(e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE'
  return e
}

/** Throws unless `value` is an integer in [min, max]; `name` names the argument. */
export function checkInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw argTypeError(`${name} must be an integer, got ${describe(value)}`)
  }
  if (value < min || value > max) {
    throw argRangeError(`${name} must be in [${min}, ${max}], got ${value}`)
  }
  return value
}

/** Throws unless `value` is a guest address (non-negative safe integer). */
export function checkAddr(value: unknown, name: string): number {
  return checkInt(value, name, 0, Number.MAX_SAFE_INTEGER)
}

/** Throws unless `value` is a power of two in [1, max]. */
export function checkPow2(value: unknown, name: string, max: number): number {
  checkInt(value, name, 1, max)
  if (((value as number) & ((value as number) - 1)) !== 0) {
    throw argRangeError(`${name} must be a power of two, got ${value}`)
  }
  return value as number
}

/** Throws unless `addr` is a multiple of `align` (a power of two). */
export function checkAligned(addr: number, align: number, name: string): void {
  if (addr % align !== 0) {
    throw argRangeError(`${name} must be ${align}-byte aligned, got 0x${addr.toString(16)}`)
  }
}

function describe(v: unknown): string {
  return typeof v === 'number' || typeof v === 'bigint' ? String(v) : typeof v
}

/** Fast validation of addChain's buffers; builds messages only on failure. Returns the count. */
export function validateBuffers(buffers: readonly DriverBuffer[]): number {
  if (!Array.isArray(buffers)) throw argTypeError('buffers must be an array of { addr, len, writable? }')
  const n = buffers.length
  if (n === 0) throw argRangeError('buffers must contain at least one buffer')
  let sawWritable = false
  for (let i = 0; i < n; i++) {
    const b = buffers[i]
    if (b === null || typeof b !== 'object')
      throw argTypeError(`buffers[${i}] must be an object { addr, len, writable? }`)
    const { addr, len } = b
    if (!(typeof addr === 'number' && Number.isSafeInteger(addr) && addr >= 0)) checkAddr(addr, `buffers[${i}].addr`)
    if (!(typeof len === 'number' && Number.isInteger(len) && len >= 0 && len <= U32_MAX)) {
      checkInt(len, `buffers[${i}].len`, 0, U32_MAX)
    }
    if (b.writable) sawWritable = true
    else if (sawWritable) {
      throw argTypeError(
        `buffers[${i}] is device-readable but follows a device-writable buffer ` +
          '(the spec requires all readable buffers before all writable ones)',
      )
    }
  }
  return n
}

/** Throws a RangeError naming the first two overlapping [name, addr, length] areas. */
export function checkDisjoint(areas: Array<[string, number, number]>): void {
  for (let i = 0; i < areas.length; i++) {
    for (let j = i + 1; j < areas.length; j++) {
      const [na, a, la] = areas[i]
      const [nb, b, lb] = areas[j]
      if (a < b + lb && b < a + la) throw argRangeError(`options.${na} and options.${nb} overlap`)
    }
  }
}
