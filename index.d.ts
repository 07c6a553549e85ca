/**
 * virtio-queue: rust-vmm's `virtio-queue` (0.14) and `vm-memory` (0.16) crates for Node.js,
 * for the device side of virtio split virtqueues over Buffers mapped as guest memory.
 *
 * The data path: a JS call, one native call into the crate, the result. Chains are popped
 * in batches; {@link ChainBatch} and {@link UsedBatch} expose that boundary directly.
 */

/// <reference types="node" />

/** A guest physical address or size: a non-negative safe integer, or a bigint. */
export type GuestAddressLike = number | bigint

/** Alignment (bytes) of the regions {@link GuestMemory.fromRanges} allocates: the host page size. */
export declare const PAGE_SIZE: number
/** Guest memory must end at or below this address: 2^53, so JS numbers hold every address exactly. */
export declare const ADDRESS_LIMIT: number

/** The descriptor's buffer continues in the descriptor named by `next`. */
export declare const VRING_DESC_F_NEXT: 1
/** The descriptor's buffer is write-only for the device. */
export declare const VRING_DESC_F_WRITE: 2
/** The descriptor's buffer is a table of indirect descriptors. */
export declare const VRING_DESC_F_INDIRECT: 4

/** Codes carried by {@link VirtioQueueError}. */
export type VirtioQueueErrorCode =
  // virtio_queue::Error variants, as the crate names them
  | 'AddressOverflow'
  | 'GuestMemory'
  | 'InvalidIndirectDescriptor'
  | 'InvalidIndirectDescriptorTable'
  | 'InvalidChain'
  | 'InvalidDescriptorIndex'
  | 'InvalidMaxSize'
  | 'InvalidSize'
  | 'InvalidDescTableAlign'
  | 'InvalidAvailRingAlign'
  | 'InvalidUsedRingAlign'
  | 'InvalidAvailRingIndex'
  | 'QueueNotReady'
  | 'VolatileMemoryError'
  | 'DescriptorChainOverflow'
  | 'FindMemoryRegion'
  | 'GuestMemoryError'
  | 'SplitOutOfBounds'
  // this package's own
  /** An address range outside guest memory (thrown as a RangeError with this code by GuestMemory accessors). */
  | 'InvalidGuestAddress'
  /** A guest memory layout was rejected: empty, overlapping, misaligned or beyond 2^53. */
  | 'InvalidRegion'
  /** The ArrayBuffer behind a region was detached (transferred). */
  | 'DetachedBuffer'
  /** A released QueueGuard was used. */
  | 'GuardReleased'
  /** lockWithMemory() while another guard of the same queue is live. */
  | 'QueueLocked'
  /** A QueueState object that cannot be decoded. */
  | 'InvalidState'
  /** A Rust panic caught at the Node-API boundary (a bug: please report it). */
  | 'Panic'
  /** A Node-API call failed. */
  | 'NodeApi'

/**
 * An error from the queue, the crate or guest memory. `code` names the virtio-queue error
 * variant (e.g. `InvalidSize`, `QueueNotReady`) or one of this package's codes. Argument
 * mistakes are thrown as TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) or RangeError
 * (`code: 'ERR_OUT_OF_RANGE'`) naming the argument.
 */
export declare class VirtioQueueError extends Error {
  readonly code: VirtioQueueErrorCode
  constructor(message: string, code: VirtioQueueErrorCode)
  get name(): string
}

/** A region of guest memory. */
export interface GuestRegion {
  /** Guest physical address of the region's first byte. */
  readonly guestAddress: number
  /** Size in bytes. */
  readonly size: number
  /** A Buffer aliasing the region's memory: writes through it are guest memory writes. */
  readonly buffer: Buffer
}

/** Memory that can back a region given to {@link GuestMemory.fromBuffers}. */
export type RegionBacking = ArrayBufferView | ArrayBuffer | SharedArrayBuffer

/**
 * Guest physical memory: regions of host memory at guest addresses, shared zero-copy
 * between JavaScript and the native queue. Multi-byte accessors are little-endian and, like
 * vm-memory's `read_obj`/`write_obj`, may span two adjacent regions. An
 * address outside guest memory throws a RangeError with `code: 'InvalidGuestAddress'`
 * naming the address.
 */
