// The batch path: ChainBatch + popChains, UsedBatch + addUsedBatch.
import test from 'ava'

import { CHAIN_STOP_REASONS, ChainBatch, UsedBatch, VirtioQueueError } from '..'
import {
  addSimpleChains,
  argRangeError,
  argTypeError,
  DATA_BASE,
  drainHeads,
  makeRig,
  vqError,
} from './helpers/queue-setup'

/** Chain i of the batch as plain data. */
function chainAt(b: ChainBatch, i: number) {
  const start = b.descriptorStart(i)
  return {
    head: b.head(i),
    status: b.status(i),
    descs: Array.from({ length: b.descriptorCount(i) }, (_, k) => {
      const j = start + k
      return { addr: b.addr(j), len: b.len(j), flags: b.flags(j), next: b.next(j), w: b.isWriteOnly(j) }
    }),
  }
}

test('ChainBatch constructor: defaults and argument checks', (t) => {
  const b = new ChainBatch()
  t.is(b.maxChains, 128)
  t.is(b.count, 0)
  t.is(b.descriptorTotal, 0)
  t.is(new ChainBatch(7).maxChains, 7)
  t.is(new ChainBatch(65535, 1).maxChains, 65535)
  t.throws(() => new ChainBatch(0), argRangeError('maxChains'))
  t.throws(() => new ChainBatch(65536), argRangeError('maxChains'))
  t.throws(() => new ChainBatch(1.5), argRangeError('maxChains'))
  t.throws(() => new ChainBatch('8' as never), argTypeError('maxChains'))
  t.throws(() => new ChainBatch(8, -1), argRangeError('maxDescriptors'))
  t.throws(() => new ChainBatch(8, 2 ** 24 + 1), argRangeError('maxDescriptors'))
})

test('popChains: counts, heads, descriptor fields', (t) => {
  const { guard, driver } = makeRig({ size: 16 })
  const h0 = driver.addChain([{ addr: DATA_BASE, len: 10 }])
  const h1 = driver.addChain([
    { addr: DATA_BASE + 0x100, len: 20 },
    { addr: DATA_BASE + 0x200, len: 30, writable: true },
  ])
  const h2 = driver.addChain(
    [
      { addr: DATA_BASE + 0x300, len: 40 },
      { addr: DATA_BASE + 0x400, len: 50 },
    ],
    { indirect: true },
  )
  const b = new ChainBatch(8)
  t.is(guard.popChains(b), 3)
  t.is(b.count, 3)
  t.is(b.descriptorTotal, 5)
  const c = [0, 1, 2].map((i) => chainAt(b, i))
  t.deepEqual(
    c.map((x) => x.head),
    [h0, h1, h2],
  )
  t.deepEqual(
    c.map((x) => x.status),
    [0, 0, 0],
  )
  t.deepEqual(c[0]!.descs, [{ addr: DATA_BASE, len: 10, flags: 0, next: 0, w: false }])
  t.deepEqual(
    c[1]!.descs.map((d) => [d.addr, d.len, d.flags, d.w]),
    [
      [DATA_BASE + 0x100, 20, 1, false],
      [DATA_BASE + 0x200, 30, 2, true],
    ],
  )
  t.is(c[1]!.descs[0]!.next, driver.readDescriptor(h1).next)
  t.deepEqual(
    c[2]!.descs.map((d) => [d.addr, d.len, d.flags, d.next]),
    [
      [DATA_BASE + 0x300, 40, 1, 1],
      [DATA_BASE + 0x400, 50, 0, 0],
    ],
  )
  t.deepEqual(
    [0, 1, 2].map((i) => b.descriptorStart(i)),
    [0, 1, 3],
  )
  t.is(guard.nextAvail(), 3)
  t.is(guard.popChains(b), 0)
  t.is(b.count, 0, 'each pop overwrites the batch')
})

