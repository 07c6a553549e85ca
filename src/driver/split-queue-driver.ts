import { DriverConstants as C, vringNeedEvent } from './constants'
import {
  argRangeError,
  argTypeError,
  checkAddr,
  checkAligned,
  checkDisjoint,
  checkInt,
  checkPow2,
  DriverError,
  validateBuffers,
} from './errors'
import { availRingBytes, descTableBytes, usedRingBytes } from './layout'
import { type AreaAccess, type DriverMemory, checkMemory, openArea } from './memory'
import { RawQueueAccess } from './raw-access'
import type {
  AddChainOptions,
  DriverBuffer,
  IndirectTableAllocator,
  SplitQueueDriverOptions,
  UsedElement,
} from './types'

const NEXT = C.VIRTQ_DESC_F_NEXT
const WRITE = C.VIRTQ_DESC_F_WRITE

// Per-head chain state.
const FREE = 0
const PENDING = 1 // in the avail ring, avail idx not yet stored
const PUBLISHED = 2 // visible to the device

/**
 * The guest-driver side of one split virtqueue (virtio 1.x, 2.7): owns the
 * descriptor table and the available ring, consumes the used ring.
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
 * @example A guest driver against a device queue in the same memory
 * ```ts
 * import { GuestMemory, Queue } from 'virtio-queue'
 * import { SplitQueueDriver, setUpDeviceQueue, splitQueueLayout } from 'virtio-queue/driver'
 *
 * const memory = GuestMemory.fromRanges([[0, 0x100000]])
 * const layout = splitQueueLayout(0x1000, 256)
 * const driver = new SplitQueueDriver<string>(memory, { ...layout, eventIdx: true })
 * using guard = new Queue(memory, 256).lockWithMemory()
 * setUpDeviceQueue(guard, driver) // what the transport does when the guest sets the queue up
 *
 * driver.addChain([{ addr: 0x10000, len: 16 }, { addr: 0x20000, len: 512, writable: true }], { token: 'r1' })
 * if (driver.kick()) {
 *   for (const chain of guard.iter()) guard.addUsed(chain.headIndex, 512)
 * }
 * driver.popUsed() // { head: 0, len: 512, token: 'r1' }
 * ```
 *
 * @typeParam T the type of per-chain tokens
 */
export class SplitQueueDriver<T = unknown> extends RawQueueAccess {
  /** Whether VIRTIO_F_EVENT_IDX is in use. */
  readonly eventIdx: boolean
  /** Whether popUsed() checks used lengths (see {@link SplitQueueDriverOptions.strictUsedLen}). */
  readonly strictUsedLen: boolean
  private readonly mask: number
  private readonly allocator: IndirectTableAllocator | undefined
  private readonly desc: AreaAccess
  private readonly avail: AreaAccess
  private readonly used: AreaAccess
  // Shadow state. `next` doubles as free-list link and chain link.
  private readonly next: Uint16Array
  private readonly chainLen: Uint16Array
  private readonly chainTail: Uint16Array
  private readonly state: Uint8Array
  private readonly writableBytes: Float64Array
  private readonly ownedTable: Float64Array // allocator-owned indirect table, or -1
  private readonly ringHeads: Uint16Array // head stored in each avail slot
  private readonly tokens: Array<T | undefined>
  private readonly scratch: Uint8Array // indirect table staging area
  private readonly scratchDv: DataView
  private readonly scratchViews: Array<Uint8Array | undefined>
  private freeHead = 0
  private numFree = 0
  private availShadow = 0
  private publishedIdx = 0
  private kickedIdx = 0
  private usedShadow = 0
  private deviceUsed = 0
  private inFlightCount = 0
  private sent = 0
  private suppressed = 0
  private irqEnabled = true
  private popHead = 0
  private popLen = 0
  private popToken: T | undefined = undefined

