// One hostile-guest case: builds guest memory (with canaries) from a
// GuestSpec, lets the device pop every chain it can with a DeviceSpec's mix of
// popDescriptorChain / iter / popChains, compares each with the reference
// walk, then reads, writes and completes them and checks what was written.
import { ChainBatch, Queue, type DescriptorChain, type QueueGuard } from '../..'
import type { AddrSpec, DescSpec, DeviceSpec, GuestSpec, LayoutSpec, PlaceSpec, TableSpec } from './fuzz-arb'
import { CanaryMemory, fillFrom, type Range, type RegionSpec } from './fuzz-mem'
import {
  attempt,
  batchView,
  bufferBytes,
  buffersMapped,
  chainView,
  compareChain,
  modelAddUsed,
  modelDisableNotification,
  modelEnableNotification,
  modelNeedsNotification,
  modelPops,
  sameOutcome,
  U64_MAX,
  usedRingRange,
  WRITE,
  type Outcome,
  type QueueModel,
  type RefChain,
  type RefDesc,
} from './fuzz-ref'

/** Most bytes read or written per chain. */
const IO_CAP = 1 << 16
/** Most descriptors the reference walks may yield per case (bounds the time of looping indirect tables). */
const DESC_BUDGET = 200_000

/** Event counts over all cases run in this process (for campaign reports). */
export const guestStats: Record<string, number> = {}
const count = (k: string, n = 1) => {
  guestStats[k] = (guestStats[k] ?? 0) + n
}

const alignUp = (v: number, a: number) => Math.ceil(v / a) * a
const alignDownBig = (v: bigint, a: number) => (v < 0n ? 0n : v - (v % BigInt(a)))

export function resolveLayout(l: LayoutSpec): RegionSpec[] {
  let cur = 0
  const out = l.regions.map((r) => {
    const guestAddress = alignUp(cur + r.gap, 8)
    cur = guestAddress + r.size
    return { guestAddress, size: r.size }
  })
  if (l.top) {
    const shift = Math.floor((2 ** 53 - cur) / 8) * 8
    for (const r of out) r.guestAddress += shift
  }
  return out
}

function place(p: PlaceSpec, bytes: number, align: number, regs: readonly RegionSpec[]): bigint {
  if (p.k === 'zero') return 0n
  if (p.k === 'top') return 2n ** 64n - BigInt(align * p.back)
  if (p.k === 'any') return alignDownBig(p.a, align)
  const r = regs[p.r % regs.length]!
  const start = BigInt(r.guestAddress)
  const end = start + BigInt(r.size)
  switch (p.k) {
    case 'fit': {
      const room = Math.max(0, r.size - bytes)
      let a = BigInt(alignUp(r.guestAddress + (p.off % (room + 1)), align))
      if (a + BigInt(bytes) > end) a = alignDownBig(end - BigInt(bytes), align)
      return a
    }
    case 'end':
      return alignDownBig(end - BigInt(bytes), align)
    case 'straddle':
      return alignDownBig(end - BigInt(Math.max(1, bytes >> 1)), align)
    case 'gap':
      return BigInt(alignUp(Number(end) + 8, align))
  }
}

function addrOf(a: AddrSpec, len: number, regs: readonly RegionSpec[]): bigint {
  if (a.k === 'abs') return a.a
  const r = regs[a.r % regs.length]!
  const end = BigInt(r.guestAddress + r.size)
  if (a.k === 'end') return end > BigInt(a.back) ? end - BigInt(a.back) : 0n
  if (a.k === 'over') return end + BigInt(a.fwd)
  const room = r.size - len
  return BigInt(r.guestAddress + (room >= 0 ? a.off % (room + 1) : a.off % r.size))
}

function encode(addr: bigint, len: number, flags: number, next: number): Uint8Array {
  const b = new Uint8Array(16)
  const dv = new DataView(b.buffer)
  dv.setBigUint64(0, addr & U64_MAX, true)
  dv.setUint32(8, len >>> 0, true)
  dv.setUint16(12, flags & 0xffff, true)
  dv.setUint16(14, next & 0xffff, true)
  return b
}

interface Table {
  addr: bigint
  len: number
}

