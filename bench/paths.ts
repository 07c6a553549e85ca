// The three benchmark paths. Each runs whole rounds; a round is the device
// serving everything available, then the driver re-publishing what completed:
//
//   device (identical protocol in every path):
//     loop {
//       disableNotification()
//       pop every available chain; per chain: read the readable bytes (at most
//         16: the header; byte 0 goes into a checksum), fill every writable
//         byte with the path's pattern byte, add used (head, bytes written)
//       if needsNotification() -> interrupts++
//       if !enableNotification() break      (else rechecks++ and loop)
//     }
//   driver: RecyclingDriver.refill() (bench/driver.ts) / driver_refill (Rust),
//           or with --driver sqd the JS paths use SplitQueueDriver (SqdDriver).
//
// native:   one benchNative() call runs N rounds in Rust (crate/src/engine/bench.rs):
//           pop_descriptor_chain, vm-memory read_slice/write_slice on the same
//           GuestMem, add_used; the driver is Rust too.
// batch:    guard.popChains(ChainBatch(128)) until it returns 0; chain and descriptor
//           fields read from batch.words (the documented layout); per descriptor
//           memory.readInto(addr, hdr) / memory.write(addr, pattern); used
//           entries pushed to a UsedBatch, guard.addUsedBatch() per pop.
// iterator: for (const chain of guard.iter()): chain.reader().readInto(header) (a reused
//           16-byte Uint8Array, as a device parsing its request header would),
//           chain.writer().write(pattern of writer.availableBytes()),
//           guard.addUsed(chain.headIndex, written).
import { api, memoryHandle, native, queueHandle, type GuestMemory, type QueueGuard } from './api'
import { RecyclingDriver, SqdDriver } from './driver'
import { type Area, IN_FLIGHT, checkPerRound, usedLen, type Workload } from './workloads'

export type PathName = 'native' | 'batch' | 'iterator'
export const PATHS: readonly PathName[] = ['native', 'batch', 'iterator']
/** The byte each path writes, so the data check tells the paths apart. */
export const FILL: Record<PathName, number> = { native: 0x4e, batch: 0x42, iterator: 0x49 }

/** A round gives up (a broken path) after this many enableNotification() rechecks. */
const MAX_RECHECKS = 1000
/** VRING_DESC_F_WRITE. */
const F_WRITE = 2

export interface Counters {
  rounds: number
  chains: number
  check: number
  interrupts: number
  kicks: number
  bad: number
  rechecks: number
}

export interface Runner {
  readonly path: PathName
  readonly area: Area
  readonly counters: Counters
  /** Runs whole rounds for about `seconds`, or exactly `rounds` when given; returns chains and elapsed ns. */
  run(seconds: number, rounds?: number): { chains: number; ns: number }
  /** Throws unless every counter matches the rounds run. */
  verify(): void
}

const now = (): number => performance.now()

/** Zero-copy prefixes of a pattern buffer, cached by length. */
class Pattern {
  readonly #full: Buffer
  readonly #views = new Map<number, Buffer>()
  #lastLen = -1
  #last: Buffer

  constructor(fill: number) {
    this.#full = Buffer.alloc(65536, fill)
    this.#last = this.#full
  }

