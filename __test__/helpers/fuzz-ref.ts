// An independent model of the device side of a split virtqueue, for the fuzz
// tests: how a chain is walked, what a pop returns, what addUsed and the
// notification calls write. Written from the virtio 1.2 spec (2.7) and the
// rules virtio-queue 0.14 documents, reading guest memory through
// CanaryMemory's raw accessors rather than the package.
import {
  CHAIN_STOP_REASONS,
  VirtioQueueError,
  type ChainBatch,
  type ChainStopReason,
  type DescriptorChain,
} from '../..'
import type { CanaryMemory, Range } from './fuzz-mem'

export const NEXT = 1
export const WRITE = 2
export const INDIRECT = 4
export const U64_MAX = (1n << 64n) - 1n

export interface RefDesc {
  addr: bigint
  len: number
  flags: number
  next: number
}

export interface RefChain {
  head: number
  descs: RefDesc[]
  stop: ChainStopReason | null
  /** Entries of the indirect table the walk switched to (0: none). */
  indirectLen: number
}

/**
 * Walks the chain at `head`. The rules: at most `size` descriptors are followed in the
 * queue's table (a chain that is longer loops: InvalidChain), checked before the index;
 * an index must be below the table's size; an indirect descriptor switches to its table
 * once (a second one is InvalidIndirectDescriptor), whose length must be a multiple of 16
 * and at most 65535 entries, and the count restarts at the table's length; the lengths
 * must add up to less than 2^32; a descriptor must be readable from guest memory (it may
 * span adjacent regions).
 */
export function referenceWalk(m: CanaryMemory, descTable: bigint, size: number, head: number): RefChain {
  let table = descTable
  let tableSize = size
  let next = head
  let ttl = size
  let indirect = false
  let total = 0
  let indirectLen = 0
  const descs: RefDesc[] = []
  const end = (stop: ChainStopReason | null): RefChain => ({ head, descs, stop, indirectLen })
  for (;;) {
    if (ttl === 0) return end('InvalidChain')
    if (next >= tableSize) return end('InvalidDescriptorIndex')
    const at = table + 16n * BigInt(next)
    if (at > U64_MAX) return end('AddressOverflow')
    const raw = m.read(at, 16)
    if (!raw) return end('GuestMemory')
    const dv = new DataView(raw.buffer)
    const d: RefDesc = {
      addr: dv.getBigUint64(0, true),
      len: dv.getUint32(8, true),
      flags: dv.getUint16(12, true),
      next: dv.getUint16(14, true),
    }
    if (d.flags & INDIRECT) {
      if (indirect) return end('InvalidIndirectDescriptor')
      if (d.len % 16 !== 0 || d.len / 16 > 0xffff) return end('InvalidIndirectDescriptorTable')
      table = d.addr
      tableSize = ttl = indirectLen = d.len / 16
      next = 0
      indirect = true
      continue
    }
    if (total + d.len > 0xffffffff) return end('DescriptorChainOverflow')
    total += d.len
    descs.push(d)
    if (!(d.flags & NEXT)) return end(null)
    next = d.next
    ttl--
  }
}

/** The device-side queue state the model tracks. */
export interface QueueModel {
  size: number
  ready: boolean
  descTable: bigint
  availRing: bigint
  usedRing: bigint
  nextAvail: number
  nextUsed: number
  eventIdx: boolean
  /** Used entries added since needsNotification last looked (the crate's num_added). */
  numAdded: number
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string }
const ok = <T>(value: T): Outcome<T> => ({ ok: true, value })
const fail = (code: string): Outcome<never> => ({ ok: false, code })

/** The avail idx as the device reads it (an atomic load: one region). */
export function modelAvailIdx(m: CanaryMemory, q: QueueModel): Outcome<number> {
  const a = q.availRing + 2n
  if (a > U64_MAX) return fail('AddressOverflow')
  return m.inOneRegion(a, 2) ? ok(m.readU16(a)!) : fail('GuestMemory')
}

