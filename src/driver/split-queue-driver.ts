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
 * The guest-driver side of a split virtqueue (virtio 1.x, 2.7): owns the
 * descriptor table and the available ring, consumes the used ring. See
 * driver.d.ts for the full documentation of every member.
 */
export class SplitQueueDriver<T = unknown> extends RawQueueAccess {
  readonly eventIdx: boolean
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
  get availIdx(): number {
    return this.availShadow
  }
  get publishedAvailIdx(): number {
    return this.publishedIdx
  }
  get pendingCount(): number {
    return (this.availShadow - this.publishedIdx) & 0xffff
  }
  get usedIdx(): number {
    return this.usedShadow
  }
  get inFlight(): number {
    return this.inFlightCount
  }
  get freeCount(): number {
    return this.numFree
  }
  get kicksSent(): number {
    return this.sent
  }
  get kicksSuppressed(): number {
    return this.suppressed
  }
  get interruptsEnabled(): boolean {
    return this.irqEnabled
  }

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

  publish(): number {
    const n = (this.availShadow - this.publishedIdx) & 0xffff
    if (n === 0) return 0
    for (let k = 0; k < n; k++) this.state[this.ringHeads[(this.publishedIdx + k) & this.mask]] = PUBLISHED
    this.memory.storeU16(this.availRing + 2, this.availShadow) // release
    this.publishedIdx = this.availShadow
    return n
  }

  // ---- notifications (driver -> device) ----
  notifyNeeded(): boolean {
    return this.publishedIdx !== this.kickedIdx && this.deviceWantsKick(this.publishedIdx, this.kickedIdx)
  }

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
  hasUsed(): boolean {
    return this.usedShadow !== this.deviceUsed || this.memory.loadU16(this.usedRing + 2) !== this.usedShadow
  }

  popUsed(): UsedElement<T> | null {
    if (!this.popRaw()) return null
    return { head: this.popHead, len: this.popLen, token: this.popToken }
  }

  popUsedInto(out: UsedElement<T>): boolean {
    if (!this.popRaw()) return false
    out.head = this.popHead
    out.len = this.popLen
    out.token = this.popToken
    return true
  }

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
  setUsedEvent(idx: number): void {
    this.requireEventIdx('setUsedEvent')
    this.memory.storeU16(this.usedEventAddr, checkInt(idx, 'idx', 0, 0xffff))
  }

  disableInterrupts(): void {
    this.irqEnabled = false
    // With event idx, a used_event just behind our position only matches after a full u16 wrap.
    if (this.eventIdx) this.memory.storeU16(this.usedEventAddr, (this.usedShadow - 1) & 0xffff)
    else this.memory.storeU16(this.availRing, C.VRING_AVAIL_F_NO_INTERRUPT)
  }

  enableInterrupts(): void {
    this.irqEnabled = true
    if (this.eventIdx) this.memory.storeU16(this.usedEventAddr, this.usedShadow)
    else this.memory.storeU16(this.availRing, 0)
  }

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
