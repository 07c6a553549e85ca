// Guest addresses and sizes from JavaScript: numbers (safe integers) or bigints;
// and 64-bit values from the native side, which passes them as two u32 words.
import { rangeError, typeError } from './errors'

/** A guest physical address or size: a non-negative safe integer, or a bigint. */
export type GuestAddressLike = number | bigint

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** 2^32: the weight of the high word of a 64-bit value passed as two u32 words. */
export const TWO_32 = 2 ** 32
/**
 * High words below this (2^21) make a 64-bit value below 2^53, which a number holds
 * exactly; guest memory lies below 2^53, so a larger value is never a guest address.
 */
const EXACT_HIGH_LIMIT = 2 ** 21

/** The 64-bit value in words `i` (low) and `i + 1` (high) of `w`, as a number: exact below 2^53. */
export function u64Number(w: Uint32Array, i: number): number {
  return w[i + 1]! * TWO_32 + w[i]!
}

/** The 64-bit value in words `i` (low) and `i + 1` (high) of `w` when a number holds it exactly (below 2^53), else -1. */
export function u64Exact(w: Uint32Array, i: number): number {
  const high = w[i + 1]!
  return high < EXACT_HIGH_LIMIT ? high * TWO_32 + w[i]! : -1
}

/** The 64-bit value in words `i` (low) and `i + 1` (high) of `w`, exactly. */
export function u64BigInt(w: Uint32Array, i: number): bigint {
  return (BigInt(w[i + 1]!) << 32n) | BigInt(w[i]!)
}

/**
 * A guest address as an exact number. Values a number cannot hold exactly
 * are rejected rather than rounded (so they can never become a valid address).
 */
export function toAddress(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value
    throw rangeError(name, `it must be a non-negative safe integer; received ${value}`)
  }
  if (typeof value === 'bigint') {
    if (value >= 0n && value <= MAX_SAFE) return Number(value)
    throw rangeError(name, `${value}n is outside 0 .. 2^53 - 1, where guest memory lives`)
  }
  throw typeError(name, 'of type number or bigint', value)
}

/** An integer count (length, size) in `0 ..= max`. */
export function toCount(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError(name, 'of type number', value)
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw rangeError(name, `it must be an integer from 0 to ${max}; received ${value}`)
  }
  return value
}

/** An integer in `0 ..= max` (u8/u16/u32 values written to guest memory). */
export function toUint(value: unknown, name: string, max: number): number {
  return toCount(value, name, max)
}