export declare class GuestMemory {
  private constructor(...internal: never[])
  /**
   * Allocates page-aligned, zero-filled regions, `[[guestAddress, size], ...]` (the
   * analogue of vm-memory's `GuestMemoryMmap::from_ranges`). Each region's memory is
   * visible as a Buffer in {@link regions}.
   * @throws VirtioQueueError `InvalidRegion` for empty, overlapping or misaligned (guest
   * address not a multiple of 8) regions, or regions ending beyond 2^53.
   */
  static fromRanges(
    ranges: ReadonlyArray<readonly [guestAddress: GuestAddressLike, size: GuestAddressLike]>,
  ): GuestMemory
  /**
   * Maps existing memory as guest regions without copying. The memory must be 8-byte
   * aligned in the host (ring indices are accessed atomically; `Buffer.alloc` of 8 bytes or
   * more and `new ArrayBuffer(n)` are) and each backing store stays alive while this memory
   * or a queue using it does. Detaching an ArrayBuffer afterwards (e.g. `ab.transfer()`)
   * makes later accesses throw `DetachedBuffer`; resizable ArrayBuffers are refused.
   * @throws VirtioQueueError `InvalidRegion` as for {@link fromRanges}, and for misaligned buffers.
   */
  static fromBuffers(
    regions: ReadonlyArray<{ readonly guestAddress: GuestAddressLike; readonly buffer: RegionBacking }>,
  ): GuestMemory
  /** The regions, in the order given. */
  readonly regions: readonly GuestRegion[]
  /** Total size of all regions in bytes. */
  get size(): number
  readU8(addr: GuestAddressLike): number
  readU16(addr: GuestAddressLike): number
  readU32(addr: GuestAddressLike): number
  readU64(addr: GuestAddressLike): bigint
  writeU8(addr: GuestAddressLike, value: number): void
  writeU16(addr: GuestAddressLike, value: number): void
  writeU32(addr: GuestAddressLike, value: number): void
  /** Writes a 64-bit value: a bigint, or a number that is a safe integer. */
  writeU64(addr: GuestAddressLike, value: bigint | number): void
  /** Atomic (sequentially consistent) 16-bit load; `addr` must be 2-byte aligned. */
  loadU16(addr: GuestAddressLike): number
  /** Atomic (sequentially consistent) 16-bit store; `addr` must be 2-byte aligned. */
  storeU16(addr: GuestAddressLike, value: number): void
  /** Copies `length` bytes out (the range may span adjacent regions). */
  read(addr: GuestAddressLike, length: number): Buffer
  /** Copies `target.length` bytes out into `target`. */
  readInto(addr: GuestAddressLike, target: Uint8Array): void
  /** Copies `bytes` in (the range may span adjacent regions); nothing is written if any part is outside guest memory. */
  write(addr: GuestAddressLike, bytes: Uint8Array): void
  /** A zero-copy view of `length` bytes, which must lie within one region. */
  slice(addr: GuestAddressLike, length: number): Buffer
  /** Whether `[addr, addr + length)` is guest memory (possibly across adjacent regions). */
  checkRange(addr: GuestAddressLike, length: number): boolean
}

/**
 * The crate's `QueueState`, camelCased: a plain, JSON-serialisable snapshot. Ring addresses
 * are numbers, or decimal strings when above Number.MAX_SAFE_INTEGER.
 */
export interface QueueState {
  maxSize: number
  nextAvail: number
  nextUsed: number
  eventIdxEnabled: boolean
  size: number
  ready: boolean
  descTable: number | string
  availRing: number | string
  usedRing: number | string
}