function descBytes(
  d: DescSpec,
  i: number,
  count: number,
  tables: readonly Table[],
  regs: readonly RegionSpec[],
): Uint8Array {
  if (d.k === 'raw') return d.bytes
  const next = d.next.k === 'succ' ? i + 1 : d.next.k === 'mod' ? d.next.v % Math.max(1, count) : d.next.v
  if (d.k === 'plain') return encode(addrOf(d.addr, d.len, regs), d.len, d.flags, next)
  const t = tables.length > 0 ? tables[d.table % tables.length]! : { addr: 0n, len: 16 }
  const len = Math.min(0xffffffff, Math.max(0, t.len + d.adj))
  return encode(t.addr, len, d.flags | 4, next)
}

function writeTables(m: CanaryMemory, specs: readonly TableSpec[], regs: readonly RegionSpec[]): Table[] {
  const tables = specs.map((t) => ({
    addr: addrOf(t.at, 16 * t.entries.length, regs),
    len: t.huge ? 0xffff0 : 16 * t.entries.length,
  }))
  specs.forEach((t, ti) => {
    t.entries.forEach((e, i) =>
      m.write(tables[ti]!.addr + 16n * BigInt(i), descBytes(e, i, t.entries.length, tables, regs)),
    )
  })
  return tables
}

/** Guest memory and a configured queue for `spec`, plus the model of it. */
export function buildGuest(spec: GuestSpec) {
  const regs = resolveLayout(spec.layout)
  const m = new CanaryMemory(regs, { shared: spec.layout.shared })
  for (const r of m.regions) fillFrom(r.view, spec.layout.fill && spec.layout.fill + Number(r.gpa % 997n))
  const size = spec.size
  const maxSize = Math.min(32768, size << spec.maxShift)
  const descBytesN = 16 * size
  const availBytes = 6 + 2 * size
  const usedBytes = 6 + 8 * size
  let desc: bigint
  let avail: bigint
  let used: bigint
  if (spec.place.k === 'packed') {
    desc = place({ k: 'fit', r: spec.place.r, off: spec.place.off }, descBytesN + availBytes + 2 + usedBytes, 16, regs)
    avail = desc + BigInt(descBytesN)
    used = avail + BigInt(alignUp(availBytes, 4))
  } else {
    desc = place(spec.place.desc, descBytesN, 16, regs)
    avail = place(spec.place.avail, availBytes, 2, regs)
    used = place(spec.place.used, usedBytes, 4, regs)
  }
  const tables = writeTables(m, spec.tables, regs)
  spec.descs.slice(0, size).forEach((d, i) => m.write(desc + 16n * BigInt(i), descBytes(d, i, size, tables, regs)))
  const availIdx = (spec.nextAvail + (spec.delta.k === 'mod' ? spec.delta.v % (size + 1) : spec.delta.v)) & 0xffff
  m.writeU16(avail, spec.availFlags)
  m.writeU16(avail + 2n, availIdx)
  if (spec.heads.length > 0) {
    for (let i = 0; i < size; i++) {
      const h = spec.heads[i % spec.heads.length]!
      m.writeU16(avail + 4n + 2n * BigInt(i), h <= 255 ? h % size : h)
    }
  }
  m.writeU16(avail + 4n + 2n * BigInt(size), spec.usedEvent)

  const queue = new Queue(m.mem, maxSize)
  const guard = queue.lockWithMemory()
  guard.setSize(size)
  const halves = (a: bigint): [number, number] => [Number(a & 0xffffffffn), Number(a >> 32n)]
  guard.setDescTableAddress(...halves(desc))
  guard.setAvailRingAddress(...halves(avail))
  guard.setUsedRingAddress(...halves(used))
  guard.setEventIdx(spec.eventIdx)
  guard.setNextAvail(spec.nextAvail)
  guard.setNextUsed(spec.nextUsed)
  guard.setReady(spec.ready)
  const model: QueueModel = {
    size,
    ready: spec.ready,
    descTable: desc,
    availRing: avail,
    usedRing: used,
    nextAvail: spec.nextAvail,
    nextUsed: spec.nextUsed,
    eventIdx: spec.eventIdx,
    numAdded: 0,
  }
  return { m, queue, guard, model }
}

interface Popped {
  ref: RefChain
  chain: DescriptorChain | null
}

