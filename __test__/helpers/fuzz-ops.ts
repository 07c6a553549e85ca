// Random sequences of every QueueGuard operation and of chain reads and
// writes, checked against a model (fuzz-ref.ts) after every step: nextAvail,
// nextUsed, size, ready, event idx, what each call returns or throws, what
// the used ring holds, and which guest bytes the device changed.
import { ChainBatch, Queue, UsedBatch, type DescriptorChain, type QueueGuard } from '../..'
import { CanaryMemory, type Range } from './fuzz-mem'
import { opsArb, type OpSpec, type OpsSpec } from './fuzz-ops-arb'
import { count, io, opsStats, views } from './fuzz-ops-io'
import {
  attempt,
  batchView,
  chainView,
  compareChain,
  INDIRECT,
  modelAddUsed,
  modelAvailIdx,
  modelDisableNotification,
  modelEnableNotification,
  modelNeedsNotification,
  modelPops,
  NEXT,
  referenceWalk,
  sameOutcome,
  U64_MAX,
  WRITE,
  type Outcome,
  type QueueModel,
  type RefChain,
} from './fuzz-ref'

export { opsArb, opsStats }

const BASE = 0x10000
const alignUp = (v: number, a: number) => Math.ceil(v / a) * a

export interface Held {
  chain: DescriptorChain
  ref: RefChain
}

export interface Rig {
  m: CanaryMemory
  q: QueueModel
  maxSize: number
  desc: number
  avail: number
  used: number
  availIdx: number
  queue: Queue
  g: QueueGuard
  held: Held[]
  /** What the device may change: the used ring (for maxSize) and every writable buffer. */
  allowed: Range[]
}

function build(spec: OpsSpec): Rig {
  const maxSize = spec.maxSize
  const desc = BASE
  const avail = desc + 16 * maxSize
  const used = alignUp(avail + 6 + 2 * maxSize, 4)
  const data = alignUp(used + 6 + 8 * maxSize, 64)
  const dataBytes = spec.chains.reduce((n, c) => n + c.bufs.reduce((k, b) => k + b.len, 0) + 16 * c.bufs.length + 16, 0)
  const end = data + dataBytes + 8
  const cut = spec.split ? alignUp(data + (dataBytes >> 1), 8) : end
  const regions = [{ guestAddress: BASE, size: cut - BASE }]
  if (spec.split) regions.push({ guestAddress: cut, size: Math.max(8, end - cut) })
  const m = new CanaryMemory(regions, { shared: spec.shared })
  const pattern = new Uint8Array(dataBytes).map((_, i) => (i * 13 + 5) & 0xff)
  m.write(BigInt(data), pattern)

  const slot = (i: number) => (i * spec.stride + spec.rot) % maxSize
  const allowed: Range[] = [{ start: BigInt(used), len: BigInt(6 + 8 * maxSize) }]
  const heads: number[] = []
  let s = 0
  let cursor = data
  const encode = (at: number, addr: number, len: number, flags: number, next: number) => {
    const b = new Uint8Array(16)
    const dv = new DataView(b.buffer)
    dv.setBigUint64(0, BigInt(addr), true)
    dv.setUint32(8, len, true)
    dv.setUint16(12, flags, true)
    dv.setUint16(14, next, true)
    m.write(BigInt(at), b)
  }
  for (const c of spec.chains) {
    const need = c.indirect ? 1 : c.bufs.length
    if (s + need > maxSize) break
    const addrs = c.bufs.map((b) => {
      const a = cursor
      cursor += b.len
      if (b.write && b.len > 0) allowed.push({ start: BigInt(a), len: BigInt(b.len) })
      return a
    })
    const flags = (i: number) => (c.bufs[i]!.write ? WRITE : 0) | (i < c.bufs.length - 1 ? NEXT : 0)
    if (c.indirect) {
      const table = alignUp(cursor, 16)
      cursor = table + 16 * c.bufs.length
      c.bufs.forEach((b, i) => encode(table + 16 * i, addrs[i]!, b.len, flags(i), i + 1))
      encode(desc + 16 * slot(s), table, 16 * c.bufs.length, INDIRECT, 0)
    } else {
      c.bufs.forEach((b, i) => encode(desc + 16 * slot(s + i), addrs[i]!, b.len, flags(i), slot(s + i + 1)))
    }
    heads.push(slot(s))
    s += need
  }
  for (let i = 0; i < maxSize; i++) {
    const h = spec.heads[i % spec.heads.length]!
    m.writeU16(
      BigInt(avail + 4 + 2 * i),
      h >= 1000 ? h - 1000 : heads.length > 0 ? heads[h % heads.length]! : h % maxSize,
    )
  }
  const queue = new Queue(m.mem, maxSize)
  const g = queue.lockWithMemory()
  const q: QueueModel = {
    size: maxSize,
    ready: false,
    descTable: 0n,
    availRing: 0n,
    usedRing: 0n,
    nextAvail: 0,
    nextUsed: 0,
    eventIdx: false,
    numAdded: 0,
  }
  const availIdx = Math.min(spec.initial, maxSize)
  m.writeU16(BigInt(avail + 2), availIdx)
  const rig: Rig = { m, q, maxSize, desc, avail, used, availIdx, queue, g, held: [], allowed }
  configure(rig, 0)
  return rig
}

