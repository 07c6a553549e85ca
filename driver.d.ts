/**
 * `virtio-queue/driver` — a guest-driver simulator for virtio split
 * virtqueues (virtio 1.x, section 2.7 "Split Virtqueues").
 *
 * It plays the part of a guest's virtio driver against the device-side queue
 * of the main entry: it lays out and zero-initialises the rings, allocates
 * descriptors from a free list, publishes descriptor chains on the available
 * ring, decides whether the device must be notified (kicked), consumes the
 * used ring and suppresses interrupts. Raw helpers write arbitrary (hostile)
 * values for fuzz and negative tests.
 *
 * All addresses are guest physical addresses given as JS numbers (safe
 * integers); all multi-byte fields are little-endian. Argument errors are
 * `TypeError` (`code: 'ERR_INVALID_ARG_TYPE'`) / `RangeError`
 * (`code: 'ERR_OUT_OF_RANGE'`) whose message names the argument; state errors
 * are {@link DriverError} with a `code`.
 *
 * @example
 * ```ts
 * import { GuestAllocator, SplitQueueDriver, splitQueueLayout } from 'virtio-queue/driver'
 * const layout = splitQueueLayout(0x10000, 256)
 * const allocator = new GuestAllocator(0x100000, 0x100000)
 * const q = new SplitQueueDriver(memory, { ...layout, eventIdx: true, allocator })
 * const head = q.addChain([{ addr: req, len: 16 }, { addr: data, len: 512, writable: true }], { token: 'r1' })
 * if (q.kick()) device.notify()
 * for (let u = q.popUsed(); u !== null; u = q.popUsed()) console.log(u.head, u.len, u.token)
 * ```
 */

// ---------------------------------------------------------------- constants

/**
 * Split-virtqueue constants from the virtio 1.x specification. They are
 * grouped in one frozen object (instead of top-level names) so they cannot
 * collide with the constants of the package's main entry.
 */
export declare const DriverConstants: Readonly<{
  /** Descriptor flag: the chain continues in the descriptor named by `next` (1). */
  VIRTQ_DESC_F_NEXT: 1
  /** Descriptor flag: the buffer is device-writable; otherwise device-readable (2). */
  VIRTQ_DESC_F_WRITE: 2
  /** Descriptor flag: the buffer holds an indirect descriptor table (4). */
  VIRTQ_DESC_F_INDIRECT: 4
  /** Available-ring flag: the driver asks the device not to interrupt; only without event idx (1). */
  VRING_AVAIL_F_NO_INTERRUPT: 1
  /** Used-ring flag: the device asks the driver not to notify; only without event idx (1). */
  VRING_USED_F_NO_NOTIFY: 1
  /** Feature bit number of VIRTIO_F_INDIRECT_DESC (28). */
  VIRTIO_F_INDIRECT_DESC: 28
  /** Feature bit number of VIRTIO_F_EVENT_IDX (29). */
  VIRTIO_F_EVENT_IDX: 29
  /** Bytes per descriptor: `le64 addr, le32 len, le16 flags, le16 next` (16). */
  DESC_SIZE: 16
  /** Bytes per used-ring element: `le32 id, le32 len` (8). */
  USED_ELEM_SIZE: 8
  /** Required alignment of the descriptor table (16). */
  DESC_TABLE_ALIGN: 16
  /** Required alignment of the available ring (2). */
  AVAIL_RING_ALIGN: 2
  /** Required alignment of the used ring (4). */
  USED_RING_ALIGN: 4
  /** Used-ring alignment of the legacy contiguous layout (4096). */
  LEGACY_USED_RING_ALIGN: 4096
  /** Largest split-virtqueue size (32768). */
  MAX_QUEUE_SIZE: 32768
}>

/**
 * The spec's `vring_need_event(event_idx, new_idx, old_idx)`:
 * `(u16)(new - event - 1) < (u16)(new - old)`, i.e. whether `eventIdx` lies in
 * the window `[oldIdx, newIdx)` of 16-bit ring indices (wrap-around aware).
 * The driver applies it to `avail_event` before kicking; a device applies it
 * to `used_event` before interrupting.
 * @param eventIdx the other side's event index (u16)
 * @param newIdx the index after the update (u16)
 * @param oldIdx the index at the previous notification decision (u16)
 */
