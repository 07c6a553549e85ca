/** One guest buffer of a descriptor chain. */
export interface DriverBuffer {
  /** Guest physical address of the buffer. */
  addr: number
  /** Length in bytes (u32). */
  len: number
  /** Device-writable (VIRTQ_DESC_F_WRITE). Readable buffers must precede writable ones. */
  writable?: boolean
}

/** Where to place an indirect descriptor table. */
export interface IndirectTablePlacement {
  /** Guest address of the table (16 * buffers.length bytes; owned by the caller). */
  tableAddr: number
}

/** Options of {@link SplitQueueDriver.addChain}. */
export interface AddChainOptions<T = unknown> {
  /**
   * Put the chain in an indirect table referenced by one ring descriptor.
   * `true`: the table is allocated from the driver's allocator and freed when
   * the chain is reclaimed. `{ tableAddr }`: the caller's table.
   */
  indirect?: boolean | IndirectTablePlacement
  /** Store the avail idx right away (default true). `false` batches until publish()/kick(). */
  publish?: boolean
  /** Value handed back with the chain's used element. */
  token?: T
}

/** A used element returned by popUsed(). */
export interface UsedElement<T = unknown> {
  /** Head descriptor index of the completed chain. */
  head: number
  /** Bytes the device reports having written. */
  len: number
  /** The chain's token, if one was given. */
  token: T | undefined
}

/** Allocator used for driver-allocated indirect tables (a GuestAllocator fits). */
export interface IndirectTableAllocator {
  alloc(size: number, align?: number): number
  free(addr: number): void
}

/** Options of the SplitQueueDriver constructor. */
export interface SplitQueueDriverOptions {
  /** Queue size: a power of two in [1, 32768]. */
  size: number
  /** Descriptor table address (16-byte aligned). */
  descTable: number
  /** Available ring address (2-byte aligned). */
  availRing: number
  /** Used ring address (4-byte aligned). */
  usedRing: number
  /** VIRTIO_F_EVENT_IDX negotiated (default false). */
  eventIdx?: boolean
  /** Allocator for `indirect: true` chains. */
  allocator?: IndirectTableAllocator
  /** popUsed() rejects a used len larger than the chain's writable bytes (default false). */
  strictUsedLen?: boolean
}

/** A raw descriptor, as written by writeDescriptor() / read by readDescriptor(). */
export interface RawDescriptor {
  /** u64 buffer address; a bigint reaches values above 2^53. */
  addr: number | bigint
  /** u32 length. */
  len: number
  /** u16 flags. */
  flags: number
  /** u16 next index. */
  next: number
}

/** A raw used-ring element, as read by readUsedElem(). */
export interface RawUsedElem {
  /** u32 id (head descriptor index, if the device is well-behaved). */
  id: number
  /** u32 len. */
  len: number
}
