// QueueGuard configuration: sizes, ring addresses, ready, event idx, isValid, reset, locking and release.
import test from 'ava'

import { ChainBatch, GuestMemory, Queue, type QueueGuard, UsedBatch } from '..'
import { splitQueueLayout } from '../driver'
import { argRangeError, argTypeError, configure, makeRig, vqError } from './helpers/queue-setup'

function fresh(maxSize = 256): { queue: Queue; guard: QueueGuard; memory: GuestMemory } {
  const memory = GuestMemory.fromRanges([[0, 0x10000]])
  const queue = new Queue(memory, maxSize)
  return { queue, guard: queue.lockWithMemory(), memory }
}

test('new Queue: maxSize must be a power of two up to 32768', (t) => {
  const memory = GuestMemory.fromRanges([[0, 0x1000]])
  for (const n of [1, 2, 256, 32768]) t.is(new Queue(memory, n).lockWithMemory().maxSize(), n)
  for (const n of [0, 3, 100, 32767, 65536, 65537, 2 ** 32])
    t.throws(() => new Queue(memory, n), vqError('InvalidMaxSize'), String(n))
  t.throws(() => new Queue(memory, 1.5), argRangeError('maxSize'))
  t.throws(() => new Queue(memory, -2), argRangeError('maxSize'))
  t.throws(() => new Queue(memory, '8' as never), argTypeError('maxSize'))
  t.throws(() => new Queue({} as never, 8), argTypeError('memory'))
  t.is(new Queue(memory, 8).memory, memory)
})

test('a new queue: size = maxSize, not ready, addresses 0, event idx off', (t) => {
  const { queue, guard, memory } = fresh(64)
  t.is(guard.memory, memory)
  t.is(guard.maxSize(), 64)
  t.is(guard.size(), 64)
  t.false(guard.ready())
  t.false(guard.eventIdxEnabled())
  t.false(guard.isValid())
  t.is(guard.nextAvail(), 0)
  t.is(guard.nextUsed(), 0)
  t.deepEqual(queue.state(), {
    maxSize: 64,
    nextAvail: 0,
    nextUsed: 0,
    eventIdxEnabled: false,
    size: 64,
    ready: false,
    descTable: 0,
    availRing: 0,
    usedRing: 0,
  })
})

test('setSize: powers of two up to maxSize; anything else is InvalidSize and keeps the size', (t) => {
  const { guard } = fresh(256)
  for (const n of [1, 2, 128, 256]) {
    guard.setSize(n)
    t.is(guard.size(), n)
  }
  guard.setSize(16)
  // The crate's set_size would ignore these silently; try_set_size reports them.
  for (const n of [0, 3, 24, 512, 65536, 2 ** 31, 2 ** 40]) {
    t.throws(() => guard.setSize(n), vqError('InvalidSize'), String(n))
    t.is(guard.size(), 16)
  }
  t.throws(() => guard.setSize(1.5), argRangeError('size'))
  t.throws(() => guard.setSize(-1), argRangeError('size'))
  t.throws(() => guard.setSize('16' as never), argTypeError('size'))
  t.is(guard.maxSize(), 256)
})

test('ring addresses: low and high halves, a missing half keeps its value', (t) => {
  const { queue, guard } = fresh()
  guard.setDescTableAddress(0x1000)
  guard.setAvailRingAddress(0x2002, 0)
  guard.setUsedRingAddress(0x3004, null)
  t.like(queue.state(), { descTable: 0x1000, availRing: 0x2002, usedRing: 0x3004 })

  guard.setDescTableAddress(undefined, 0x1)
  guard.setAvailRingAddress(null, 0x2)
  guard.setUsedRingAddress(undefined, 0x1fffff)
  t.like(queue.state(), {
    descTable: 2 ** 32 + 0x1000,
    availRing: 2 * 2 ** 32 + 0x2002,
    usedRing: 0x1fffff * 2 ** 32 + 0x3004,
  })

  guard.setDescTableAddress(0xfffffff0)
  guard.setAvailRingAddress(0xfffffffe, 0)
  guard.setUsedRingAddress(0xfffffffc, 0)
  t.like(queue.state(), { descTable: 2 ** 32 + 0xfffffff0, availRing: 0xfffffffe, usedRing: 0xfffffffc })
  guard.setDescTableAddress()
  t.like(queue.state(), { descTable: 2 ** 32 + 0xfffffff0 }, 'no halves: unchanged')
})