export declare function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean

// ---------------------------------------------------------------- errors

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
export declare class DriverError extends Error {
  /** Machine-readable reason. */
  readonly code: DriverErrorCode
  /**
   * @param code the reason
   * @param message human-readable detail (prefixed with the code)
   */
  constructor(code: DriverErrorCode, message: string)
}

// ---------------------------------------------------------------- memory

/**
 * The guest memory the driver reads and writes; the package's `GuestMemory`
 * satisfies it structurally. Addresses are guest physical addresses (safe
 * integers), values little-endian. Out-of-range accesses should throw.
 */
export interface DriverMemory {
  /** Reads a u8. */
  readU8(addr: number): number
  /** Writes a u8. */
  writeU8(addr: number, value: number): void
  /** Reads a little-endian u16. */
  readU16(addr: number): number
  /** Writes a little-endian u16. */
  writeU16(addr: number, value: number): void
  /** Reads a little-endian u32. */
  readU32(addr: number): number
  /** Writes a little-endian u32. */
  writeU32(addr: number, value: number): void
  /** Reads a little-endian u64. */
  readU64(addr: number): bigint
  /** Writes a little-endian u64 (a number must be a non-negative safe integer). */
  writeU64(addr: number, value: bigint | number): void
  /** Copies `length` bytes out of guest memory. */
  read(addr: number, length: number): Buffer
  /** Copies `bytes` into guest memory. */
  write(addr: number, bytes: Uint8Array): void
  /**
   * Zero-copy view of `length` bytes within one region. The driver caches
   * views of its rings; if this throws (e.g. the area spans two regions) it
   * falls back to the per-access methods.
   */
  slice(addr: number, length: number): Buffer
  /** Atomic u16 load (`Atomics.load` on shared memory): acquire. */
  loadU16(addr: number): number
  /** Atomic u16 store (`Atomics.store` on shared memory): release / publish. */
  storeU16(addr: number, value: number): void
}

// ---------------------------------------------------------------- layout

/** Options of {@link splitQueueLayout}. */
export interface SplitQueueLayoutOptions {
  /**
   * Alignment of the used ring: a power of two in [4, 2^20]. Default 4 (the
   * virtio 1.x minimum); 4096 gives the legacy contiguous layout.
   */
  usedAlign?: number
  /**
   * Accepted for symmetry with {@link SplitQueueDriverOptions}; it does not
   * change the layout, because the spec's ring sizes (6 + 2*size and
   * 6 + 8*size) always reserve `used_event` and `avail_event`.
   */
  eventIdx?: boolean
}

/** Guest addresses of the three parts of a split virtqueue. Spreads into {@link SplitQueueDriverOptions}. */
export interface SplitQueueLayout {
  /** Queue size (number of descriptors). */
  size: number
  /** Descriptor table: 16-byte aligned, 16*size bytes. */
  descTable: number
  /** Available ring: 2-byte aligned, 6 + 2*size bytes (flags, idx, ring[size], used_event). */
  availRing: number
  /** Used ring: `usedAlign`-aligned, 6 + 8*size bytes (flags, idx, ring[size], avail_event). */
  usedRing: number
  /** First address after the used ring. */
  end: number
}

/**
 * Lays a split virtqueue out contiguously from `base`: descriptor table, then
 * available ring, then the used ring aligned up to `options.usedAlign`.
 * @param base start address; must be 16-byte aligned
 * @param size queue size: a power of two in [1, 32768]
 * @throws RangeError naming `base`, `size` or `options.usedAlign`
 */
export declare function splitQueueLayout(
  base: number,
  size: number,
  options?: SplitQueueLayoutOptions,
): SplitQueueLayout

/**
 * The device-side queue setters a transport uses; the package's `QueueGuard` has them all.
 */