  /**
   * Takes ownership of the queue: zero-initialises the descriptor table and
   * both rings (flags, idx, entries, event fields) and builds a free list of
   * all `size` descriptors.
   * @param memory guest memory holding the queue
   * @param options queue size, addresses and features
   * @throws RangeError for a bad size, misaligned or overlapping areas, or
   *   areas outside guest memory; TypeError for a bad `memory` or option
   */
  constructor(memory: DriverMemory, options: SplitQueueDriverOptions) {
    checkMemory(memory)
    if (options === null || typeof options !== 'object') throw argTypeError('options must be an object')
    const size = checkPow2(options.size, 'options.size', C.MAX_QUEUE_SIZE)
    const descTable = checkAddr(options.descTable, 'options.descTable')
    const availRing = checkAddr(options.availRing, 'options.availRing')
    const usedRing = checkAddr(options.usedRing, 'options.usedRing')
    checkAligned(descTable, C.DESC_TABLE_ALIGN, 'options.descTable')
    checkAligned(availRing, C.AVAIL_RING_ALIGN, 'options.availRing')
    checkAligned(usedRing, C.USED_RING_ALIGN, 'options.usedRing')
    checkDisjoint([
      ['descTable', descTable, descTableBytes(size)],
      ['availRing', availRing, availRingBytes(size)],
      ['usedRing', usedRing, usedRingBytes(size)],
    ])
    const { eventIdx = false, strictUsedLen = false, allocator } = options
    if (typeof eventIdx !== 'boolean') throw argTypeError('options.eventIdx must be a boolean')
    if (typeof strictUsedLen !== 'boolean') throw argTypeError('options.strictUsedLen must be a boolean')
    if (
      allocator !== undefined &&
      (typeof allocator !== 'object' ||
        allocator === null ||
        typeof allocator.alloc !== 'function' ||
        typeof allocator.free !== 'function')
    ) {
      throw argTypeError('options.allocator must have alloc(size, align) and free(addr) methods')
    }
    super(memory, size, descTable, availRing, usedRing)
    this.eventIdx = eventIdx
    this.strictUsedLen = strictUsedLen
    this.allocator = allocator
    this.mask = size - 1
    this.desc = openArea(memory, descTable, descTableBytes(size))
    this.avail = openArea(memory, availRing, availRingBytes(size))
    this.used = openArea(memory, usedRing, usedRingBytes(size))
    this.next = new Uint16Array(size)
    this.chainLen = new Uint16Array(size)
    this.chainTail = new Uint16Array(size)
    this.state = new Uint8Array(size)
    this.writableBytes = new Float64Array(size)
    this.ownedTable = new Float64Array(size).fill(-1)
    this.ringHeads = new Uint16Array(size)
    this.tokens = new Array<T | undefined>(size).fill(undefined)
    this.scratch = new Uint8Array(C.DESC_SIZE * size)
    this.scratchDv = new DataView(this.scratch.buffer)
    this.scratchViews = new Array<Uint8Array | undefined>(size + 1).fill(undefined)
    this.reset()
  }

  // ---- shadow state ----
  /** Shadow avail idx: the next entry index to fill, including unpublished entries (u16). */
  get availIdx(): number {
    return this.availShadow
  }
  /** The avail idx last stored to memory (u16). */
  get publishedAvailIdx(): number {
    return this.publishedIdx
  }
  /** Entries written to the avail ring but not yet published. */
  get pendingCount(): number {
    return (this.availShadow - this.publishedIdx) & 0xffff
  }
  /** Shadow used idx: the next used entry the driver will consume (u16). */
  get usedIdx(): number {
    return this.usedShadow
  }
  /** Chains added and not yet popped (published or not). */
  get inFlight(): number {
    return this.inFlightCount
  }
  /** Free descriptors. */
  get freeCount(): number {
    return this.numFree
  }
  /** Kicks that returned `true` since construction / reset. */
  get kicksSent(): number {
    return this.sent
  }
  /** Kicks the device's suppression turned into `false` since construction / reset. */
  get kicksSuppressed(): number {
    return this.suppressed
  }
  /** Whether interrupts are enabled (see {@link disableInterrupts}). */
  get interruptsEnabled(): boolean {
    return this.irqEnabled
  }