test('misaligned ring addresses throw their Invalid*Align and keep the old value', (t) => {
  const { queue, guard } = fresh()
  guard.setDescTableAddress(0x1000, 0)
  guard.setAvailRingAddress(0x2000, 0)
  guard.setUsedRingAddress(0x3000, 0)
  const before = queue.state()
  for (const low of [0x1008, 0x1001, 0x1004])
    t.throws(() => guard.setDescTableAddress(low), vqError('InvalidDescTableAlign'))
  t.throws(() => guard.setAvailRingAddress(0x2001), vqError('InvalidAvailRingAlign'))
  t.throws(() => guard.setUsedRingAddress(0x3002), vqError('InvalidUsedRingAlign'))
  t.throws(() => guard.setUsedRingAddress(0x3001, 5), vqError('InvalidUsedRingAlign'))
  t.deepEqual(queue.state(), before)
  // The high half alone never breaks alignment.
  guard.setUsedRingAddress(undefined, 5)
  t.is(queue.state().usedRing, 5 * 2 ** 32 + 0x3000)
})

test('ring address halves must be u32 numbers', (t) => {
  const { guard } = fresh()
  t.throws(() => guard.setDescTableAddress(2 ** 32), argRangeError('low'))
  t.throws(() => guard.setDescTableAddress(0, -1), argRangeError('high'))
  t.throws(() => guard.setAvailRingAddress(0.5), argRangeError('low'))
  t.throws(() => guard.setUsedRingAddress('0x1000' as never), argTypeError('low'))
  t.throws(() => guard.setUsedRingAddress(0, 1n as never), argTypeError('high'))
})

test('ready/setReady and setEventIdx/eventIdxEnabled', (t) => {
  const { queue, guard } = fresh()
  guard.setReady(true)
  t.true(guard.ready())
  guard.setEventIdx(true)
  t.true(guard.eventIdxEnabled())
  t.like(queue.state(), { ready: true, eventIdxEnabled: true })
  guard.setReady(false)
  guard.setEventIdx(false)
  t.false(guard.ready())
  t.false(guard.eventIdxEnabled())
  t.throws(() => guard.setReady(1 as never), argTypeError('ready'))
  t.throws(() => guard.setReady(undefined as never), argTypeError('ready'))
  t.throws(() => guard.setEventIdx('yes' as never), argTypeError('enabled'))
})

test('isValid: ready and every ring inside guest memory', (t) => {
  const memory = GuestMemory.fromRanges([[0, 0x10000]])
  const guard = new Queue(memory, 8).lockWithMemory()
  const layout = splitQueueLayout(0x1000, 8)
  configure(guard, layout, false, false)
  t.false(guard.isValid(), 'not ready')
  guard.setReady(true)
  t.true(guard.isValid())
  guard.setDescTableAddress(0x10000)
  t.false(guard.isValid(), 'descriptor table outside memory')
  guard.setDescTableAddress(layout.descTable, 1)
  t.false(guard.isValid(), 'descriptor table above 4 GiB')
  guard.setDescTableAddress(layout.descTable, 0)
  guard.setAvailRingAddress(0xfffe)
  t.false(guard.isValid(), 'avail ring past the end')
  guard.setAvailRingAddress(layout.availRing)
  guard.setUsedRingAddress(0x20000)
  t.false(guard.isValid(), 'used ring outside memory')
  guard.setUsedRingAddress(layout.usedRing)
  t.true(guard.isValid())
})