export interface DeviceQueueSetup {
  setSize(size: number): void
  setDescTableAddress(low?: number | null, high?: number | null): void
  setAvailRingAddress(low?: number | null, high?: number | null): void
  setUsedRingAddress(low?: number | null, high?: number | null): void
  setEventIdx(enabled: boolean): void
  setReady(ready: boolean): void
}

/** A queue's size and ring addresses: a {@link SplitQueueLayout} or a {@link SplitQueueDriver}. */
export interface QueueLayoutLike {
  readonly size: number
  readonly descTable: number
  readonly availRing: number
  readonly usedRing: number
  /** Whether VIRTIO_F_EVENT_IDX is in use (a SplitQueueDriver has it). */
  readonly eventIdx?: boolean
}

/** Options of {@link setUpDeviceQueue}. */
export interface SetUpDeviceQueueOptions {
  /** VIRTIO_F_EVENT_IDX negotiated; default: `layout.eventIdx`, else false. */
  eventIdx?: boolean
  /** Mark the queue ready at the end (default true). */
  ready?: boolean
}

/**
 * Programs a device queue with a driver's queue layout, as a transport (virtio-pci,
 * virtio-mmio) does when the guest sets the queue up: the size, the three ring addresses
 * (as low and high 32-bit halves), event idx, then ready. Errors are the device queue's
 * (e.g. VirtioQueueError `InvalidSize`).
 */
export declare function setUpDeviceQueue(
  queue: DeviceQueueSetup,
  layout: QueueLayoutLike,
  options?: SetUpDeviceQueueOptions,
): void

/** Bytes of the descriptor table of a `size`-entry queue (16*size). */
export declare function descTableBytes(size: number): number
/** Bytes of the available ring of a `size`-entry queue (6 + 2*size). */
export declare function availRingBytes(size: number): number
/** Bytes of the used ring of a `size`-entry queue (6 + 8*size). */
export declare function usedRingBytes(size: number): number
/** Rounds `value` up to a multiple of the power of two `align`. */
export declare function alignUp(value: number, align: number): number

// ---------------------------------------------------------------- allocator

/**
 * A first-fit allocator of guest-physical address ranges for data buffers
 * and indirect tables. It only hands out addresses (it never touches guest
 * memory); freed ranges coalesce with their neighbours.
 */
export declare class GuestAllocator {
  /** First address managed. */
  readonly base: number
  /** First address after the managed range. */
  readonly end: number
  /** Bytes managed in total (`end - base`). */
  readonly length: number
  /** Bytes currently allocated (alignment padding excluded). */
  readonly bytesAllocated: number
  /** Bytes currently free. */
  readonly bytesFree: number
  /** Number of live allocations. */
  readonly allocationCount: number
  /**
   * @param base first guest address managed (non-negative safe integer)
   * @param length number of bytes managed (≥ 1)
   * @throws RangeError / TypeError naming `base` or `length`
   */
  constructor(base: number, length: number)
  /**
   * Allocates `size` bytes aligned to `align` from the lowest hole that fits.
   * @param size bytes (≥ 1)
   * @param align a power of two up to 2^30; default 8
   * @returns the start address
   * @throws DriverError `NO_MEMORY` when no hole fits; RangeError / TypeError for bad arguments
   */
  alloc(size: number, align?: number): number
  /**
   * Frees the allocation that starts at `addr`.
   * @throws DriverError `BAD_FREE` if `addr` is not the start of a live allocation
   */
  free(addr: number): void
  /** Length of the live allocation starting at `addr`, or `undefined`. */
  sizeOf(addr: number): number | undefined
  /** Frees everything. */
  reset(): void
}

// ---------------------------------------------------------------- driver

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

/**
 * The guest-driver side of one split virtqueue.
 *
 * Lifecycle of a chain: {@link addChain} takes descriptors from the free
 * list, writes them, writes the head into `avail.ring[availIdx % size]` and
 * (unless `publish: false`) stores the new `avail.idx` with release
 * semantics; {@link kick} then says whether the device must be notified;
 * {@link popUsed} reads `used.idx` with acquire semantics, validates the used
 * element and returns the chain's descriptors to the free list.
 *
 * Hot paths (addChain, publish, kick, popUsedInto) do not allocate: the
 * driver keeps its state in typed arrays and accesses the rings through
 * cached `DataView`s over {@link DriverMemory.slice}.
 *
 * @typeParam T the type of per-chain tokens
 */