test('popChains: status numbers for malformed chains index CHAIN_STOP_REASONS', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  driver.writeDescriptor(0, { addr: DATA_BASE, len: 1, flags: 1, next: 8 })
  driver.writeDescriptor(1, { addr: DATA_BASE, len: 1, flags: 1, next: 1 })
  driver.writeDescriptor(2, { addr: DATA_BASE, len: 24, flags: 4, next: 0 })
  driver.writeDescriptor(3, { addr: DATA_BASE, len: 1, flags: 0, next: 0 })
  ;[0, 1, 2, 3].forEach((h, slot) => driver.writeAvailEntry(slot, h))
  driver.setAvailIdx(4)
  const b = new ChainBatch(4)
  t.is(guard.popChains(b), 4)
  t.deepEqual(
    [0, 1, 2, 3].map((i) => CHAIN_STOP_REASONS[b.status(i)]),
    ['InvalidDescriptorIndex', 'InvalidChain', 'InvalidIndirectDescriptorTable', null],
  )
  t.deepEqual(
    [0, 1, 2, 3].map((i) => b.descriptorCount(i)),
    [1, 8, 0, 1],
  )
})

test('readableBytes/writableBytes: totals from the pop, -1 when a buffer is not in guest memory', (t) => {
  const { guard, driver, memory } = makeRig({ size: 16 })
  const end = memory.regions[0]!.guestAddress + memory.regions[0]!.size
  driver.addChain([
    { addr: DATA_BASE, len: 16 },
    { addr: DATA_BASE + 0x100, len: 0 },
    { addr: DATA_BASE + 0x200, len: 512, writable: true },
    { addr: DATA_BASE + 0x400, len: 100, writable: true },
  ])
  driver.addChain(
    [
      { addr: DATA_BASE, len: 8 },
      { addr: DATA_BASE + 0x10, len: 8 },
    ],
    { indirect: true },
  )
  driver.addChain([
    { addr: end - 4, len: 8 },
    { addr: DATA_BASE, len: 32, writable: true },
  ])
  driver.addChain([
    { addr: DATA_BASE, len: 4 },
    { addr: end, len: 1, writable: true },
  ])
  const b = new ChainBatch(8)
  t.is(guard.popChains(b), 4)
  t.deepEqual(
    [0, 1, 2, 3].map((i) => [b.readableBytes(i), b.writableBytes(i)]),
    [
      [16, 612],
      [16, 0],
      [-1, 32],
      [4, -1],
    ],
  )
  // The iterator path uses the same totals: reader() and writer() agree with them, and
  // throw InvalidChain where the batch says -1.
  driver.addChain([
    { addr: end - 4, len: 8 },
    { addr: DATA_BASE, len: 32, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  t.is(chain.writer().availableBytes(), 32)
  t.throws(() => chain.reader(), vqError('InvalidChain'))
})

test('the raw layout: words hold what the accessors return, where the constants say', (t) => {
  const { guard, driver } = makeRig({ size: 16 })
  driver.addChain([
    { addr: DATA_BASE, len: 16 },
    { addr: DATA_BASE + 0x200, len: 512, writable: true },
  ])
  driver.addChain(
    [
      { addr: DATA_BASE + 0x1000, len: 8 },
      { addr: 2 ** 40, len: 4, writable: true },
    ],
    { indirect: true },
  )
  t.deepEqual([ChainBatch.HEADER_WORDS, ChainBatch.CHAIN_WORDS, ChainBatch.DESC_WORDS], [4, 6, 4])
  const b = new ChainBatch(3)
  t.is(b.descriptorBase, 4 + 6 * 3)
  t.is(guard.popChains(b), 2)
  const w = b.words
  t.deepEqual([w[0], w[1]], [b.count, b.descriptorTotal])
  const raw = (x: number) => (x === 0xffffffff ? -1 : x)
  for (let i = 0; i < b.count; i++) {
    const c = ChainBatch.HEADER_WORDS + ChainBatch.CHAIN_WORDS * i
    t.deepEqual(
      [w[c], w[c + 1], w[c + 2], w[c + 3], raw(w[c + 4]!), raw(w[c + 5]!)],
      [b.head(i), b.descriptorStart(i), b.descriptorCount(i), b.status(i), b.readableBytes(i), b.writableBytes(i)],
    )
  }
  for (let j = 0; j < b.descriptorTotal; j++) {
    const o = b.descriptorBase + ChainBatch.DESC_WORDS * j
    t.deepEqual(
      [w[o + 1]! * 2 ** 32 + w[o]!, w[o + 2], w[o + 3]! & 0xffff, w[o + 3]! >>> 16],
      [b.addr(j), b.len(j), b.flags(j), b.next(j)],
    )
  }
  t.is(b.addr(3), 2 ** 40, 'a high address uses both address words')
  t.is(b.writableBytes(1), -1, 'and is not guest memory')
})

test('popChains respects maxChains: the rest stay in the ring', (t) => {
  const { guard, driver } = makeRig({ size: 16 })
  const heads = addSimpleChains(driver, 5)
  const b = new ChainBatch(2)
  const got: number[] = []
  for (const expected of [2, 2, 1, 0]) {
    t.is(guard.popChains(b), expected)
    for (let i = 0; i < b.count; i++) got.push(b.head(i))
  }
  t.deepEqual(got, heads)
  t.is(guard.nextAvail(), 5)
})

test('popChains grows the batch when a chain has more descriptors than it holds', (t) => {
  const { guard, driver } = makeRig({ size: 64 })
  const small = addSimpleChains(driver, 1)
  const bufs = Array.from({ length: 40 }, (_, i) => ({ addr: DATA_BASE + 8 * i, len: 8 }))
  const big = driver.addChain(bufs)
  const tail = addSimpleChains(driver, 1)
  const b = new ChainBatch(4, 4)
  // The first chain fits; the second does not and stays in the ring.
  t.is(guard.popChains(b), 1)
  t.is(b.head(0), small[0])
  t.is(guard.nextAvail(), 1)
  // Next pop: the big chain comes first, so the batch grows to room for any chain of the
  // queue (size + 65535 descriptors; the chain is not walked to be counted), and the tail
  // chain fits too.
  t.is(guard.popChains(b), 2)
  t.is(b.words.length, b.descriptorBase + ChainBatch.DESC_WORDS * (64 + 0xffff))
  t.is(b.head(0), big)
  t.is(b.descriptorCount(0), 40)
  t.deepEqual(
    chainAt(b, 0).descs.map((d) => d.addr),
    bufs.map((x) => x.addr),
  )
  t.is(b.status(0), 0)
  t.is(b.head(1), tail[0])
  // An indirect table of 60 entries in a batch with room for one descriptor.
  const ind = driver.addChain(
    Array.from({ length: 60 }, (_, i) => ({ addr: DATA_BASE + 8 * i, len: 8 })),
    { indirect: true },
  )
  const d = new ChainBatch(1, 1)
  t.is(guard.popChains(d), 1)
  t.is(d.head(0), ind)
  t.is(d.descriptorCount(0), 60)
})

test('popChains: errors', (t) => {
  const { guard, driver } = makeRig({ size: 8, notReady: true })
  t.throws(() => guard.popChains(new ChainBatch()), vqError('QueueNotReady'))
  guard.setReady(true)
  driver.setAvailIdx(9)
  t.throws(() => guard.popChains(new ChainBatch()), vqError('InvalidAvailRingIndex'))
  t.throws(() => guard.popChains({ maxChains: 4 } as never), argTypeError('batch'))
  t.throws(() => guard.popChains(undefined as never), argTypeError('batch'))
})

test('interleaving popChains with popDescriptorChain and iter() keeps avail order', (t) => {
  const { guard, driver } = makeRig({ size: 16 })
  const heads = addSimpleChains(driver, 8)
  const order: number[] = []
  order.push(guard.popDescriptorChain()!.headIndex) // prefetches all eight
  const b = new ChainBatch(2)
  t.is(guard.popChains(b), 2)
  order.push(b.head(0), b.head(1))
  order.push(guard.popDescriptorChain()!.headIndex)
  const it = guard.iter()
  order.push(it.next().value!.headIndex)
  t.is(guard.popChains(b), 2)
  order.push(b.head(0), b.head(1))
  order.push(...drainHeads(guard))
  t.deepEqual(order, heads)
})

test('UsedBatch: push validation', (t) => {
  const u = new UsedBatch()
  t.is(u.count, 0)
  t.throws(() => u.push(-1, 0), argRangeError('headIndex'))
  t.throws(() => u.push(65536, 0), argRangeError('headIndex'))
  t.throws(() => u.push(1.5, 0), argRangeError('headIndex'))
  t.throws(() => u.push(NaN, 0), argRangeError('headIndex'))
  t.throws(() => u.push(0, 2 ** 32), argRangeError('len'))
  t.throws(() => u.push(0, -1), argRangeError('len'))
  t.throws(() => u.push(0, 0.5), argRangeError('len'))
  t.throws(() => u.push('1' as never, 0), argTypeError('headIndex'))
  t.throws(() => u.push(0, 1n as never), argTypeError('len'))
  t.is(u.count, 0, 'nothing queued by the failed pushes')
  u.push(65535, 2 ** 32 - 1)
  t.is(u.count, 1)
  u.clear()
  t.is(u.count, 0)
  t.throws(() => new UsedBatch(-1), argRangeError('capacity'))
  t.throws(() => new UsedBatch('4' as never), argTypeError('capacity'))
})

test('addUsedBatch: adds every entry in order, grows past its capacity, then clears', (t) => {
  const { guard, driver, memory, layout } = makeRig({ size: 16, eventIdx: true })
  const heads = addSimpleChains(driver, 10)
  const b = new ChainBatch(16)
  t.is(guard.popChains(b), 10)
  const used = new UsedBatch(1)
  for (let i = 0; i < b.count; i++) used.push(b.head(i), 100 + i)
  t.is(used.count, 10)
  guard.addUsedBatch(used)
  t.is(used.count, 0)
  t.is(guard.usedIdx(), 10)
  t.is(memory.readU16(layout.usedRing + 2), 10)
  t.true(guard.needsNotification(), 'used_event 0 was crossed by the batch')
  t.deepEqual(
    driver.popAllUsed().map((u) => [u.head, u.len]),
    heads.map((h, i) => [h, 100 + i]),
  )
  guard.addUsedBatch(used)
  t.is(guard.usedIdx(), 10, 'an empty batch adds nothing')
  t.throws(() => guard.addUsedBatch([] as never), argTypeError('used'))
})

test('addUsedBatch: an entry with head ≥ size fails with its index; the entries before it were added', (t) => {
  const { guard, memory, layout } = makeRig({ size: 8 })
  const used = new UsedBatch()
  used.push(0, 1)
  used.push(1, 2)
  used.push(9, 3)
  used.push(2, 4)
  const err = t.throws(() => guard.addUsedBatch(used), vqError('InvalidDescriptorIndex', /entry 2/))
  t.true(err instanceof VirtioQueueError)
  t.is(guard.usedIdx(), 2)
  t.is(guard.nextUsed(), 2)
  t.deepEqual(
    [0, 1].map((s) => [memory.readU32(layout.usedRing + 4 + 8 * s), memory.readU32(layout.usedRing + 8 + 8 * s)]),
    [
      [0, 1],
      [1, 2],
    ],
  )
  t.is(memory.readU64(layout.usedRing + 4 + 8 * 2), 0n, 'nothing written for the failing entry or after it')
  t.is(used.count, 0, 'the batch was consumed')
})

test('addUsedBatch: GuestMemory when the used ring is outside memory', (t) => {
  const { guard } = makeRig({ size: 8 })
  guard.setUsedRingAddress(0x200000)
  const used = new UsedBatch()
  used.push(0, 0)
  t.throws(() => guard.addUsedBatch(used), vqError('GuestMemory'))
})