/** A virtio split queue (the crate's `Queue`) over guest memory. */
export declare class Queue {
  /**
   * A queue offering `maxSize` entries; its size starts at `maxSize`.
   * @throws VirtioQueueError `InvalidMaxSize` unless `maxSize` is a power of two ≤ 32768.
   */
  constructor(memory: GuestMemory, maxSize: number)
  /**
   * Restores a queue from a {@link state} snapshot (the crate's `Queue::try_from(QueueState)`).
   * @throws VirtioQueueError `InvalidMaxSize`, `InvalidSize`, `Invalid*Align` or `InvalidState`.
   */
  static fromState(memory: GuestMemory, state: QueueState): Queue
  /** The guest memory the queue works on. */
  readonly memory: GuestMemory
  /**
   * Locks the queue with its memory: the guard has the crate's QueueGuard API. One guard at
   * a time; release it (`guard.release()` or `using`) before locking again.
   * @throws VirtioQueueError `QueueLocked` while another guard is live.
   */
  lockWithMemory(): QueueGuard
  /** A snapshot of the queue (the crate's `Queue::state()`). */
  state(): QueueState
}

/** Memory ordering for {@link QueueGuard.availIdx} and {@link QueueGuard.usedIdx}. */
export type MemoryOrdering = 'relaxed' | 'acquire' | 'seqcst'

/**
 * The crate's QueueGuard API (as of virtio-queue 0.4's `lock_with_memory`), camelCased:
 * every method works on the queue and its guest memory. After {@link release} every method
 * throws `GuardReleased`. Errors from the crate are VirtioQueueErrors coded by variant.
 */
export declare class QueueGuard implements Disposable {
  private constructor(...internal: never[])
  /** The guest memory the queue works on. */
  get memory(): GuestMemory
  /** Whether release() was called. */
  get released(): boolean
  /**
   * The crate's `is_valid`: ready, and the descriptor table and both rings in guest memory.
   * Like the crate, it checks the address one past each ring's end, so a ring ending exactly
   * at the end of guest memory is reported invalid.
   */
  isValid(): boolean
  /** Back to the state after construction: not ready, size = maxSize, addresses 0, indices 0, event idx off. */
  reset(): void
  maxSize(): number
  size(): number
  /**
   * Sets the size the driver chose (the crate's `try_set_size`).
   * @throws VirtioQueueError `InvalidSize` unless a power of two ≤ maxSize (the crate's `set_size` would ignore it).
   */
  setSize(size: number): void
  ready(): boolean
  setReady(ready: boolean): void
  /**
   * Sets the low and/or high 32 bits of the descriptor table address; a missing half keeps its value.
   * @throws VirtioQueueError `InvalidDescTableAlign` unless 16-byte aligned.
   */
  setDescTableAddress(low?: number | null, high?: number | null): void
  /** Like setDescTableAddress, for the available ring. @throws VirtioQueueError `InvalidAvailRingAlign` unless 2-byte aligned. */
  setAvailRingAddress(low?: number | null, high?: number | null): void
  /** Like setDescTableAddress, for the used ring. @throws VirtioQueueError `InvalidUsedRingAlign` unless 4-byte aligned. */
  setUsedRingAddress(low?: number | null, high?: number | null): void
  /** Turns VIRTIO_F_RING_EVENT_IDX handling on or off. */
  setEventIdx(enabled: boolean): void
  eventIdxEnabled(): boolean
  /** The avail ring's `idx` as the driver last published it. @throws VirtioQueueError `GuestMemory`. */
  availIdx(order?: MemoryOrdering): number
  /** The used ring's `idx`. @throws VirtioQueueError `GuestMemory`. */
  usedIdx(order?: MemoryOrdering): number
  /**
   * Writes a used element (head index, bytes written) and publishes the new used idx.
   * @throws VirtioQueueError `InvalidDescriptorIndex` if `headIndex` ≥ size, `GuestMemory` if the used ring is not in memory.
   */
  addUsed(headIndex: number, len: number): void
  /**
   * Re-enables driver notifications (used flags, or avail_event with event idx); returns
   * true when chains were made available meanwhile, so they are not missed.
   */
  enableNotification(): boolean
  /** Suppresses driver notifications while the device works (a no-op with event idx). */
  disableNotification(): void
  /** Whether the driver needs a notification for the used entries added since the last call (honours used_event with event idx). */
  needsNotification(): boolean
  /** Index of the next avail ring entry to pop. */
  nextAvail(): number
  /** Index of the next used ring entry to fill. */
  nextUsed(): number
  setNextAvail(nextAvail: number): void
  setNextUsed(nextUsed: number): void
  /** Steps back one avail entry: the last popped chain is popped again. */
  goToPreviousPosition(): void
  /**
   * The next available chain, or null when there is none. Unlike the crate's
   * `pop_descriptor_chain`, which turns errors into `None`, this throws them. Chains are
   * read from the ring in batches (up to 32 per native call) and handed out one by one;
   * the avail idx is checked when a batch is read, and chains read ahead but not handed out
   * go back to the ring before anything could observe them (nextAvail(), state(), ...).
   * @throws VirtioQueueError `QueueNotReady`, `InvalidAvailRingIndex`, `GuestMemory`.
   */
  popDescriptorChain(): DescriptorChain | null
  /**
   * An iterator over the chains available now (the avail idx is read once, as by the
   * crate's `iter()`), for `for...of`. Adding used entries inside the loop is fine.
   * @throws VirtioQueueError `QueueNotReady`, `InvalidAvailRingIndex`, `GuestMemory`.
   */
  iter(): AvailIter
  /**
   * Batch path: pops up to `batch.maxChains` chains into `batch` in one native call and
   * returns how many; no per-chain object is created. Grows the batch if one chain has more
   * descriptors than it holds.
   */
  popChains(batch: ChainBatch): number
  /** Batch path: adds every entry of `used` in one native call, then clears it. On an error, the entries before the failing one were added. */
  addUsedBatch(used: UsedBatch): void
  /** Releases the guard; the queue can then be locked again. Idempotent. */
  release(): void
  [Symbol.dispose](): void
}