export declare class SplitQueueDriver<T = unknown> {
  /**
   * Takes ownership of the queue: zero-initialises the descriptor table and
   * both rings (flags, idx, entries, event fields) and builds a free list of
   * all `size` descriptors.
   * @param memory guest memory holding the queue
   * @param options queue size, addresses and features
   * @throws RangeError for a bad size, misaligned or overlapping areas, or
   *   areas outside guest memory; TypeError for a bad `memory` or option
   */
  constructor(memory: DriverMemory, options: SplitQueueDriverOptions)

  /** The memory given to the constructor. */
  readonly memory: DriverMemory
  /** Queue size. */
  readonly size: number
  /** Descriptor table address. */
  readonly descTable: number
  /** Available ring address. */
  readonly availRing: number
  /** Used ring address. */
  readonly usedRing: number
  /** Address of `used_event` (availRing + 4 + 2*size), written by the driver. */
  readonly usedEventAddr: number
  /** Address of `avail_event` (usedRing + 4 + 8*size), written by the device. */
  readonly availEventAddr: number
  /** Whether VIRTIO_F_EVENT_IDX is in use. */
  readonly eventIdx: boolean
  /** Whether popUsed() checks used lengths (see {@link SplitQueueDriverOptions.strictUsedLen}). */
  readonly strictUsedLen: boolean

  /** Shadow avail idx: the next entry index to fill, including unpublished entries (u16). */
  readonly availIdx: number
  /** The avail idx last stored to memory (u16). */
  readonly publishedAvailIdx: number
  /** Entries written to the avail ring but not yet published. */
  readonly pendingCount: number
  /** Shadow used idx: the next used entry the driver will consume (u16). */
  readonly usedIdx: number
  /** Chains added and not yet popped (published or not). */
  readonly inFlight: number
  /** Free descriptors. */
  readonly freeCount: number
  /** Kicks that returned `true` since construction / reset. */
  readonly kicksSent: number
  /** Kicks the device's suppression turned into `false` since construction / reset. */
  readonly kicksSuppressed: number
  /** Whether interrupts are enabled (see {@link disableInterrupts}). */
  readonly interruptsEnabled: boolean

  /**
   * Re-initialises the queue as the constructor does (e.g. after a device
   * reset): zeroes the rings, rebuilds the free list, forgets all chains
   * (freeing driver-allocated indirect tables) and clears the counters.
   */
  reset(): void

  /**
   * Adds a descriptor chain and (by default) publishes it.
   * @param buffers device-readable buffers first, then device-writable ones
   * @param options indirect placement, batching, token
   * @returns the head descriptor index
   * @throws DriverError `NO_SPACE` when fewer descriptors are free than
   *   needed (n, or 1 for an indirect chain); nothing is modified
   * @throws TypeError / RangeError naming the offending `buffers[i]` field,
   *   a readable buffer after a writable one, an empty list, an indirect
   *   chain longer than `size`, or `indirect: true` without an allocator
   */
  addChain(buffers: readonly DriverBuffer[], options?: AddChainOptions<T>): number

  /**
   * Makes all pending entries visible: stores the shadow avail idx with
   * {@link DriverMemory.storeU16} (release), after the descriptors and ring
   * entries were written.
   * @returns the number of entries published (0 if none were pending)
   */
  publish(): number

  /**
   * Whether the device must be notified about the entries published since
   * the last {@link kick} (pending entries are not counted). With event idx:
   * `vringNeedEvent(avail_event, publishedAvailIdx, idxAtLastKick)`; without:
   * `!(used.flags & VRING_USED_F_NO_NOTIFY)`. `false` if nothing new. No side effects.
   */
  notifyNeeded(): boolean

  /**
   * Publishes pending entries, then decides whether to notify the device
   * (as {@link notifyNeeded}), records the decision in {@link kicksSent} /
   * {@link kicksSuppressed} and starts a new kick window.
   * @returns `true` if the caller must notify the device; `false` if
   *   suppressed or nothing was published since the last kick (not counted)
   */
  kick(): boolean