/** What popping one chain does: the chain, null (none available), or the error; advances q.nextAvail. */
export function modelPop(m: CanaryMemory, q: QueueModel): Outcome<RefChain | null> {
  if (!q.ready || q.availRing === 0n) return fail('QueueNotReady')
  const idx = modelAvailIdx(m, q)
  if (!idx.ok) return idx
  if (((idx.value - q.nextAvail) & 0xffff) > q.size) return fail('InvalidAvailRingIndex')
  if (idx.value === q.nextAvail) return ok(null)
  const slot = q.availRing + 4n + 2n * BigInt(q.nextAvail % q.size)
  if (slot > U64_MAX || !m.inOneRegion(slot, 2)) return ok(null)
  const head = m.readU16(slot)!
  q.nextAvail = (q.nextAvail + 1) & 0xffff
  return ok(referenceWalk(m, q.descTable, q.size, head))
}

/** What addUsed(head, len) does to the model; the used element's address on success. */
export function modelAddUsed(m: CanaryMemory, q: QueueModel, head: number): Outcome<bigint> {
  // This package's rule (the crate would write the element wherever the used ring points).
  if (!q.ready) return fail('QueueNotReady')
  if (head >= q.size) return fail('InvalidDescriptorIndex')
  const elem = q.usedRing + 4n + 8n * BigInt(q.nextUsed % q.size)
  if (elem > U64_MAX) return fail('AddressOverflow')
  if (!m.mapped(elem, 8)) return fail('GuestMemory')
  q.nextUsed = (q.nextUsed + 1) & 0xffff
  q.numAdded = (q.numAdded + 1) & 0xffff
  return m.inOneRegion(q.usedRing + 2n, 2) ? ok(elem) : fail('GuestMemory')
}

/** What enableNotification() returns. */
export function modelEnableNotification(m: CanaryMemory, q: QueueModel): Outcome<boolean> {
  const at = q.eventIdx ? q.usedRing + 4n + 8n * BigInt(q.size) : q.usedRing
  if (at > U64_MAX) return fail('AddressOverflow')
  if (!m.inOneRegion(at, 2)) return fail('GuestMemory')
  const idx = modelAvailIdx(m, q)
  return idx.ok ? ok(idx.value !== q.nextAvail) : idx
}

/** What disableNotification() does. */
export function modelDisableNotification(m: CanaryMemory, q: QueueModel): Outcome<undefined> {
  if (q.eventIdx) return ok(undefined)
  return m.inOneRegion(q.usedRing, 2) ? ok(undefined) : fail('GuestMemory')
}

/** What needsNotification() returns (used_event with event idx, else always true). */
export function modelNeedsNotification(m: CanaryMemory, q: QueueModel): Outcome<boolean> {
  if (!q.eventIdx) return ok(true)
  const at = q.availRing + 4n + 2n * BigInt(q.size)
  if (at > U64_MAX) return fail('AddressOverflow')
  if (!m.inOneRegion(at, 2)) return fail('GuestMemory')
  const usedEvent = m.readU16(at)!
  const old = (q.nextUsed - q.numAdded) & 0xffff
  q.numAdded = 0
  return ok(((q.nextUsed - usedEvent - 1) & 0xffff) < ((q.nextUsed - old) & 0xffff))
}

/** The bytes of the used ring the device may write: flags, idx, ring[size], avail_event. */
export function usedRingRange(q: QueueModel): Range {
  return { start: q.usedRing, len: BigInt(6 + 8 * q.size) }
}

/** Whether every non-empty buffer of `descs` lies in guest memory below 2^53. */
export function buffersMapped(m: CanaryMemory, descs: readonly RefDesc[]): boolean {
  return descs.every((d) => d.len === 0 || (d.addr < 2n ** 53n && m.mapped(d.addr, d.len)))
}

/** The concatenated bytes of `descs`' buffers, at most `cap` of them. */
export function bufferBytes(m: CanaryMemory, descs: readonly RefDesc[], cap: number): Uint8Array {
  const parts: Uint8Array[] = []
  let n = 0
  for (const d of descs) {
    if (n >= cap) break
    const take = Math.min(d.len, cap - n)
    if (take > 0) parts.push(m.read(d.addr, take)!)
    n += take
  }
  return Buffer.concat(parts)
}