  /**
   * Re-initialises the queue as the constructor does (e.g. after a device
   * reset): zeroes the rings, rebuilds the free list, forgets all chains
   * (freeing driver-allocated indirect tables) and clears the counters.
   */
  reset(): void {
    const mem = this.memory
    const size = this.size
    mem.write(this.descTable, new Uint8Array(descTableBytes(size)))
    mem.write(this.availRing, new Uint8Array(availRingBytes(size)))
    mem.write(this.usedRing, new Uint8Array(usedRingBytes(size)))
    for (let i = 0; i < size; i++) {
      const t = this.ownedTable[i]
      if (t >= 0 && this.allocator !== undefined) this.allocator.free(t)
      this.next[i] = (i + 1) & this.mask
    }
    this.chainLen.fill(0)
    this.chainTail.fill(0)
    this.state.fill(FREE)
    this.writableBytes.fill(0)
    this.ownedTable.fill(-1)
    this.tokens.fill(undefined)
    this.freeHead = 0
    this.numFree = size
    this.availShadow = this.publishedIdx = this.kickedIdx = 0
    this.usedShadow = this.deviceUsed = 0
    this.inFlightCount = this.sent = this.suppressed = 0
    this.irqEnabled = true
    this.popToken = undefined
  }

  // ---- adding buffers ----
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
  addChain(buffers: readonly DriverBuffer[], options?: AddChainOptions<T>): number {
    const n = validateBuffers(buffers)
    const indirect = options?.indirect
    const head =
      indirect === undefined || indirect === false
        ? this.writeDirect(buffers, n)
        : this.writeIndirect(buffers, n, indirect)
    let wbytes = 0
    for (let i = 0; i < n; i++) if (buffers[i].writable) wbytes += buffers[i].len
    this.writableBytes[head] = wbytes
    this.tokens[head] = options?.token
    this.state[head] = PENDING
    const slot = this.availShadow & this.mask
    this.avail.setU16(4 + 2 * slot, head)
    this.ringHeads[slot] = head
    this.availShadow = (this.availShadow + 1) & 0xffff
    this.inFlightCount++
    if (options?.publish !== false) this.publish()
    return head
  }

  private takeDescriptors(n: number): number {
    if (n > this.numFree) throw this.noSpace(n)
    const head = this.freeHead
    let tail = head
    for (let i = 1; i < n; i++) tail = this.next[tail]
    this.freeHead = this.next[tail]
    this.numFree -= n
    this.chainLen[head] = n
    this.chainTail[head] = tail
    return head
  }

  private noSpace(n: number): DriverError {
    return new DriverError(
      'NO_SPACE',
      `need ${n} free descriptor(s), ${this.numFree} of ${this.size} free (${this.inFlightCount} chains in flight)`,
    )
  }

  private writeDirect(buffers: readonly DriverBuffer[], n: number): number {
    const head = this.takeDescriptors(n)
    const d = this.desc
    let idx = head
    for (let i = 0; i < n; i++) {
      const b = buffers[i]
      const off = idx * C.DESC_SIZE
      const last = i === n - 1
      d.setU64(off, b.addr)
      d.setU32(off + 8, b.len)
      d.setU16(off + 12, (b.writable ? WRITE : 0) | (last ? 0 : NEXT))
      d.setU16(off + 14, last ? 0 : this.next[idx])
      idx = this.next[idx]
    }
    return head
  }

  private writeIndirect(buffers: readonly DriverBuffer[], n: number, where: true | { tableAddr: number }): number {
    if (n > this.size) {
      throw argRangeError(`buffers: an indirect chain of ${n} descriptors exceeds the queue size ${this.size}`)
    }
    if (this.numFree < 1) throw this.noSpace(1) // before touching the table or the allocator
    let tableAddr: number
    let owned = false
    if (where === true) {
      if (this.allocator === undefined) {
        throw argTypeError('options.indirect: true needs an `allocator` in the driver options (or pass { tableAddr })')
      }
      tableAddr = this.allocator.alloc(C.DESC_SIZE * n, C.DESC_TABLE_ALIGN)
      owned = true
    } else if (typeof where === 'object' && where !== null) {
      tableAddr = checkAddr(where.tableAddr, 'options.indirect.tableAddr')
    } else {
      throw argTypeError('options.indirect must be a boolean or { tableAddr }')
    }
    const dv = this.scratchDv
    for (let i = 0; i < n; i++) {
      const b = buffers[i]
      const off = i * C.DESC_SIZE
      const last = i === n - 1
      dv.setUint32(off, b.addr >>> 0, true)
      dv.setUint32(off + 4, Math.floor(b.addr / 4294967296), true)
      dv.setUint32(off + 8, b.len, true)
      dv.setUint16(off + 12, (b.writable ? WRITE : 0) | (last ? 0 : NEXT), true)
      dv.setUint16(off + 14, last ? 0 : i + 1, true)
    }
    let view = this.scratchViews[n]
    if (view === undefined) view = this.scratchViews[n] = this.scratch.subarray(0, C.DESC_SIZE * n)
    try {
      this.memory.write(tableAddr, view)
    } catch (e) {
      if (owned) this.allocator!.free(tableAddr)
      throw e
    }
    const head = this.takeDescriptors(1)
    const off = head * C.DESC_SIZE
    this.desc.setU64(off, tableAddr)
    this.desc.setU32(off + 8, C.DESC_SIZE * n)
    this.desc.setU16(off + 12, C.VIRTQ_DESC_F_INDIRECT)
    this.desc.setU16(off + 14, 0)
    if (owned) this.ownedTable[head] = tableAddr
    return head
  }