  /** Whether the device has published used elements the driver has not consumed yet. */
  hasUsed(): boolean

  /**
   * Consumes the next used element: loads `used.idx` (acquire), reads the
   * element, validates it and returns the chain's descriptors (and any
   * driver-allocated indirect table) to the free lists.
   * @returns the element, or `null` if none is pending
   * @throws DriverError `BAD_USED` if the id is out of range or not the head
   *   of a published, outstanding chain, if `used.idx` ran ahead of the
   *   outstanding chains, or (strictUsedLen) if `len` exceeds the writable
   *   bytes. Nothing is consumed, so the same error repeats.
   */
  popUsed(): UsedElement<T> | null

  /**
   * Allocation-free {@link popUsed}: fills `out` and returns `true`, or
   * returns `false` (leaving `out` untouched) if no element is pending.
   * @throws DriverError `BAD_USED` as popUsed
   */
  popUsedInto(out: UsedElement<T>): boolean

  /**
   * Pops every pending used element.
   * @throws DriverError `BAD_USED` as popUsed (elements before the bad one are consumed)
   */
  popAllUsed(): Array<UsedElement<T>>

  /**
   * Writes `used_event`: ask for an interrupt once the device's used idx
   * moves past `idx`.
   * @param idx u16
   * @throws DriverError `NO_EVENT_IDX` without event idx; RangeError naming `idx`
   */
  setUsedEvent(idx: number): void

  /**
   * Asks the device not to interrupt: sets `VRING_AVAIL_F_NO_INTERRUPT`, or
   * with event idx writes `used_event = usedIdx - 1` (matches only after a
   * full u16 wrap). Advisory: a device may still interrupt.
   */
  disableInterrupts(): void

  /**
   * Re-enables interrupts: clears the avail flags, or with event idx writes
   * `used_event = usedIdx` (interrupt on the next used element). Check
   * {@link hasUsed} afterwards to catch elements used in between.
   */
  enableInterrupts(): void

  /**
   * Whether the device should interrupt after moving its used idx from
   * `oldUsed` to `newUsed`, according to what the driver wrote: with event
   * idx `vringNeedEvent(used_event, newUsed, oldUsed)`, otherwise
   * `!(avail.flags & VRING_AVAIL_F_NO_INTERRUPT)`; `false` if the two are
   * equal. Lets tests check a device's own "needs notification" answers.
   * @param oldUsed used idx at the device's previous decision (u16)
   * @param newUsed used idx now (u16); default: loaded from memory
   * @throws RangeError naming `oldUsed` / `newUsed`
   */
  interruptNeeded(oldUsed: number, newUsed?: number): boolean

  // ---- raw helpers: write guest memory only, never the driver's shadow state ----

  /**
   * RAW: writes descriptor `index` of the table verbatim (any flags / next,
   * addr up to 2^64 - 1 as a bigint). Does not touch the free list.
   * @throws RangeError naming `index` or the `desc` field out of its u64/u32/u16 range
   */
  writeDescriptor(index: number, desc: RawDescriptor): void

  /** RAW: reads descriptor `index` of the table (addr as a bigint). @throws RangeError naming `index` */
  readDescriptor(index: number): RawDescriptor & { addr: bigint }

  /** RAW: writes `avail.ring[slot] = head` (any u16). @throws RangeError naming `slot` / `head` */
  writeAvailEntry(slot: number, head: number): void

  /**
   * RAW: stores `avail.idx = idx` (release) without updating the driver's
   * shadow; the driver's next publish overwrites it.
   * @throws RangeError naming `idx`
   */
  setAvailIdx(idx: number): void

  /** RAW: loads `avail.idx` from memory. */
  readAvailIdx(): number

  /** RAW: loads the device's `used.idx` from memory. */
  readUsedIdx(): number

  /** RAW: reads `used.ring[slot]` without validating or consuming it. @throws RangeError naming `slot` */
  readUsedElem(slot: number): RawUsedElem
}
