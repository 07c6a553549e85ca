// The simulated guest: a virtio-blk driver issuing a mixed workload through
// SplitQueueDriver and checking every completion. It keeps a shadow copy of
// what the disk must contain and compares every byte read back against it.
import { type DriverBuffer, DriverError, type UsedElement } from '../../driver'

import { type Rng, fillPattern } from './random'
import {
  HEADER_SIZE,
  SECTOR_SIZE,
  encodeHeader,
  idBytes,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  statusName,
} from './protocol'
import type { Vm } from './vm'

/** What the guest sends. The last four are deliberately wrong and must fail the right way. */
export type RequestKind =
  | 'read'
  | 'write'
  | 'flush'
  | 'getId'
  | 'unsupported' // unknown or unnegotiated type → UNSUPP
  | 'outOfRange' // past the end, u64-overflowing, or not whole sectors → IOERR
  | 'shortHeader' // an 8-byte header → IOERR
  | 'noStatus' // no writable byte at all → used len 0, nothing written

/** Relative frequencies of the request kinds. */
export const DEFAULT_MIX: Readonly<Record<RequestKind, number>> = {
  read: 470,
  write: 470,
  flush: 1,
  getId: 10,
  unsupported: 15,
  outOfRange: 15,
  shortHeader: 9,
  noStatus: 8,
}

/** Largest request: 128 sectors = 64 KiB. */
export const MAX_REQUEST_SECTORS = 128
const STATUS_OFFSET = HEADER_SIZE // the status byte sits right after the header in the request struct
const STATUS_UNSET = 0xff
const POISON = 0xee
const UNSUPPORTED_TYPES = [VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, 2, 0x7fffffff]

/** One request in flight; the driver hands it back with the used element. */
export interface BlkRequest {
  kind: RequestKind
  /** Guest address of the request struct: header at +0, status byte at +16. */
  structAddr: number
  /** Data buffers (guest addresses and lengths). */
  segAddrs: number[]
  segLens: number[]
  /** Byte offset on disk of the data, for reads and writes. */
  diskOffset: number
  /** Sectors locked against overlapping requests: [lockStart, lockStart + lockCount). */
  lockStart: number
  lockCount: number
  /** Expected status byte, or -1 for a chain without one; expected used len. */
  expectStatus: number
  expectLen: number
}

export interface GuestOptions {
  /** Requests in flight at most. */
  depth: number
  /** Requests to submit in total (Infinity: until stopSubmitting()). */
  total: number
  rng: Rng
  /** Expected contents of the first `shadow.length` bytes of the disk: where reads and writes go. */
  shadow: Buffer
  /** The device's capacity in sectors (out-of-range requests aim past it). */
  capacitySectors: number
  /** The device's GET_ID string. */
  serial: string
  mix?: Readonly<Record<RequestKind, number>>
  /** Probability that a request goes in an indirect table. Default 0.25. */
  indirectChance?: number
}

export interface GuestStats {
  submitted: number
  completed: number
  byKind: Record<RequestKind, number>
  /** Indirect chains submitted. */
  indirect: number
  /** Reads whose data differed from the shadow, and the bytes that differed. */
  verifyErrors: number
  mismatchedBytes: number
  /** Completions with a wrong status byte or used len. */
  unexpected: number
  /** Completions by status byte seen: OK, IOERR, UNSUPP; none = chains without one. */
  status: { ok: number; ioerr: number; unsupp: number; none: number }
  /** Data bytes read back and verified, and written. */
  bytesVerified: number
  bytesWritten: number
  /** Interrupts handled, and those that found nothing to reap. */
  interrupts: number
  spuriousInterrupts: number
  /** Submissions postponed: no descriptor, guest memory or unlocked sector range free. */
  stalls: number
}

const MAX_ERROR_MESSAGES = 10

