// A virtio split-queue descriptor, as the device sees it after the crate read it,
// and the one walk over a chain's descriptor words in a batch.
import { TWO_32 } from './address'
import { BATCH_DESC_WORDS } from './native'

/** The descriptor's buffer continues in the descriptor named by `next`. */
export const VRING_DESC_F_NEXT = 1
/** The descriptor's buffer is write-only for the device. */
export const VRING_DESC_F_WRITE = 2
/** The descriptor's buffer is a table of indirect descriptors. */
export const VRING_DESC_F_INDIRECT = 4

/** A descriptor as the device sees it (one entry of {@link DescriptorChain.descriptors}). */
export class Descriptor {
  /**
   * Guest physical address of the buffer. Exact whenever it is a safe integer; a guest
   * value of 2^53 or more is not, and every API taking an address rejects it
   * (use {@link addrBigInt} for the exact value).
   */
  readonly addr: number
  /** Length of the buffer in bytes. */
  readonly len: number
  /** VRING_DESC_F_* flags. */
  readonly flags: number
  /** Index of the next descriptor, meaningful when {@link hasNext}. */
  readonly next: number
  readonly #low: number
  readonly #high: number

  /** Descriptors come from {@link DescriptorChain.descriptors}. */
  // Made through `newDescriptor`.
  private constructor(addrLow: number, addrHigh: number, len: number, flagsAndNext: number) {
    this.#low = addrLow
    this.#high = addrHigh
    this.addr = addrHigh * TWO_32 + addrLow
    this.len = len
    this.flags = flagsAndNext & 0xffff
    this.next = flagsAndNext >>> 16
  }

  /** The exact 64-bit guest address. */
  get addrBigInt(): bigint {
    return (BigInt(this.#high) << 32n) | BigInt(this.#low)
  }

  /** Whether the buffer is device-writable (VRING_DESC_F_WRITE). */
  isWriteOnly(): boolean {
    return (this.flags & VRING_DESC_F_WRITE) !== 0
  }

  /** Whether the chain continues at {@link next} (VRING_DESC_F_NEXT). */
  hasNext(): boolean {
    return (this.flags & VRING_DESC_F_NEXT) !== 0
  }

  /** Whether the buffer is a table of indirect descriptors (VRING_DESC_F_INDIRECT). */
  refersToIndirectTable(): boolean {
    return (this.flags & VRING_DESC_F_INDIRECT) !== 0
  }
}

/**
 * @internal Descriptor's constructor, for DescriptorChain. It is private in the public
 * typings (descriptors come from chains), so other modules construct through this alias.
 */
export const newDescriptor = Descriptor as unknown as new (
  addrLow: number,
  addrHigh: number,
  len: number,
  flagsAndNext: number,
) => Descriptor

/** `dir` of {@link nextBuffer} that takes descriptors of both directions. */
export const ANY_DIRECTION = -1

/**
 * The word offset of the first descriptor from word `at` (before `end`) of a batch's
 * descriptor words that has a buffer (len > 0) in direction `dir`: VRING_DESC_F_WRITE for
 * device-writable buffers, 0 for readable ones, ANY_DIRECTION for both; `end` when none is
 * left. Every walk over a popped chain's buffers (DescriptorChain's views and checks, the
 * Reader/Writer cursor) filters through this function, as vm-virtio's chain iterator does.
 */
export function nextBuffer(w: Uint32Array, at: number, end: number, dir: number): number {
  while (at < end && (w[at + 2] === 0 || (dir !== ANY_DIRECTION && (w[at + 3]! & VRING_DESC_F_WRITE) !== dir)))
    at += BATCH_DESC_WORDS
  return at
}
