// Guest addresses and sizes from JavaScript: numbers (safe integers) or bigints.
import { rangeError, typeError } from './errors'

/** A guest physical address or size: a non-negative safe integer, or a bigint. */
export type GuestAddressLike = number | bigint

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

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
