// The driver's option, buffer and result types.

/** One guest buffer of a descriptor chain. */
export interface DriverBuffer {
  /** Guest physical address. */
  addr: number
  /** Length in bytes, a u32 (0 allowed). */
  len: number
  /** Device-writable (`VIRTQ_DESC_F_WRITE`). All readable buffers must precede all writable ones. */
  writable?: boolean
}

/** A caller-owned indirect descriptor table. */
export interface IndirectTablePlacement {
  /** Guest address of the table; it must hold 16 * buffers.length bytes. */
  tableAddr: number
}

/**
 * Options of {@link SplitQueueDriver.addChain}.
 * @typeParam T the token type
 */
export interface AddChainOptions<T = unknown> {
  /**
   * Place the chain in an indirect descriptor table referenced by a single
   * ring descriptor (flags `VIRTQ_DESC_F_INDIRECT`, len 16*n). `true`: the
   * table comes from the driver's `allocator` and is freed when the chain is
   * popped; `{ tableAddr }`: the caller's table. At most `size` buffers.
   */
  indirect?: boolean | IndirectTablePlacement
  /**
   * Store the new avail idx now (default `true`). With `false` the entry is
   * written to the ring but only becomes visible at the next
   * {@link SplitQueueDriver.publish} or {@link SplitQueueDriver.kick}.
   */
  publish?: boolean
  /** Any value, handed back with the chain's used element. */
  token?: T
}

/**
 * A consumed used-ring element.
 * @typeParam T the token type
 */
export interface UsedElement<T = unknown> {
  /** Head descriptor index of the completed chain. */
  head: number
  /** Bytes the device reports having written into the chain's writable buffers. */
  len: number
  /** The token given to addChain, or `undefined`. */
  token: T | undefined
}

/** What the driver needs to allocate indirect tables; a {@link GuestAllocator} fits. */
export interface IndirectTableAllocator {
  /** Returns the address of `size` bytes aligned to `align`. */
  alloc(size: number, align?: number): number
  /** Releases an address returned by `alloc`. */
  free(addr: number): void
}

/** Options of the {@link SplitQueueDriver} constructor; a {@link SplitQueueLayout} spreads into it. */
export interface SplitQueueDriverOptions {
  /** Queue size: a power of two in [1, 32768]. */
  size: number
  /** Descriptor table address, 16-byte aligned. */
  descTable: number
  /** Available ring address, 2-byte aligned. */
  availRing: number
  /** Used ring address, 4-byte aligned. */
  usedRing: number
  /** VIRTIO_F_EVENT_IDX negotiated: use `avail_event` / `used_event` instead of ring flags. Default `false`. */
  eventIdx?: boolean
  /** Allocator for `indirect: true` chains. */
  allocator?: IndirectTableAllocator
  /** Make popUsed() reject (BAD_USED) a used `len` larger than the chain's writable bytes. Default `false`. */
  strictUsedLen?: boolean
}

/** A raw descriptor for {@link SplitQueueDriver.writeDescriptor}. */
export interface RawDescriptor {
  /** u64 address; pass a bigint for values above 2^53 - 1 (up to 2^64 - 1). */
  addr: number | bigint
  /** u32 length. */
  len: number
  /** u16 flags (any bits). */
  flags: number
  /** u16 next index (any value). */
  next: number
}

/** A raw used-ring element read by {@link SplitQueueDriver.readUsedElem}. */
export interface RawUsedElem {
  /** u32 id: the chain head, if the device behaves. */
  id: number
  /** u32 len. */
  len: number
}