  view(len: number): Buffer {
    if (len === this.#lastLen) return this.#last
    let v = this.#views.get(len)
    if (!v) this.#views.set(len, (v = this.#full.subarray(0, len)))
    this.#lastLen = len
    this.#last = v
    return v
  }
}

function newCounters(): Counters {
  return { rounds: 0, chains: 0, check: 0, interrupts: 0, kicks: 0, bad: 0, rechecks: 0 }
}

function verifyCounters(path: PathName, w: Workload, c: Counters, kicks: number, bad: number): void {
  const expect = {
    chains: c.rounds * IN_FLIGHT,
    check: c.rounds * checkPerRound(w),
    interrupts: c.rounds,
    kicks: c.rounds,
    bad: 0,
    rechecks: 0,
  }
  const got = { chains: c.chains, check: c.check, interrupts: c.interrupts, kicks, bad, rechecks: c.rechecks }
  for (const k of Object.keys(expect) as Array<keyof typeof expect>) {
    if (expect[k] !== got[k]) {
      throw new Error(`${path}/${w.name}: ${k} is ${got[k]} after ${c.rounds} rounds, expected ${expect[k]}`)
    }
  }
}

// ---------------------------------------------------------------- native

export function nativeRunner(memory: GuestMemory, area: Area, w: Workload): Runner {
  const io = new Uint32Array(16)
  const mh = memoryHandle(memory)
  const qh = queueHandle(area.queue)
  const counters = newCounters()
  let nsPerRound = 0
  let kicks = 0
  let bad = 0
  const call = (rounds: number): number => {
    io.fill(0)
    io[0] = rounds
    io[1] = FILL.native
    io[2] = usedLen(w)
    io[3] = w.stride
    io[4] = IN_FLIGHT
    const t0 = now()
    native.benchNative(mh, qh, io)
    const ns = (now() - t0) * 1e6
    counters.rounds += rounds
    counters.chains += io[8]!
    // The checksum wraps at 2^32 in Rust: check it per call.
    const expect = (rounds * checkPerRound(w)) % 2 ** 32
    if (io[9] !== expect)
      throw new Error(`native/${w.name}: checksum ${io[9]} after ${rounds} rounds, expected ${expect}`)
    counters.check += rounds * checkPerRound(w)
    counters.interrupts += io[10]!
    kicks += io[11]!
    bad += io[12]!
    counters.rechecks += io[13]!
    return ns
  }
  return {
    path: 'native',
    area,
    counters,
    run(seconds, rounds) {
      if (rounds === undefined) {
        if (nsPerRound === 0) nsPerRound = call(64) / 64
        rounds = Math.max(1, Math.round((seconds * 1e9) / nsPerRound))
      }
      const before = counters.chains
      const ns = call(rounds)
      nsPerRound = ns / rounds
      return { chains: counters.chains - before, ns }
    },
    verify() {
      verifyCounters('native', w, counters, kicks, bad)
    },
  }
}

// ---------------------------------------------------------------- JS paths

/** The guest driver of the JS paths: `recycle` (RecyclingDriver, the default) or `sqd` (SplitQueueDriver). */
export type DriverKind = 'recycle' | 'sqd'

function jsRunner(
  path: PathName,
  memory: GuestMemory,
  area: Area,
  w: Workload,
  driverKind: DriverKind,
  round: (c: Counters) => void,
): Runner {
  const driver =
    driverKind === 'sqd'
      ? new SqdDriver(memory, area, usedLen(w))
      : new RecyclingDriver(memory, area.layout, area.eventIdx, IN_FLIGHT, w.stride, usedLen(w))
  const counters = newCounters()
  return {
    path,
    area,
    counters,
    run(seconds, rounds) {
      const before = counters.chains
      const t0 = now()
      if (rounds !== undefined) {
        for (let i = 0; i < rounds; i++) {
          round(counters)
          driver.refill()
        }
        counters.rounds += rounds
      } else {
        const deadline = t0 + seconds * 1e3
        let n = 0
        do {
          round(counters)
          driver.refill()
          n++
        } while (now() < deadline)
        counters.rounds += n
      }
      const ns = (now() - t0) * 1e6
      return { chains: counters.chains - before, ns }
    },
    verify() {
      verifyCounters(path, w, counters, driver.kicks, driver.bad)
    },
  }
}

export function batchRunner(
  memory: GuestMemory,
  area: Area,
  w: Workload,
  driverKind: DriverKind,
  maxChains = 128,
): Runner {
  const g = area.guard!
  const batch = new api.ChainBatch(maxChains)
  const used = new api.UsedBatch(maxChains)
  const hdr = new Uint8Array(16)
  const pattern = new Pattern(FILL.batch)
  const { HEADER_WORDS, CHAIN_WORDS, DESC_WORDS } = api.ChainBatch
  const base = batch.descriptorBase
  // One request: its own function, as a device would have (and V8 optimizes it on its own).
  // The fields come straight from the batch's words (the documented layout), not through
  // an accessor call each.
  const serve = (w: Uint32Array, i: number, c: Counters): void => {
    const ci = HEADER_WORDS + CHAIN_WORDS * i
    const end = base + DESC_WORDS * (w[ci + 1]! + w[ci + 2]!)
    let written = 0
    for (let o = base + DESC_WORDS * w[ci + 1]!; o < end; o += DESC_WORDS) {
      const len = w[o + 2]!
      const addr = w[o + 1]! * 2 ** 32 + w[o]!
      if ((w[o + 3]! & F_WRITE) !== 0) {
        memory.write(addr, pattern.view(len))
        written += len
      } else if (len > 0) {
        memory.readInto(addr, len >= 16 ? hdr : hdr.subarray(0, len))
        c.check += hdr[0]!
      }
    }
    used.push(w[ci]!, written)
  }
  const round = (c: Counters): void => {
    for (let spins = 0; ; spins++) {
      if (spins > MAX_RECHECKS)
        throw new Error('batch: enableNotification() keeps reporting chains the device cannot pop')
      g.disableNotification()
      let n: number
      while ((n = g.popChains(batch)) > 0) {
        const w = batch.words
        for (let i = 0; i < n; i++) serve(w, i, c)
        g.addUsedBatch(used)
        c.chains += n
      }
      if (g.needsNotification()) c.interrupts++
      if (!g.enableNotification()) break
      c.rechecks++
    }
  }
  return jsRunner('batch', memory, area, w, driverKind, round)
}

export function iteratorRunner(memory: GuestMemory, area: Area, w: Workload, driverKind: DriverKind): Runner {
  const g: QueueGuard = area.guard!
  const pattern = new Pattern(FILL.iterator)
  const header = new Uint8Array(16)
  const round = (c: Counters): void => {
    for (let spins = 0; ; spins++) {
      if (spins > MAX_RECHECKS)
        throw new Error('iterator: enableNotification() keeps reporting chains the device cannot pop')
      g.disableNotification()
      for (const chain of g.iter()) {
        const r = chain.reader()
        if (r.readInto(header) > 0) c.check += header[0]!
        const wr = chain.writer()
        const n = wr.availableBytes()
        if (n > 0) wr.write(pattern.view(n))
        g.addUsed(chain.headIndex, n)
        c.chains++
      }
      if (g.needsNotification()) c.interrupts++
      if (!g.enableNotification()) break
      c.rechecks++
    }
  }
  return jsRunner('iterator', memory, area, w, driverKind, round)
}