/** The iterator of {@link QueueGuard.iter}. */
export declare class AvailIter implements IterableIterator<DescriptorChain> {
  private constructor(...internal: never[])
  next(): IteratorResult<DescriptorChain, undefined>
  /** The crate's `AvailIter::go_to_previous_position`: the last chain is yielded again. */
  goToPreviousPosition(): void
  [Symbol.iterator](): this
}

/** Why the crate stopped reading a chain before its end. */
export type ChainStopReason =
  /** The head or a `next` index is outside the (indirect) table. */
  | 'InvalidDescriptorIndex'
  /** An indirect descriptor inside an indirect table. */
  | 'InvalidIndirectDescriptor'
  /** An indirect table whose length is not a multiple of 16 (or longer than 65535 entries). */
  | 'InvalidIndirectDescriptorTable'
  /** A descriptor could not be read from guest memory. */
  | 'GuestMemory'
  /** The buffers' total length overflows 32 bits. */
  | 'DescriptorChainOverflow'
  /** More descriptors than the table holds: the chain loops. */
  | 'InvalidChain'
  /** A descriptor's address overflows 64 bits. */
  | 'AddressOverflow'

/** Chain status numbers of {@link ChainBatch.status}: index 0 (null) is a complete chain. */
export declare const CHAIN_STOP_REASONS: ReadonlyArray<ChainStopReason | null>

/** A descriptor as the device sees it. */
export declare class Descriptor {
  private constructor(...internal: never[])
  /**
   * Guest address of the buffer: exact when it is a safe integer. A guest-supplied value of
   * 2^53 or more is not exact, and every API taking an address rejects it; see {@link addrBigInt}.
   */
  readonly addr: number
  /** Buffer length in bytes. */
  readonly len: number
  /** VRING_DESC_F_* flags. */
  readonly flags: number
  /** Next descriptor index (meaningful when hasNext()). */
  readonly next: number
  /** The exact 64-bit guest address. */
  get addrBigInt(): bigint
  isWriteOnly(): boolean
  hasNext(): boolean
  refersToIndirectTable(): boolean
}

/**
 * A chain popped from the available ring. Its descriptors were read by the crate when it
 * was popped (an indirect table's entries stand in place of the table). A chain the crate
 * cut short at a malformed descriptor has `isComplete === false` and a `stopReason`.
 */