export class BlkGuest {
  readonly stats: GuestStats = {
    submitted: 0,
    completed: 0,
    indirect: 0,
    verifyErrors: 0,
    mismatchedBytes: 0,
    unexpected: 0,
    byKind: { read: 0, write: 0, flush: 0, getId: 0, unsupported: 0, outOfRange: 0, shortHeader: 0, noStatus: 0 },
    status: { ok: 0, ioerr: 0, unsupp: 0, none: 0 },
    bytesVerified: 0,
    bytesWritten: 0,
    interrupts: 0,
    spuriousInterrupts: 0,
    stalls: 0,
  }
  /** The first few failures, described. */
  readonly errors: string[] = []
  readonly #vm: Vm<BlkRequest>
  readonly #o: Required<GuestOptions>
  readonly #spanSectors: number
  // Per-sector locks of the span: in-flight readers, and an in-flight writer.
  readonly #readers: Uint16Array
  readonly #writer: Uint8Array
  readonly #id: Buffer
  readonly #used: UsedElement<BlkRequest> = { head: 0, len: 0, token: undefined }
  #stopped = false

  constructor(vm: Vm<BlkRequest>, options: GuestOptions) {
    this.#vm = vm
    this.#o = { mix: DEFAULT_MIX, indirectChance: 0.25, ...options }
    this.#spanSectors = Math.floor(options.shadow.length / SECTOR_SIZE)
    if (this.#spanSectors < 1) throw new RangeError('the shadow must cover at least one sector')
    this.#readers = new Uint16Array(this.#spanSectors)
    this.#writer = new Uint8Array(this.#spanSectors)
    this.#id = idBytes(options.serial)
  }

  /** Whether another request may be added now. */
  canSubmit(): boolean {
    const d = this.#vm.driver
    return !this.#stopped && this.stats.submitted < this.#o.total && d.inFlight < this.#o.depth && d.freeCount > 0
  }

  /** Everything submitted has completed and nothing more will be. */
  get done(): boolean {
    return (this.#stopped || this.stats.submitted >= this.#o.total) && this.#vm.driver.inFlight === 0
  }

  /** Submit nothing more (the --seconds deadline); in-flight requests still complete. */
  stopSubmitting(): void {
    this.#stopped = true
  }

  /** Adds up to `max` requests, then publishes them; returns whether the device must be kicked. */
  submit(max: number): boolean {
    let added = 0
    while (added < max && this.canSubmit()) {
      if (!this.#add(this.#o.rng.pick(this.#o.mix))) {
        this.stats.stalls++
        break
      }
      added++
    }
    return added > 0 && this.#vm.driver.kick()
  }

  /** The interrupt handler: reaps and checks completions until the used ring stays empty. */
  handleInterrupt(): number {
    const d = this.#vm.driver
    this.stats.interrupts++
    let n = 0
    for (;;) {
      d.disableInterrupts()
      while (d.popUsedInto(this.#used)) {
        this.#complete(this.#used.token!, this.#used.len)
        n++
      }
      d.enableInterrupts()
      // The device may have completed more between the last pop and re-enabling.
      if (!d.hasUsed()) break
    }
    if (n === 0) this.stats.spuriousInterrupts++
    return n
  }

  // ---- building requests ----

  #add(kind: RequestKind): boolean {
    const rng = this.#o.rng
    const { allocator, driver } = this.#vm
    const req: BlkRequest = {
      kind,
      structAddr: -1,
      segAddrs: [],
      segLens: [],
      diskOffset: 0,
      lockStart: 0,
      lockCount: 0,
      expectStatus: VIRTIO_BLK_S_OK,
      expectLen: 1,
    }
    let type = VIRTIO_BLK_T_IN
    let sector: bigint = 0n
    let writable = false
    let headerLen = HEADER_SIZE
    let hasStatus = true
    let dataLen = 0
    switch (kind) {
      case 'read':
      case 'write': {
        const n = this.#requestSectors()
        const start = this.#lock(n, kind === 'write')
        if (start < 0) return false
        type = kind === 'read' ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT
        writable = kind === 'read'
        sector = BigInt(start)
        req.lockStart = start
        req.lockCount = n
        dataLen = n * SECTOR_SIZE
        req.diskOffset = start * SECTOR_SIZE
        req.expectLen = kind === 'read' ? dataLen + 1 : 1
        break
      }
      case 'flush':
        type = VIRTIO_BLK_T_FLUSH
        break
      case 'getId':
        type = VIRTIO_BLK_T_GET_ID
        writable = true
        dataLen = 20
        req.expectLen = 21
        break
      case 'unsupported':
        type = UNSUPPORTED_TYPES[rng.int(0, UNSUPPORTED_TYPES.length - 1)]!
        dataLen = 16 // e.g. one virtio_blk_discard_write_zeroes segment
        req.expectStatus = VIRTIO_BLK_S_UNSUPP
        break
      case 'outOfRange': {
        const cap = this.#o.capacitySectors
        writable = rng.chance(0.5) // IN or OUT
        type = writable ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT
        const variant = rng.int(0, 2)
        dataLen = rng.int(1, 8) * SECTOR_SIZE
        if (variant === 0)
          sector = BigInt(Math.max(0, cap - rng.int(0, dataLen / SECTOR_SIZE - 1))) // runs past the end
        else if (variant === 1)
          sector = 0xffffffffffffffffn - BigInt(rng.int(0, 3)) // sector + count overflows u64
        else dataLen -= rng.int(1, SECTOR_SIZE - 1) // in range, but not whole sectors
        req.expectStatus = VIRTIO_BLK_S_IOERR
        break
      }
      case 'shortHeader':
        headerLen = 8
        req.expectStatus = VIRTIO_BLK_S_IOERR
        break
      case 'noStatus':
        type = VIRTIO_BLK_T_OUT // to sector 0: a device that served it would corrupt what reads check
        dataLen = SECTOR_SIZE
        hasStatus = false
        req.expectStatus = -1
        req.expectLen = 0
        break
    }
    try {
      req.structAddr = allocator.alloc(HEADER_SIZE + 1, 16)
      this.#allocData(req, dataLen)
    } catch (e) {
      if (!(e instanceof DriverError) || e.code !== 'NO_MEMORY') throw e
      this.#release(req)
      return false
    }
    const mem = this.#vm.memory
    encodeHeader(mem.slice(req.structAddr, HEADER_SIZE), type, sector)
    mem.writeU8(req.structAddr + STATUS_OFFSET, STATUS_UNSET)
    for (let i = 0; i < req.segAddrs.length; i++) {
      const view = mem.slice(req.segAddrs[i]!, req.segLens[i]!)
      if (writable) view.fill(POISON)
      else fillPattern(view, rng.u32())
    }
    const buffers: DriverBuffer[] = [{ addr: req.structAddr, len: headerLen }]
    for (let i = 0; i < req.segAddrs.length; i++)
      buffers.push({ addr: req.segAddrs[i]!, len: req.segLens[i]!, writable })
    if (hasStatus) buffers.push({ addr: req.structAddr + STATUS_OFFSET, len: 1, writable: true })
    // Indirect sometimes, and whenever the ring has too few free descriptors for a direct chain.
    const indirect = buffers.length > 1 && (rng.chance(this.#o.indirectChance) || driver.freeCount < buffers.length)
    try {
      driver.addChain(buffers, { indirect, token: req, publish: false })
    } catch (e) {
      if (!(e instanceof DriverError) || (e.code !== 'NO_MEMORY' && e.code !== 'NO_SPACE')) throw e
      this.#release(req)
      return false
    }
    if (indirect) this.stats.indirect++
    this.stats.submitted++
    this.stats.byKind[kind]++
    return true
  }

  /** 512 B .. 64 KiB, powers of two mostly. */
  #requestSectors(): number {
    const rng = this.#o.rng
    let n = 1 << rng.int(0, 7)
    if (rng.chance(0.3)) n = rng.int(1, n)
    return Math.min(n, this.#spanSectors)
  }

  /** Locks `n` sectors no in-flight request conflicts with; returns the first, or -1. */
  #lock(n: number, write: boolean): number {
    const rng = this.#o.rng
    for (let attempt = 0; attempt < 4; attempt++) {
      let start = rng.int(0, this.#spanSectors - n)
      if (rng.chance(0.7)) start &= ~7 // mostly 4 KiB aligned, like a page cache would
      let free = true
      for (let s = start; s < start + n && free; s++) free = this.#writer[s] === 0 && (!write || this.#readers[s] === 0)
      if (!free) continue
      for (let s = start; s < start + n; s++) {
        if (write) this.#writer[s] = 1
        else this.#readers[s]!++
      }
      return start
    }
    return -1
  }

  /** Data in 1..4 separately allocated buffers, split at arbitrary byte offsets. */
  #allocData(req: BlkRequest, len: number): void {
    if (len === 0) return
    const rng = this.#o.rng
    const pieces = len < 1024 ? 1 : rng.pick({ 1: 55, 2: 25, 3: 12, 4: 8 })
    const cuts = new Set<number>()
    while (cuts.size < Number(pieces) - 1) cuts.add(rng.int(1, len - 1))
    let prev = 0
    for (const cut of [...[...cuts].sort((a, b) => a - b), len]) {
      req.segAddrs.push(this.#vm.allocator.alloc(cut - prev, 8))
      req.segLens.push(cut - prev)
      prev = cut
    }
  }

  // ---- completions ----

  #complete(req: BlkRequest, len: number): void {
    this.stats.completed++
    const mem = this.#vm.memory
    const status = req.expectStatus < 0 ? -1 : mem.readU8(req.structAddr + STATUS_OFFSET)
    if (status === VIRTIO_BLK_S_OK) this.stats.status.ok++
    else if (status === VIRTIO_BLK_S_IOERR) this.stats.status.ioerr++
    else if (status === VIRTIO_BLK_S_UNSUPP) this.stats.status.unsupp++
    else if (status === -1) this.stats.status.none++
    if (status !== req.expectStatus || len !== req.expectLen) {
      this.stats.unexpected++
      this.#error(
        `${req.kind}: status ${status < 0 ? 'none' : statusName(status)} used len ${len}, ` +
          `expected ${req.expectStatus < 0 ? 'none' : statusName(req.expectStatus)} len ${req.expectLen}`,
      )
    } else if (status === VIRTIO_BLK_S_OK) {
      if (req.kind === 'read') this.#verifyRead(req)
      else if (req.kind === 'write') this.#applyWrite(req)
      else if (req.kind === 'getId' && !mem.read(req.segAddrs[0]!, req.segLens[0]!).equals(this.#id)) {
        this.stats.verifyErrors++
        this.#error('getId: wrong device id')
      }
    }
    this.#release(req)
  }

  #verifyRead(req: BlkRequest): void {
    const shadow = this.#o.shadow
    let off = req.diskOffset
    let bad = 0
    for (let i = 0; i < req.segAddrs.length; i++) {
      const got = this.#vm.memory.slice(req.segAddrs[i]!, req.segLens[i]!)
      const want = shadow.subarray(off, off + got.length)
      if (!got.equals(want)) for (let j = 0; j < got.length; j++) if (got[j] !== want[j]) bad++
      off += got.length
    }
    this.stats.bytesVerified += off - req.diskOffset
    if (bad > 0) {
      this.stats.verifyErrors++
      this.stats.mismatchedBytes += bad
      this.#error(
        `read of ${off - req.diskOffset} bytes at byte ${req.diskOffset}: ${bad} bytes differ from what was written`,
      )
    }
  }

  /** The device said OK: the disk now holds the buffers' bytes. */
  #applyWrite(req: BlkRequest): void {
    let off = req.diskOffset
    for (let i = 0; i < req.segAddrs.length; i++) {
      this.#o.shadow.set(this.#vm.memory.slice(req.segAddrs[i]!, req.segLens[i]!), off)
      off += req.segLens[i]!
    }
    this.stats.bytesWritten += off - req.diskOffset
  }

  #release(req: BlkRequest): void {
    const { allocator } = this.#vm
    for (const a of req.segAddrs) allocator.free(a)
    if (req.structAddr >= 0) allocator.free(req.structAddr)
    const write = req.kind === 'write'
    for (let s = req.lockStart; s < req.lockStart + req.lockCount; s++) {
      if (write) this.#writer[s] = 0
      else this.#readers[s]!--
    }
  }

  #error(message: string): void {
    if (this.errors.length < MAX_ERROR_MESSAGES) this.errors.push(message)
  }
}