  /**
   * Makes all pending entries visible: stores the shadow avail idx with
   * {@link DriverMemory.storeU16} (release), after the descriptors and ring
   * entries were written.
   * @returns the number of entries published (0 if none were pending)
   */
  publish(): number {
    const n = (this.availShadow - this.publishedIdx) & 0xffff
    if (n === 0) return 0
    for (let k = 0; k < n; k++) this.state[this.ringHeads[(this.publishedIdx + k) & this.mask]] = PUBLISHED
    this.memory.storeU16(this.availRing + 2, this.availShadow) // release
    this.publishedIdx = this.availShadow
    return n
  }

  // ---- notifications (driver -> device) ----
  /**
   * Whether the device must be notified about the entries published since
   * the last {@link kick} (pending entries are not counted). With event idx:
   * `vringNeedEvent(avail_event, publishedAvailIdx, idxAtLastKick)`; without:
   * `!(used.flags & VRING_USED_F_NO_NOTIFY)`. `false` if nothing new. No side effects.
   */
  notifyNeeded(): boolean {
    return this.publishedIdx !== this.kickedIdx && this.deviceWantsKick(this.publishedIdx, this.kickedIdx)
  }

  /**
   * Publishes pending entries, then decides whether to notify the device
   * (as {@link notifyNeeded}), records the decision in {@link kicksSent} /
   * {@link kicksSuppressed} and starts a new kick window.
   * @returns `true` if the caller must notify the device; `false` if
   *   suppressed or nothing was published since the last kick (not counted)
   */
  kick(): boolean {
    this.publish()
    const newIdx = this.publishedIdx
    const oldIdx = this.kickedIdx
    if (newIdx === oldIdx) return false
    this.kickedIdx = newIdx
    const need = this.deviceWantsKick(newIdx, oldIdx)
    if (need) this.sent++
    else this.suppressed++
    return need
  }

  private deviceWantsKick(newIdx: number, oldIdx: number): boolean {
    // Atomics are sequentially consistent: the avail idx store above cannot be
    // reordered after these loads (the spec's full barrier).
    if (this.eventIdx) return vringNeedEvent(this.memory.loadU16(this.availEventAddr), newIdx, oldIdx)
    return (this.memory.loadU16(this.usedRing) & C.VRING_USED_F_NO_NOTIFY) === 0
  }

  // ---- used ring ----
  /** Whether the device has published used elements the driver has not consumed yet. */
  hasUsed(): boolean {
    return this.usedShadow !== this.deviceUsed || this.memory.loadU16(this.usedRing + 2) !== this.usedShadow
  }

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
  popUsed(): UsedElement<T> | null {
    if (!this.popRaw()) return null
    return { head: this.popHead, len: this.popLen, token: this.popToken }
  }

  /**
   * Allocation-free {@link popUsed}: fills `out` and returns `true`, or
   * returns `false` (leaving `out` untouched) if no element is pending.
   * @throws DriverError `BAD_USED` as popUsed
   */
  popUsedInto(out: UsedElement<T>): boolean {
    if (!this.popRaw()) return false
    out.head = this.popHead
    out.len = this.popLen
    out.token = this.popToken
    return true
  }

  /**
   * Pops every pending used element.
   * @throws DriverError `BAD_USED` as popUsed (elements before the bad one are consumed)
   */
  popAllUsed(): Array<UsedElement<T>> {
    const all: Array<UsedElement<T>> = []
    while (this.popRaw()) all.push({ head: this.popHead, len: this.popLen, token: this.popToken })
    return all
  }

