// A virtio split-queue descriptor, as the device sees it after the crate read it.

/** The buffer continues via the `next` field. */
export const VRING_DESC_F_NEXT = 1
/** The buffer is write-only for the device. */
export const VRING_DESC_F_WRITE = 2
/** The buffer holds a table of indirect descriptors. */
export const VRING_DESC_F_INDIRECT = 4

const TWO_32 = 2 ** 32

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

  /** @internal */
  constructor(addrLow: number, addrHigh: number, len: number, flagsAndNext: number) {
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

  isWriteOnly(): boolean {
    return (this.flags & VRING_DESC_F_WRITE) !== 0
  }

  hasNext(): boolean {
    return (this.flags & VRING_DESC_F_NEXT) !== 0
  }

  refersToIndirectTable(): boolean {
    return (this.flags & VRING_DESC_F_INDIRECT) !== 0
  }
}