export declare class DescriptorChain implements Iterable<Descriptor> {
  private constructor(...internal: never[])
  /** The head descriptor's index: what addUsed takes. */
  readonly headIndex: number
  /** The guest memory the buffers live in. */
  readonly memory: GuestMemory
  /** Why the crate stopped early, or null for a complete chain. */
  readonly stopReason: ChainStopReason | null
  /** True when the last descriptor had no NEXT flag. */
  get isComplete(): boolean
  /** Number of descriptors. */
  get length(): number
  /** The descriptors in chain order. */
  descriptors(): Descriptor[]
  [Symbol.iterator](): IterableIterator<Descriptor>
  /** The device-readable descriptors. */
  readable(): Descriptor[]
  /** The device-writable descriptors. */
  writable(): Descriptor[]
  /**
   * A stream over the readable buffers (the crate's `Reader`; buffers may span adjacent regions).
   * @throws VirtioQueueError `InvalidChain` if a buffer is not in guest memory.
   */
  reader(): Reader
  /** A stream over the writable buffers (the crate's `Writer`). @throws VirtioQueueError `InvalidChain`. */
  writer(): Writer
  /** Zero-copy views of every buffer in order (one spanning two regions gives two views; empty buffers none). */
  buffers(): Buffer[]
  /** Zero-copy views of the readable buffers. */
  readableBuffers(): Buffer[]
  /** Zero-copy views of the writable buffers. */
  writableBuffers(): Buffer[]
}

/**
 * Reads a chain's device-readable buffers in order: the crate's `Reader` (a buffer may span
 * two adjacent guest memory regions). `read` and the typed reads read all they are asked or
 * nothing; `readInto` reads what there is.
 */
export declare class Reader {
  private constructor(...internal: never[])
  /** Bytes left to read (the crate's `available_bytes`). */
  availableBytes(): number
  /** Bytes read so far by this reader (the crate's `bytes_read`). */
  bytesRead(): number
  /**
   * Reads exactly `length` bytes into a new Buffer (the crate's `read_exact`).
   * @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer are left.
   */
  read(length: number): Buffer
  /**
   * Reads up to `target.length` bytes into `target` and returns how many (0 at the end):
   * the crate's `io::Read::read`. The array's real length counts, whatever its `length`
   * property says. @throws TypeError unless `target` is a Uint8Array.
   */
  readInto(target: Uint8Array): number
  /** Reads a u8. @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) at the end. */
  readU8(): number
  /** Reads a little-endian u16, which may straddle two descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer than 2 bytes are left. */
  readU16(): number
  /** Reads a little-endian u32, which may straddle two descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer than 4 bytes are left. */
  readU32(): number
  /** Reads a little-endian u64 as a bigint, which may straddle two descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (reading nothing) if fewer than 8 bytes are left. */
  readU64(): bigint
  /**
   * Splits this reader at `offset` bytes of what it has left (the crate's `split_at`): this
   * reader keeps the first `offset` bytes, the returned one reads the rest with its own
   * cursor and counters (its `bytesRead()` starts at 0). `0` and `availableBytes()` are valid.
   * @throws VirtioQueueError `SplitOutOfBounds` past the end, `DetachedBuffer` if guest memory
   *   was detached.
   */
  splitAt(offset: number): Reader
}

/**
 * Writes a chain's device-writable buffers in order: the crate's `Writer` (a buffer may span
 * two adjacent guest memory regions). `write` and the typed writes write all or nothing.
 */
export declare class Writer {
  private constructor(...internal: never[])
  /** Bytes left to write (the crate's `available_bytes`). */
  availableBytes(): number
  /** Bytes written so far by this writer (the crate's `bytes_written`). */
  bytesWritten(): number
  /**
   * Writes all of `bytes`, returning its length (the crate's `write_all`).
   * @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if they do not fit; TypeError
   *   unless `bytes` is a Uint8Array.
   */
  write(bytes: Uint8Array): number
  /**
   * Writes as much of `bytes` as fits and returns how many bytes that was (0 when full): the
   * crate's `io::Write::write`. @throws TypeError unless `bytes` is a Uint8Array.
   */
  writeSome(bytes: Uint8Array): number
  /** Writes a u8. @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) when full or `value` is not in 0..255. */
  writeU8(value: number): void
  /** Writes a little-endian u16, which may straddle two descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if fewer than 2 bytes are left or `value` is out of range. */
  writeU16(value: number): void
  /** Writes a little-endian u32, which may straddle two descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if fewer than 4 bytes are left or `value` is out of range. */
  writeU32(value: number): void
  /** Writes a little-endian u64 (a bigint, or a safe-integer number), which may straddle two descriptors. @throws RangeError `ERR_OUT_OF_RANGE` (writing nothing) if fewer than 8 bytes are left or `value` is out of range. */
  writeU64(value: bigint | number): void
  /**
   * Splits this writer at `offset` bytes of what it has left (the crate's `split_at`): this
   * writer keeps the first `offset` bytes, the returned one writes the rest with its own
   * cursor and counters (its `bytesWritten()` starts at 0, so the used length is the sum
   * of the parts'). @throws VirtioQueueError `SplitOutOfBounds` past the end, `DetachedBuffer`
   * if guest memory was detached.
   */
  splitAt(offset: number): Writer
}