  private popRaw(): boolean {
    if (this.usedShadow === this.deviceUsed) {
      const idx = this.memory.loadU16(this.usedRing + 2) // acquire
      if (idx === this.usedShadow) return false
      const ready = (idx - this.usedShadow) & 0xffff
      const outstanding = this.inFlightCount - this.pendingCount
      if (ready > outstanding) {
        throw new DriverError(
          'BAD_USED',
          `used idx jumped from ${this.usedShadow} to ${idx} (${ready} entries) but only ${outstanding} chain(s) are outstanding`,
        )
      }
      this.deviceUsed = idx
    }
    const slot = this.usedShadow & this.mask
    const id = this.used.u32(4 + 8 * slot)
    const len = this.used.u32(8 + 8 * slot)
    if (id >= this.size || this.state[id] !== PUBLISHED) {
      throw new DriverError(
        'BAD_USED',
        `used ring slot ${slot} (used idx ${this.usedShadow}) names descriptor ${id}, which is not the head of an outstanding chain`,
      )
    }
    if (this.strictUsedLen && len > this.writableBytes[id]) {
      throw new DriverError(
        'BAD_USED',
        `used len ${len} for head ${id} exceeds the chain's ${this.writableBytes[id]} writable bytes`,
      )
    }
    this.popHead = id
    this.popLen = len
    this.popToken = this.tokens[id]
    this.reclaim(id)
    this.usedShadow = (this.usedShadow + 1) & 0xffff
    return true
  }

  private reclaim(head: number): void {
    const n = this.chainLen[head]
    this.next[this.chainTail[head]] = this.freeHead
    this.freeHead = head
    this.numFree += n
    this.chainLen[head] = 0
    this.state[head] = FREE
    this.tokens[head] = undefined
    const table = this.ownedTable[head]
    if (table >= 0) {
      this.ownedTable[head] = -1
      this.allocator!.free(table)
    }
    this.inFlightCount--
  }

  // ---- interrupts (device -> driver) ----
  /**
   * Writes `used_event`: ask for an interrupt once the device's used idx
   * moves past `idx`.
   * @param idx u16
   * @throws DriverError `NO_EVENT_IDX` without event idx; RangeError naming `idx`
   */
  setUsedEvent(idx: number): void {
    this.requireEventIdx('setUsedEvent')
    this.memory.storeU16(this.usedEventAddr, checkInt(idx, 'idx', 0, 0xffff))
  }

  /**
   * Asks the device not to interrupt: sets `VRING_AVAIL_F_NO_INTERRUPT`, or
   * with event idx writes `used_event = usedIdx - 1` (matches only after a
   * full u16 wrap). Advisory: a device may still interrupt.
   */
  disableInterrupts(): void {
    this.irqEnabled = false
    // With event idx, a used_event just behind our position only matches after a full u16 wrap.
    if (this.eventIdx) this.memory.storeU16(this.usedEventAddr, (this.usedShadow - 1) & 0xffff)
    else this.memory.storeU16(this.availRing, C.VRING_AVAIL_F_NO_INTERRUPT)
  }

  /**
   * Re-enables interrupts: clears the avail flags, or with event idx writes
   * `used_event = usedIdx` (interrupt on the next used element). Check
   * {@link hasUsed} afterwards to catch elements used in between.
   */
  enableInterrupts(): void {
    this.irqEnabled = true
    if (this.eventIdx) this.memory.storeU16(this.usedEventAddr, this.usedShadow)
    else this.memory.storeU16(this.availRing, 0)
  }

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
  interruptNeeded(oldUsed: number, newUsed?: number): boolean {
    checkInt(oldUsed, 'oldUsed', 0, 0xffff)
    const cur = newUsed === undefined ? this.memory.loadU16(this.usedRing + 2) : checkInt(newUsed, 'newUsed', 0, 0xffff)
    if (cur === oldUsed) return false
    if (this.eventIdx) return vringNeedEvent(this.memory.loadU16(this.usedEventAddr), cur, oldUsed)
    return (this.memory.loadU16(this.availRing) & C.VRING_AVAIL_F_NO_INTERRUPT) === 0
  }

  private requireEventIdx(what: string): void {
    if (!this.eventIdx) throw new DriverError('NO_EVENT_IDX', `${what}() needs a queue created with eventIdx: true`)
  }
}
