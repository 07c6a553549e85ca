// The recycling guest driver of the JavaScript paths: the same chains are
// re-published as they complete, exactly like `driver_refill` in
// crate/src/engine/bench.rs (the native path's driver):
//   read the used idx; for each new used element check id (an in-flight head)
//   and len (the expected one), and re-publish the head in the next avail slot
//   (plain Uint16Array/Uint32Array access on the region Buffer); store the avail
//   idx (GuestMemory.storeU16); with event idx store used_event = used idx
//   consumed; decide whether to kick (avail_event with event idx, else the used
//   ring's NO_NOTIFY flag) and count it.
import { driverApi, type GuestMemory, type SplitQueueLayout } from './api'
import type { Area } from './workloads'

export class RecyclingDriver {
  readonly #memory: GuestMemory
  readonly #avail: Uint16Array // flags, idx, ring[size], used_event
  readonly #used: Uint32Array // flags|idx, (id, len)[size], avail_event
  readonly #mask: number
  readonly #availIdxAddr: number
  readonly #usedIdxAddr: number
  readonly #usedFlagsAddr: number
  readonly #usedEventAddr: number
  readonly #availEventAddr: number
  readonly #eventIdx: boolean
  readonly #expectLen: number
  readonly #stride: number
  readonly #limit: number
  #availShadow: number
  #usedShadow: number
  kicks = 0
  bad = 0

  constructor(
    memory: GuestMemory,
    layout: SplitQueueLayout,
    eventIdx: boolean,
    inFlight: number,
    stride: number,
    expectLen: number,
  ) {
    const size = layout.size
    const region = memory.regions.find(
      (r) => r.guestAddress <= layout.descTable && layout.descTable < r.guestAddress + r.size,
    )
    if (!region || layout.end > region.guestAddress + region.size) throw new Error('the rings must lie in one region')
    const b = region.buffer
    const off = b.byteOffset - region.guestAddress
    this.#memory = memory
    this.#avail = new Uint16Array(b.buffer, off + layout.availRing, 3 + size)
    this.#used = new Uint32Array(b.buffer, off + layout.usedRing, 1 + 2 * size)
    this.#mask = size - 1
    this.#availIdxAddr = layout.availRing + 2
    this.#usedFlagsAddr = layout.usedRing
    this.#usedIdxAddr = layout.usedRing + 2
    this.#usedEventAddr = layout.availRing + 4 + 2 * size
    this.#availEventAddr = layout.usedRing + 4 + 8 * size
    this.#eventIdx = eventIdx
    this.#expectLen = expectLen
    this.#stride = stride
    this.#limit = stride * inFlight
    this.#availShadow = memory.loadU16(this.#availIdxAddr)
    this.#usedShadow = (this.#availShadow - inFlight) & 0xffff
  }

  /** Re-publishes every completed chain; returns how many. */
  refill(): number {
    const mem = this.#memory
    const used = this.#used
    const avail = this.#avail
    const mask = this.#mask
    const usedIdx = mem.loadU16(this.#usedIdxAddr)
    const old = this.#availShadow
    let u = this.#usedShadow
    let a = old
    let n = 0
    while (u !== usedIdx) {
      const slot = u & mask
      const id = used[1 + 2 * slot]!
      const len = used[2 + 2 * slot]!
      if (len !== this.#expectLen || id % this.#stride !== 0 || id >= this.#limit) this.bad++
      avail[2 + (a & mask)] = id
      a = (a + 1) & 0xffff
      u = (u + 1) & 0xffff
      n++
    }
    this.#availShadow = a
    this.#usedShadow = u
    mem.storeU16(this.#availIdxAddr, a)
    if (this.#eventIdx) mem.storeU16(this.#usedEventAddr, u)
    const kick = this.#eventIdx
      ? ((a - mem.loadU16(this.#availEventAddr) - 1) & 0xffff) < ((a - old) & 0xffff)
      : (mem.loadU16(this.#usedFlagsAddr) & 1) === 0
    if (kick) this.kicks++
    return n
  }
}

/**
 * The same refill through the package's guest-driver simulator (`--driver sqd`): every
 * completed chain is popped (popUsedInto) and added again with the same buffers
 * (addChain, writing its descriptors or indirect table anew), then published and kicked
 * (kick); with event idx, enableInterrupts() stores used_event. It does more work per
 * chain than RecyclingDriver, as a real driver would; used to measure that cost.
 */
export class SqdDriver {
  readonly #d: InstanceType<typeof driverApi.SplitQueueDriver<number>>
  readonly #chains: Area['chains']
  readonly #expectLen: number
  readonly #eventIdx: boolean
  readonly #u: { head: number; len: number; token: number | undefined } = { head: 0, len: 0, token: undefined }
  kicks = 0
  bad = 0

  constructor(memory: GuestMemory, area: Area, expectLen: number) {
    this.#d = new driverApi.SplitQueueDriver<number>(memory, {
      ...area.layout,
      eventIdx: area.eventIdx,
      strictUsedLen: true,
    })
    this.#chains = area.chains
    this.#expectLen = expectLen
    this.#eventIdx = area.eventIdx
    // The driver zeroes its rings: publish the chains again, through it.
    area.chains.forEach((_c, k) => this.#add(k))
    this.#d.publish()
  }

  #add(k: number): void {
    const c = this.#chains[k]!
    if (c.table === null) this.#d.addChain(c.buffers, { token: k, publish: false })
    else this.#d.addChain(c.buffers, { token: k, publish: false, indirect: { tableAddr: c.table } })
  }

  refill(): number {
    const d = this.#d
    const u = this.#u
    let n = 0
    while (d.popUsedInto(u)) {
      if (u.len !== this.#expectLen || u.token === undefined) this.bad++
      else this.#add(u.token)
      n++
    }
    if (this.#eventIdx) d.enableInterrupts()
    if (d.kick()) this.kicks++
    return n
  }
}