function configure(r: Rig, sizeShift: number): void {
  r.g.setDescTableAddress(r.desc, 0)
  r.g.setAvailRingAddress(r.avail, 0)
  r.g.setUsedRingAddress(r.used, 0)
  r.q.size = Math.max(1, r.maxSize >> sizeShift)
  r.g.setSize(r.q.size)
  r.g.setReady(true)
  Object.assign(r.q, { descTable: BigInt(r.desc), availRing: BigInt(r.avail), usedRing: BigInt(r.used), ready: true })
}

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value })
const fail = (code: string): Outcome<never> => ({ ok: false, code })

function expectValue<T>(ctx: string, got: Outcome<T>, want: Outcome<T>): void {
  sameOutcome(ctx, got, want)
  if (got.ok && want.ok && got.value !== want.value)
    throw new Error(`${ctx}: returned ${String(got.value)}, the model says ${String(want.value)}`)
}

function hold(r: Rig, chains: DescriptorChain[], refs: RefChain[]): void {
  chains.forEach((chain, i) => r.held.push({ chain, ref: refs[i]! }))
  if (r.held.length > 16) r.held.splice(0, r.held.length - 16)
}

function pops(r: Rig, op: Extract<OpSpec, { k: 'pop' | 'iter' | 'batch' }>): void {
  const { m, q, g } = r
  const ctx = `${op.k}`
  if (op.k === 'batch') {
    const want = modelPops(m, q, op.chains, op.descs)
    const b = new ChainBatch(op.chains, op.descs)
    const got = attempt(ctx, () => g.popChains(b))
    sameOutcome(ctx, got, want)
    count(`${ctx} ${got.ok ? (got.value > 0 ? 'chains' : 'none') : got.code}`)
    if (!got.ok || !want.ok) return
    if (got.value !== want.value.length)
      throw new Error(`${ctx}: ${got.value} chains, the model says ${want.value.length}`)
    want.value.forEach((ref, i) => compareChain(`${ctx} ${i}`, batchView(b, i), ref, q.size))
    return
  }
  const max = op.k === 'pop' ? 1 : op.brk
  const back = op.k === 'iter' && op.back
  let want = modelPops(m, q, back ? 1 : max)
  if (back && want.ok && want.value.length === 1 && max > 1) {
    q.nextAvail = (q.nextAvail - 1) & 0xffff
    const rest = modelPops(m, q, max - 1)
    if (rest.ok) want = ok([...want.value, ...rest.value])
  }
  const got = attempt(ctx, () => {
    if (op.k === 'pop') {
      const c = g.popDescriptorChain()
      return c ? [c] : []
    }
    const it = g.iter()
    const out: DescriptorChain[] = []
    for (let n = it.next(); !n.done; n = it.next()) {
      out.push(n.value)
      if (out.length === max) break
      if (back && out.length === 1) it.goToPreviousPosition()
    }
    return out
  })
  if (
    op.k === 'pop' &&
    got.ok &&
    got.value.length === 1 &&
    (want.ok ? want.value.length === 0 : want.code === 'InvalidAvailRingIndex')
  ) {
    // popDescriptorChain hands out chains read ahead in the last batch, when the avail
    // idx allowed them, even if the driver has since moved the idx back or too far: the
    // device had popped them already. Accept the chain in the next avail slot.
    count('pop prefetched after an avail idx jump')
    want = ok([prefetched(r)])
  }
  sameOutcome(ctx, got, want)
  count(`${ctx} ${got.ok ? (got.value.length > 0 ? 'chains' : 'none') : got.code}`)
  if (!got.ok || !want.ok) return
  if (got.value.length !== want.value.length)
    throw new Error(`${ctx}: ${got.value.length} chains, the model says ${want.value.length}`)
  want.value.forEach((ref, i) => compareChain(`${ctx} ${i}`, chainView(got.value[i]!), ref, q.size))
  hold(r, got.value, want.value)
}