/** The error classes the package may throw; anything else is a failure of the property. */
export function checkErrorClass(e: unknown, context: string): asserts e is Error & { code: string } {
  if (e instanceof VirtioQueueError || e instanceof RangeError || e instanceof TypeError) {
    if (typeof (e as { code?: unknown }).code === 'string') return
  }
  throw new Error(
    `${context}: unexpected ${e instanceof Error ? `${e.name} (code ${String((e as { code?: unknown }).code)}): ${e.message}` : String(e)}`,
  )
}

/** Runs `f`, returning its outcome; errors must be package errors. */
export function attempt<T>(context: string, f: () => T): Outcome<T> {
  try {
    return ok(f())
  } catch (e) {
    checkErrorClass(e, context)
    return fail(e.code)
  }
}

/** Asserts an outcome matches the model's. */
export function sameOutcome<T>(context: string, got: Outcome<T>, want: Outcome<unknown>): void {
  if (got.ok !== want.ok || (!got.ok && !want.ok && got.code !== want.code)) {
    const show = (o: Outcome<unknown>) => (o.ok ? 'success' : `error ${o.code}`)
    throw new Error(`${context}: got ${show(got)}, the model says ${show(want)}`)
  }
}

/** Compares a popped chain's descriptors and stop reason with the reference walk. */
export function compareChain(
  context: string,
  got: { head: number; stop: ChainStopReason | null; descs: RefDesc[] },
  want: RefChain,
  size: number,
): void {
  const fmt = (d: RefDesc) => `${d.addr.toString(16)}/${d.len}/${d.flags}/${d.next}`
  if (got.head !== want.head) throw new Error(`${context}: head ${got.head}, the model says ${want.head}`)
  if (got.stop !== want.stop)
    throw new Error(`${context} (head ${want.head}): stopReason ${got.stop}, the model says ${want.stop}`)
  const a = got.descs.map(fmt).join(' ')
  const b = want.descs.map(fmt).join(' ')
  if (a !== b) throw new Error(`${context} (head ${want.head}): descriptors [${a}], the model says [${b}]`)
  if (got.descs.length > size + want.indirectLen) {
    throw new Error(
      `${context}: ${got.descs.length} descriptors, more than queue size ${size} + indirect ${want.indirectLen}`,
    )
  }
}

export const chainView = (c: DescriptorChain) => ({
  head: c.headIndex,
  stop: c.stopReason,
  descs: c.descriptors().map((d) => ({ addr: d.addrBigInt, len: d.len, flags: d.flags, next: d.next })),
})

export function batchView(b: ChainBatch, i: number) {
  const descs: RefDesc[] = []
  for (let j = b.descriptorStart(i), k = 0; k < b.descriptorCount(i); j++, k++) {
    descs.push({ addr: BigInt(b.addr(j)), len: b.len(j), flags: b.flags(j), next: b.next(j) })
  }
  return { head: b.head(i), stop: CHAIN_STOP_REASONS[b.status(i)] ?? null, descs }
}

/**
 * The model's chains for up to `max` pops; an error if the first pop fails. With
 * `room` (a ChainBatch's descriptor capacity), a chain that does not fit ends the pop
 * and stays in the ring, except the first, for which the batch grows.
 */
export function modelPops(m: CanaryMemory, q: QueueModel, max: number, room = Infinity): Outcome<RefChain[]> {
  const out: RefChain[] = []
  let used = 0
  while (out.length < max) {
    const saved = q.nextAvail
    const r = modelPop(m, q)
    if (!r.ok) return out.length === 0 ? r : { ok: true, value: out }
    if (r.value === null) break
    used += r.value.descs.length
    if (used > room) {
      if (out.length > 0) {
        q.nextAvail = saved
        break
      }
      // The first chain does not fit: the batch grows to room for any chain of the queue.
      room = q.size + 0xffff
    }
    out.push(r.value)
  }
  return { ok: true, value: out }
}