/** Phase 1: pops until the model says there is nothing left, comparing every chain. */
function popAll(m: CanaryMemory, g: QueueGuard, q: QueueModel, dev: DeviceSpec): Popped[] {
  const popped: Popped[] = []
  let descs = 0
  for (let step = 0; step < 4 * q.size + 8 && descs < DESC_BUDGET; step++) {
    const s = dev.pops[step % dev.pops.length]!
    const max = s.k === 'pop' ? 1 : s.k === 'iter' ? s.brk : s.chains
    const want = modelPops(m, q, max, s.k === 'batch' ? s.descs : Infinity)
    const ctx = `pop step ${step} (${s.k})`
    if (s.k === 'batch') {
      const b = new ChainBatch(s.chains, s.descs)
      const got = attempt(ctx, () => g.popChains(b))
      sameOutcome(ctx, got, want)
      if (!got.ok || !want.ok) {
        count(`pop error ${got.ok ? '' : got.code}`)
        break
      }
      if (got.value !== want.value.length)
        throw new Error(`${ctx}: popped ${got.value} chains, the model says ${want.value.length}`)
      // ChainBatch.addr() is a number: exact below 2^53, rounded above.
      const rounded = (ref: RefChain) => ({
        ...ref,
        descs: ref.descs.map((d) => ({ ...d, addr: BigInt(Number(d.addr)) })),
      })
      want.value.forEach((ref, i) => compareChain(`${ctx} chain ${i}`, batchView(b, i), rounded(ref), q.size))
      popped.push(...want.value.map((ref) => ({ ref, chain: null })))
    } else {
      const got = attempt(ctx, () => {
        if (s.k === 'pop') {
          const c = g.popDescriptorChain()
          return c ? [c] : []
        }
        const out: DescriptorChain[] = []
        for (const c of g.iter()) if (out.push(c) === s.brk) break
        return out
      })
      sameOutcome(ctx, got, want)
      if (!got.ok || !want.ok) {
        count(`pop error ${got.ok ? '' : got.code}`)
        break
      }
      if (got.value.length !== want.value.length)
        throw new Error(`${ctx}: ${got.value.length} chains, the model says ${want.value.length}`)
      want.value.forEach((ref, i) => compareChain(`${ctx} chain ${i}`, chainView(got.value[i]!), ref, q.size))
      popped.push(...want.value.map((ref, i) => ({ ref, chain: got.value[i]! })))
    }
    for (const c of want.value) count(`chain ${c.stop ?? 'complete'}${c.indirectLen ? ' (indirect)' : ''}`)
    if (want.value.length === 0) break
    descs += want.value.reduce((n, c) => n + c.descs.length, 0)
  }
  const next = g.nextAvail()
  if (next !== q.nextAvail) throw new Error(`nextAvail() is ${next}, the model says ${q.nextAvail}`)
  return popped
}

const sum = (ds: readonly RefDesc[]) => ds.reduce((n, d) => n + d.len, 0)

/** Reads, writes or maps a chain's buffers; returns the bytes written. */
function chainIo(m: CanaryMemory, p: Popped, io: string, allowed: Range[]): number {
  const c = p.chain!
  const ctx = `chain ${p.ref.head} ${io}`
  const readable = p.ref.descs.filter((d) => !(d.flags & WRITE))
  const writable = p.ref.descs.filter((d) => d.flags & WRITE)
  const expect = (ds: RefDesc[]): Outcome<unknown> =>
    buffersMapped(m, ds) ? { ok: true, value: 0 } : { ok: false, code: 'InvalidChain' }
  if (io === 'buffers') {
    const got = attempt(ctx, () => c.buffers())
    sameOutcome(ctx, got, expect(p.ref.descs))
    if (got.ok && sum(p.ref.descs) <= IO_CAP) {
      if (!Buffer.concat(got.value).equals(bufferBytes(m, p.ref.descs, IO_CAP)))
        throw new Error(`${ctx}: buffers() differ from guest memory`)
    }
    return 0
  }
  const reader = attempt(ctx, () => c.reader())
  sameOutcome(`${ctx} reader`, reader, expect(readable))
  count(`reader ${reader.ok ? 'ok' : reader.code}`)
  if (reader.ok) {
    if (reader.value.availableBytes() !== sum(readable))
      throw new Error(`${ctx}: reader has ${reader.value.availableBytes()} bytes, buffers ${sum(readable)}`)
    const n = Math.min(IO_CAP, sum(readable))
    if (!reader.value.read(n).equals(bufferBytes(m, readable, n)))
      throw new Error(`${ctx}: reader data differs from guest memory`)
  }
  const writer = attempt(ctx, () => c.writer())
  sameOutcome(`${ctx} writer`, writer, expect(writable))
  count(`writer ${writer.ok ? 'ok' : writer.code}`)
  if (!writer.ok) return 0
  const n = Math.min(IO_CAP, sum(writable))
  const data = new Uint8Array(n).map((_, i) => (i * 7 + p.ref.head) & 0xff)
  allowed.push(...writable.map((d) => ({ start: d.addr, len: BigInt(d.len) })))
  return writer.value.write(data)
}

