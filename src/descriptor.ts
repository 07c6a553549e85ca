// A virtio split-queue descriptor, as the device sees it after the crate read it.

/** The descriptor's buffer continues in the descriptor named by `next`. */
export const VRING_DESC_F_NEXT = 1
/** The descriptor's buffer is write-only for the device. */
export const VRING_DESC_F_WRITE = 2
/** The descriptor's buffer is a table of indirect descriptors. */
export const VRING_DESC_F_INDIRECT = 4

const TWO_32 = 2 ** 32

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

  /** Made by {@link DescriptorChain.descriptors} (through `newDescriptor`). */
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