/** The chain in the next avail slot, popped without looking at the avail idx. */
function prefetched(r: Rig): RefChain {
  const { m, q } = r
  const head = m.readU16(q.availRing + 4n + 2n * BigInt(q.nextAvail % q.size))!
  q.nextAvail = (q.nextAvail + 1) & 0xffff
  return referenceWalk(m, q.descTable, q.size, head)
}

function headFor(r: Rig, pick: number, bad: boolean): number {
  if (bad) return [r.q.size, 0xffff, (pick * 2654435761) & 0xffff][pick % 3]!
  return r.held.length > 0 ? r.held[pick % r.held.length]!.ref.head : pick % r.maxSize
}

function checkUsed(r: Rig, ctx: string, writes: Map<bigint, [number, number]>): void {
  for (const [at, [head, len]] of writes) {
    const id = r.m.readU32(at)
    const got = r.m.readU32(at + 4n)
    if (id !== head || got !== len)
      throw new Error(
        `${ctx}: used element at 0x${at.toString(16)} is (${id}, ${got}), the model says (${head}, ${len})`,
      )
  }
}

function addUsed(r: Rig, op: Extract<OpSpec, { k: 'addUsed' | 'addUsedBatch' }>): void {
  const entries = op.k === 'addUsed' ? [op] : op.entries
  const heads = entries.map((e) => headFor(r, e.pick, e.bad))
  const writes = new Map<bigint, [number, number]>()
  let want: Outcome<undefined> = ok(undefined)
  for (const [i, e] of entries.entries()) {
    const w = modelAddUsed(r.m, r.q, heads[i]!)
    if (!w.ok) {
      want = w
      break
    }
    writes.set(w.value, [heads[i]!, e.len])
  }
  const ctx = `${op.k}(${heads.join(',')})`
  count(`${op.k} ${want.ok ? 'ok' : want.code}`)
  if (op.k === 'addUsed') {
    sameOutcome(
      ctx,
      attempt(ctx, () => r.g.addUsed(heads[0]!, op.len)),
      want,
    )
  } else {
    const batch = new UsedBatch(1)
    entries.forEach((e, i) => batch.push(heads[i]!, e.len))
    sameOutcome(
      ctx,
      attempt(ctx, () => r.g.addUsedBatch(batch)),
      want,
    )
    if (batch.count !== 0) throw new Error(`${ctx}: the UsedBatch was not cleared`)
  }
  checkUsed(r, ctx, writes)
  if (writes.size > 0 && r.m.readU16(r.q.usedRing + 2n) !== r.q.nextUsed)
    throw new Error(`${ctx}: used idx differs from the model`)
}

function inRange(m: CanaryMemory, a: bigint): boolean {
  return a <= U64_MAX && m.find(a) !== undefined
}

function snapshot(r: Rig): void {
  const s = r.queue.state()
  const q = r.q
  const want = {
    maxSize: r.maxSize,
    nextAvail: q.nextAvail,
    nextUsed: q.nextUsed,
    eventIdxEnabled: q.eventIdx,
    size: q.size,
    ready: q.ready,
    descTable: Number(q.descTable),
    availRing: Number(q.availRing),
    usedRing: Number(q.usedRing),
  }
  if (JSON.stringify(s) !== JSON.stringify(want))
    throw new Error(`state() is ${JSON.stringify(s)}, the model says ${JSON.stringify(want)}`)
  r.g.release()
  r.queue = Queue.fromState(r.m.mem, JSON.parse(JSON.stringify(s)))
  r.g = r.queue.lockWithMemory()
  q.numAdded = 0
}

function relock(r: Rig): void {
  const locked = attempt('lock while locked', () => r.queue.lockWithMemory())
  sameOutcome('lock while locked', locked, fail('QueueLocked'))
  r.g.release()
  sameOutcome(
    'released guard',
    attempt('released guard', () => r.g.nextAvail()),
    fail('GuardReleased'),
  )
  if (!r.g.released) throw new Error('released is false after release()')
  r.g = r.queue.lockWithMemory()
}

