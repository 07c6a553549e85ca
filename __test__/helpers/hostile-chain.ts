// The worst chain a guest can offer: one indirect table of 65,535 descriptors that every
// avail ring entry points to. For the per-chain bounds test (chain-bounds.spec.ts), and a
// stand-alone measurement: `node --expose-gc --import tsx __test__/helpers/hostile-chain.ts`.
import { ChainBatch, type DescriptorChain, GuestMemory, Queue, type QueueGuard } from '../..'

export const TABLE_ENTRIES = 0xffff
const TABLE = 0x100000
const DESC = 0x1000
const AVAIL = 0x3000
const USED = 0x4000

export interface HostileRing {
  memory: GuestMemory
  queue: Queue
  guard: QueueGuard
  /** Makes `n` more chains available, each through the whole table. */
  publish(n: number): void
}

/**
 * A ready queue of `size` whose every avail entry is an indirect descriptor of the one
 * 65,535-entry table; with `cutShort`, the table's last entry names an entry past the
 * table, so every chain ends malformed (InvalidChain: the table's count is used up first).
 */
export function hostileRing(size: number, cutShort = false): HostileRing {
  const memory = GuestMemory.fromRanges([[0, TABLE + 16 * TABLE_ENTRIES + 0x1000]])
  const region = memory.regions[0]!.buffer
  const table = new DataView(region.buffer, region.byteOffset + TABLE)
  for (let i = 0; i < TABLE_ENTRIES; i++) {
    const last = i === TABLE_ENTRIES - 1
    table.setUint32(16 * i, 0x8000, true)
    table.setUint32(16 * i + 8, 1, true)
    table.setUint16(16 * i + 12, last && !cutShort ? 0 : 1, true) // NEXT
    table.setUint16(16 * i + 14, last ? (cutShort ? TABLE_ENTRIES : 0) : i + 1, true)
  }
  for (let i = 0; i < size; i++) {
    memory.writeU64(DESC + 16 * i, TABLE)
    memory.writeU32(DESC + 16 * i + 8, 16 * TABLE_ENTRIES)
    memory.writeU16(DESC + 16 * i + 12, 4) // INDIRECT
  }
  const queue = new Queue(memory, size)
  const guard = queue.lockWithMemory()
  guard.setDescTableAddress(DESC)
  guard.setAvailRingAddress(AVAIL)
  guard.setUsedRingAddress(USED)
  guard.setReady(true)
  let idx = 0
  const publish = (n: number) => {
    for (let k = 0; k < n; k++, idx++) memory.writeU16(AVAIL + 4 + 2 * (idx % size), idx % size)
    memory.writeU16(AVAIL + 2, idx & 0xffff)
  }
  return { memory, queue, guard, publish }
}

/** CPU time of this process in milliseconds (user + system): waiting for a busy CPU is not counted. */
function cpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/**
 * CPU milliseconds per hostile chain, the best of `rounds` rounds of `n` chains each:
 * `iterator` through popDescriptorChain() (what iter() does), and `walk` through popChains
 * into a batch with room for one such chain (one walk of the chain per pop).
 */
export function msPerChain(n: number, rounds: number): { iterator: number; walk: number } {
  const r = hostileRing(256)
  const batch = new ChainBatch(1, 256 + TABLE_ENTRIES)
  let iterator = Number.POSITIVE_INFINITY
  let walk = Number.POSITIVE_INFINITY
  for (let round = 0; round < rounds; round++) {
    r.publish(n)
    let t0 = cpuMs()
    for (let i = 0; i < n; i++) {
      const c = r.guard.popDescriptorChain()
      if (c === null || c.length !== TABLE_ENTRIES) throw new Error(`chain of ${c?.length}`)
    }
    iterator = Math.min(iterator, (cpuMs() - t0) / n)
    r.publish(n)
    t0 = cpuMs()
    for (let i = 0; i < n; i++) {
      if (r.guard.popChains(batch) !== 1 || batch.descriptorCount(0) !== TABLE_ENTRIES) throw new Error('pop')
    }
    walk = Math.min(walk, (cpuMs() - t0) / n)
  }
  return { iterator, walk }
}

/** Bytes (JS heap and ArrayBuffers) each retained hostile DescriptorChain keeps alive, over `n` chains. */
export function bytesPerRetainedChain(n: number, gc: () => void): number {
  const r = hostileRing(256)
  const kept: DescriptorChain[] = []
  gc()
  const before = process.memoryUsage()
  r.publish(n)
  for (const c of r.guard.iter()) kept.push(c)
  gc()
  const after = process.memoryUsage()
  if (kept.length !== n) throw new Error(`kept ${kept.length}`)
  return (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / n
}

if (require.main === module) {
  const gc = (globalThis as { gc?: () => void }).gc
  console.log('ms per chain', msPerChain(8, 3))
  if (gc) console.log('bytes per retained chain', Math.round(bytesPerRetainedChain(64, gc)))
}