function notify(m: CanaryMemory, g: QueueGuard, q: QueueModel, step: string): void {
  const ctx = `${step}Notification`
  if (step === 'enable')
    sameValue(
      ctx,
      attempt(ctx, () => g.enableNotification()),
      modelEnableNotification(m, q),
    )
  else if (step === 'disable')
    sameOutcome(
      ctx,
      attempt(ctx, () => g.disableNotification()),
      modelDisableNotification(m, q),
    )
  else if (step === 'needs')
    sameValue(
      ctx,
      attempt(ctx, () => g.needsNotification()),
      modelNeedsNotification(m, q),
    )
}

function sameValue<T>(ctx: string, got: Outcome<T>, want: Outcome<T>): void {
  sameOutcome(ctx, got, want)
  if (got.ok && want.ok && got.value !== want.value)
    throw new Error(`${ctx}: returned ${got.value}, the model says ${want.value}`)
}

/** Phase 2: I/O on each chain, notifications, addUsed; checks each used element written. */
function complete(
  m: CanaryMemory,
  g: QueueGuard,
  q: QueueModel,
  dev: DeviceSpec,
  popped: Popped[],
  allowed: Range[],
): void {
  popped.forEach((p, i) => {
    const written = p.chain ? chainIo(m, p, dev.io[i % dev.io.length]!, allowed) : 0
    notify(m, g, q, dev.notify[i % dev.notify.length]!)
    const l = dev.usedLens[i % dev.usedLens.length]!
    const len = l === true ? written : l
    const want = modelAddUsed(m, q, p.ref.head)
    const ctx = `addUsed(${p.ref.head}, ${len})`
    sameOutcome(
      ctx,
      attempt(ctx, () => g.addUsed(p.ref.head, len)),
      want,
    )
    count(`addUsed ${want.ok ? 'ok' : want.code}`)
    if (want.ok) {
      const id = m.readU32(want.value)
      const got = m.readU32(want.value + 4n)
      const idx = m.readU16(q.usedRing + 2n)
      if (id !== p.ref.head || got !== len || idx !== q.nextUsed) {
        throw new Error(
          `${ctx}: used ring has id ${id} len ${got} idx ${idx}, the model says ${p.ref.head} ${len} ${q.nextUsed}`,
        )
      }
    }
    if (g.nextUsed() !== q.nextUsed)
      throw new Error(`${ctx}: nextUsed() is ${g.nextUsed()}, the model says ${q.nextUsed}`)
  })
}

/** Runs one case; throws a description of the first violated invariant. */
export function runGuestCase(spec: GuestSpec, dev: DeviceSpec): void {
  const { m, guard, model } = buildGuest(spec)
  count('cases')
  try {
    const before = m.snapshot()
    const popped = popAll(m, guard, model, dev)
    const afterPop = m.changedOutside(before, [])
    if (afterPop) throw new Error(`popping wrote guest memory: ${afterPop}`)
    const allowed: Range[] = [usedRingRange(model)]
    complete(m, guard, model, dev, popped, allowed)
    const canary = m.checkCanaries()
    if (canary) throw new Error(canary)
    const changed = m.changedOutside(before, allowed)
    if (changed) throw new Error(changed)
  } finally {
    guard.release()
  }
}