function step(r: Rig, op: OpSpec): void {
  count(`op ${op.k}`)
  const { m, q } = r
  switch (op.k) {
    case 'publish': {
      // Up to 8: as a driver would, never more than size entries ahead; else a raw jump.
      const room = Math.max(0, q.size - ((r.availIdx - q.nextAvail) & 0xffff))
      r.availIdx = (r.availIdx + (op.n <= 8 ? Math.min(op.n, room) : op.n)) & 0xffff
      return m.writeU16(BigInt(r.avail + 2), r.availIdx)
    }
    case 'usedEvent':
      return m.writeU16(BigInt(r.avail + 4 + 2 * q.size), op.v)
    case 'pop':
    case 'iter':
    case 'batch':
      return pops(r, op)
    case 'addUsed':
    case 'addUsedBatch':
      return addUsed(r, op)
    case 'setNextAvail': {
      const v = op.rel ? (r.availIdx - (op.v % (q.size + 1))) & 0xffff : op.v
      r.g.setNextAvail(v)
      q.nextAvail = v
      return
    }
    case 'setNextUsed':
      r.g.setNextUsed(op.v)
      q.nextUsed = op.v
      return
    case 'prev':
      r.g.goToPreviousPosition()
      q.nextAvail = (q.nextAvail - 1) & 0xffff
      return
    case 'reset':
      r.g.reset()
      Object.assign(q, {
        size: r.maxSize,
        ready: false,
        descTable: 0n,
        availRing: 0n,
        usedRing: 0n,
        nextAvail: 0,
        nextUsed: 0,
        eventIdx: false,
        numAdded: 0,
      })
      return
    case 'configure':
      return configure(r, op.sizeShift)
    case 'setSize': {
      const valid = op.v > 0 && op.v <= r.maxSize && (op.v & (op.v - 1)) === 0
      sameOutcome(
        'setSize',
        attempt('setSize', () => r.g.setSize(op.v)),
        valid ? ok(0) : fail('InvalidSize'),
      )
      if (valid) q.size = op.v
      return
    }
    case 'setReady':
      r.g.setReady(op.b)
      q.ready = op.b
      return
    case 'setEventIdx':
      r.g.setEventIdx(op.b)
      q.eventIdx = op.b
      return
    case 'notify': {
      const ctx = `${op.which}Notification`
      if (op.which === 'enable')
        return expectValue(
          ctx,
          attempt(ctx, () => r.g.enableNotification()),
          modelEnableNotification(m, q),
        )
      if (op.which === 'disable')
        return sameOutcome(
          ctx,
          attempt(ctx, () => r.g.disableNotification()),
          modelDisableNotification(m, q),
        )
      return expectValue(
        ctx,
        attempt(ctx, () => r.g.needsNotification()),
        modelNeedsNotification(m, q),
      )
    }
    case 'idx': {
      expectValue(
        'availIdx',
        attempt('availIdx', () => r.g.availIdx(op.order)),
        modelAvailIdx(m, q),
      )
      const at = q.usedRing + 2n
      const used =
        at > U64_MAX ? fail('AddressOverflow') : m.inOneRegion(at, 2) ? ok(m.readU16(at)!) : fail('GuestMemory')
      return expectValue(
        'usedIdx',
        attempt('usedIdx', () => r.g.usedIdx(op.order)),
        used,
      )
    }
    case 'isValid': {
      const s = BigInt(q.size)
      const valid =
        q.ready &&
        inRange(m, q.descTable + 16n * s) &&
        inRange(m, q.availRing + 6n + 2n * s) &&
        inRange(m, q.usedRing + 6n + 8n * s)
      return expectValue('isValid', ok(r.g.isValid()), ok(valid))
    }
    case 'snapshot':
      return snapshot(r)
    case 'relock':
      return relock(r)
    case 'io':
      return io(r, op)
    case 'views':
      return views(r, op.pick)
  }
}

/** Runs one sequence; throws a description of the first step that disagrees with the model. */
export function runOpsCase(spec: OpsSpec): void {
  const r = build(spec)
  try {
    spec.ops.forEach((op, i) => {
      const before = r.m.snapshot()
      try {
        step(r, op)
      } catch (e) {
        throw new Error(`step ${i} ${JSON.stringify(op)}: ${(e as Error).message}`)
      }
      const g = r.g
      const got = [g.nextAvail(), g.nextUsed(), g.size(), g.ready(), g.eventIdxEnabled()]
      const want = [r.q.nextAvail, r.q.nextUsed, r.q.size, r.q.ready, r.q.eventIdx]
      if (got.join() !== want.join())
        throw new Error(
          `after step ${i} ${JSON.stringify(op)}: [nextAvail, nextUsed, size, ready, eventIdx] = [${got}], the model says [${want}]`,
        )
      if (op.k !== 'publish' && op.k !== 'usedEvent') {
        const changed = r.m.changedOutside(before, r.allowed)
        if (changed) throw new Error(`step ${i} ${JSON.stringify(op)}: ${changed}`)
      }
      const canary = r.m.checkCanaries()
      if (canary) throw new Error(`step ${i} ${JSON.stringify(op)}: ${canary}`)
    })
  } finally {
    r.g.release()
  }
}