test("isValid: the crate's off-by-one reports a ring ending exactly at the end of memory as invalid", (t) => {
  // Size 8: the used ring is 6 + 8*8 = 70 bytes; at 0xffb8 it ends at 0xfffe.
  for (const [end, valid] of [
    [0xfffe, false],
    [0xffff, true],
  ] as const) {
    const memory = GuestMemory.fromRanges([[0, end]])
    const guard = new Queue(memory, 8).lockWithMemory()
    configure(guard, splitQueueLayout(0x1000, 8))
    guard.setUsedRingAddress(0xffb8)
    t.is(guard.isValid(), valid, `memory ending at 0x${end.toString(16)}`)
  }
  // The same for the descriptor table: 16*8 bytes at 0xff80 end at 0x10000.
  const memory = GuestMemory.fromRanges([[0, 0x10000]])
  const guard = new Queue(memory, 8).lockWithMemory()
  configure(guard, splitQueueLayout(0x1000, 8))
  guard.setDescTableAddress(0xff80)
  t.false(guard.isValid())
  guard.setDescTableAddress(0xff70)
  t.true(guard.isValid())
})

test('reset(): back to the state after construction', (t) => {
  const { queue, guard, driver } = makeRig({ size: 8, maxSize: 32, eventIdx: true })
  driver.addChain([{ addr: 0x80000, len: 4 }])
  const chain = guard.popDescriptorChain()!
  guard.addUsed(chain.headIndex, 0)
  guard.reset()
  t.deepEqual(queue.state(), {
    maxSize: 32,
    nextAvail: 0,
    nextUsed: 0,
    eventIdxEnabled: false,
    size: 32,
    ready: false,
    descTable: 0,
    availRing: 0,
    usedRing: 0,
  })
  t.false(guard.isValid())
  t.throws(() => guard.popDescriptorChain(), vqError('QueueNotReady'))
})

test('one guard at a time: QueueLocked until release()', (t) => {
  const { queue, guard } = fresh()
  t.throws(() => queue.lockWithMemory(), vqError('QueueLocked'))
  t.false(guard.released)
  guard.release()
  t.true(guard.released)
  guard.release()
  t.true(guard.released, 'release() is idempotent')
  const second = queue.lockWithMemory()
  t.not(second, guard)
  t.throws(() => queue.lockWithMemory(), vqError('QueueLocked'))
  // Releasing the old guard again does not unlock the new one.
  guard.release()
  t.throws(() => queue.lockWithMemory(), vqError('QueueLocked'))
  second[Symbol.dispose]()
  t.true(second.released)
  t.notThrows(() => queue.lockWithMemory())
})

test('every method of a released guard throws GuardReleased', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  driver.addChain([{ addr: 0x80000, len: 4 }])
  const it = guard.iter()
  const used = new UsedBatch()
  used.push(0, 1)
  guard.release()
  const calls: Record<string, () => unknown> = {
    isValid: () => guard.isValid(),
    reset: () => guard.reset(),
    maxSize: () => guard.maxSize(),
    size: () => guard.size(),
    setSize: () => guard.setSize(8),
    ready: () => guard.ready(),
    setReady: () => guard.setReady(true),
    setDescTableAddress: () => guard.setDescTableAddress(0),
    setAvailRingAddress: () => guard.setAvailRingAddress(0),
    setUsedRingAddress: () => guard.setUsedRingAddress(0),
    setEventIdx: () => guard.setEventIdx(true),
    eventIdxEnabled: () => guard.eventIdxEnabled(),
    availIdx: () => guard.availIdx(),
    usedIdx: () => guard.usedIdx(),
    addUsed: () => guard.addUsed(0, 1),
    enableNotification: () => guard.enableNotification(),
    disableNotification: () => guard.disableNotification(),
    needsNotification: () => guard.needsNotification(),
    nextAvail: () => guard.nextAvail(),
    nextUsed: () => guard.nextUsed(),
    setNextAvail: () => guard.setNextAvail(0),
    setNextUsed: () => guard.setNextUsed(0),
    goToPreviousPosition: () => guard.goToPreviousPosition(),
    popDescriptorChain: () => guard.popDescriptorChain(),
    iter: () => guard.iter(),
    'iter().next': () => it.next(),
    popChains: () => guard.popChains(new ChainBatch()),
    addUsedBatch: () => guard.addUsedBatch(used),
    'addUsedBatch (empty)': () => guard.addUsedBatch(new UsedBatch()),
  }
  for (const [name, call] of Object.entries(calls)) t.throws(call, vqError('GuardReleased', /released/), name)
  t.is(used.count, 1, 'the refused batch keeps its entries')
  t.notThrows(() => guard.release())
  t.truthy(guard.memory)
})