/**
 * Reusable storage for {@link QueueGuard.popChains}: chain `i` (0 ≤ i < count) has head
 * `head(i)` and descriptors `descriptorStart(i)` .. `descriptorStart(i) + descriptorCount(i) - 1`,
 * read with `addr(j)`, `len(j)`, `flags(j)`, `next(j)`. Each pop overwrites it. An index
 * outside the last pop (i ≥ count, j ≥ descriptorTotal, negative or fractional) throws a
 * RangeError naming it (a TypeError when it is not a number). The same fields can be read
 * straight from `words`, whose layout is public.
 */
export declare class ChainBatch {
  /** Words before the chain table: `[chains, descriptors, descriptors needed, avail idx seen]` (4). */
  static readonly HEADER_WORDS: number
  /**
   * Words per chain (6), from word `HEADER_WORDS + CHAIN_WORDS * i`: `[head, first descriptor,
   * descriptor count, status, readable bytes, writable bytes]`; a byte total is 0xffffffff
   * where `readableBytes`/`writableBytes` give -1.
   */
  static readonly CHAIN_WORDS: number
  /**
   * Words per descriptor (4), from word `descriptorBase + DESC_WORDS * j`:
   * `[addr low 32 bits, addr high 32 bits, len, flags | next << 16]`.
   */
  static readonly DESC_WORDS: number
  /** Room for `maxChains` chains (≤ 65535) and `maxDescriptors` descriptors (grown on demand). */
  constructor(maxChains?: number, maxDescriptors?: number)
  readonly maxChains: number
  /** Word index of descriptor 0 in `words`: `HEADER_WORDS + CHAIN_WORDS * maxChains`. */
  readonly descriptorBase: number
  /**
   * The storage each pop writes, for loops that read fields without a call each (layout:
   * `HEADER_WORDS`, `CHAIN_WORDS`, `DESC_WORDS`). A pop may replace it with a larger array
   * (a chain with more descriptors than it holds), so read it after each `popChains`.
   * Writing it changes nothing in the queue.
   */
  words: Uint32Array
  /** Chains stored by the last pop. */
  get count(): number
  /** Descriptors stored by the last pop. */
  get descriptorTotal(): number
  head(i: number): number
  descriptorStart(i: number): number
  descriptorCount(i: number): number
  /** 0 for a complete chain, else an index into CHAIN_STOP_REASONS. */
  status(i: number): number
  /**
   * Total length of chain `i`'s device-readable buffers, computed by the pop; -1 when one of
   * them is not in guest memory (`reader()` on that chain throws InvalidChain) or the total
   * is 2^32 - 1 or more.
   */
  readableBytes(i: number): number
  /** Total length of chain `i`'s device-writable buffers, or -1, as for `readableBytes`. */
  writableBytes(i: number): number
  addr(j: number): number
  len(j: number): number
  flags(j: number): number
  next(j: number): number
  isWriteOnly(j: number): boolean
}

/** Used entries collected for one {@link QueueGuard.addUsedBatch} call. */
export declare class UsedBatch {
  /** Initial room for `capacity` entries (grows on demand). */
  constructor(capacity?: number)
  /** Entries pushed since the last flush. */
  count: number
  /** Queues a used entry. @throws RangeError if headIndex is not a u16 or len not a u32. */
  push(headIndex: number, len: number): void
  clear(): void
}
