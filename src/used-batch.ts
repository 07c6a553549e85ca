// The used side of the batch boundary: entries collected in JavaScript and added to the
// used ring by one QueueGuard.addUsedBatch call, and the used-entry check addUsed shares.
import { toCount } from './address'
import { rangeError, typeError } from './errors'

/** Used entries collected for one {@link QueueGuard.addUsedBatch} call. */
export class UsedBatch {
  // Private, so only push() and clear() change what addUsedBatch publishes (a writable count
  // could publish entries never pushed), and reading them runs no user code.
  #pairs: Uint32Array
  #count = 0

  /** Initial room for `capacity` entries (grows on demand). */
  constructor(capacity = 256) {
    this.#pairs = new Uint32Array(2 * Math.max(1, toCount(capacity, 'capacity', 1 << 24)))
  }

  /** Entries pushed since the last flush (read-only: push() and clear() change it). */
  get count(): number {
    return this.#count
  }

  /**
   * @internal Takes the entries of `value` if it is a UsedBatch made by this module: returns
   * its pairs and count and leaves it empty; null for anything else (no user code runs).
   */
  static take(value: unknown): [Uint32Array, number] | null {
    if (typeof value !== 'object' || value === null || !(#pairs in value)) return null
    const u = value as UsedBatch
    const n = u.#count
    u.#count = 0
    return [u.#pairs, n]
  }

  /** @internal Whether `value` is a UsedBatch made by this module (no user code runs). */
  static is(value: unknown): boolean {
    return typeof value === 'object' && value !== null && #pairs in value
  }

  /**
   * Queues a used entry: the chain's head index and the bytes written to it.
   * @throws RangeError if headIndex is not a u16 or len not a u32 (TypeError if not numbers).
   */
  push(headIndex: number, len: number): void {
    // One test for the valid case (isUsedEntry, which V8 inlines); the errors are built
    // elsewhere (pushError), which keeps this method small enough to be inlined into a
    // device loop.
    if (!isUsedEntry(headIndex, len)) throw pushError(headIndex, len)
    const i = 2 * this.#count
    if (i === this.#pairs.length) this.#grow()
    this.#pairs[i] = headIndex
    this.#pairs[i + 1] = len
    this.#count++
  }

  #grow(): void {
    const bigger = new Uint32Array(this.#pairs.length * 2)
    bigger.set(this.#pairs)
    this.#pairs = bigger
  }

  /** Drops the entries pushed since the last flush. */
  clear(): void {
    this.#count = 0
  }
}

/**
 * The error for a used entry whose head index is not a u16 or whose length is not a u32
 * (the TypeError or RangeError addUsed and push throw), or null when both are valid.
 */
export function usedEntryError(headIndex: unknown, len: unknown): Error | null {
  return isUsedEntry(headIndex, len) ? null : pushError(headIndex, len)
}

/** Whether `headIndex` is a u16 and `len` a u32: a used entry push and addUsed accept. */
function isUsedEntry(headIndex: unknown, len: unknown): boolean {
  return (
    typeof headIndex === 'number' &&
    typeof len === 'number' &&
    headIndex >= 0 &&
    headIndex <= 0xffff &&
    Number.isInteger(headIndex) &&
    len >= 0 &&
    len <= 0xffffffff &&
    Number.isInteger(len)
  )
}

/** The error of UsedBatch.push for arguments that failed its test. */
function pushError(headIndex: unknown, len: unknown): Error {
  if (typeof headIndex !== 'number' || typeof len !== 'number') {
    return typeError(
      typeof headIndex !== 'number' ? 'headIndex' : 'len',
      'of type number',
      typeof headIndex !== 'number' ? headIndex : len,
    )
  }
  if (!(headIndex >= 0 && headIndex <= 0xffff && Number.isInteger(headIndex)))
    return rangeError('headIndex', `it must be an integer from 0 to 65535; received ${headIndex}`)
  return rangeError('len', `it must be an integer from 0 to 4294967295; received ${len}`)
}
