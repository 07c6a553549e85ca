// Queue.state() / Queue.fromState(): snapshot fields, validation, and restoring mid-stream.
import test from 'ava'

import { GuestMemory, Queue, type QueueState } from '..'
import { argRangeError, argTypeError, configure, makeRig, vqError } from './helpers/queue-setup'
import { splitQueueLayout } from '../driver'

function validState(): QueueState {
  return {
    maxSize: 16,
    nextAvail: 5,
    nextUsed: 3,
    eventIdxEnabled: true,
    size: 8,
    ready: true,
    descTable: 0x1000,
    availRing: 0x2002,
    usedRing: 0x3004,
  }
}

test('state(): the crate QueueState fields, camelCased', (t) => {
  const { queue, guard, driver } = makeRig({ size: 8, maxSize: 64, eventIdx: true })
  driver.addChain([{ addr: 0x80000, len: 4 }])
  driver.addChain([{ addr: 0x80000, len: 4 }])
  guard.addUsed(guard.popDescriptorChain()!.headIndex, 1)
  const layout = splitQueueLayout(0x1000, 8)
  const s = queue.state()
  t.deepEqual(s, {
    maxSize: 64,
    nextAvail: 1,
    nextUsed: 1,
    eventIdxEnabled: true,
    size: 8,
    ready: true,
    descTable: layout.descTable,
    availRing: layout.availRing,
    usedRing: layout.usedRing,
  })
  t.deepEqual(Object.keys(s).sort(), [
    'availRing',
    'descTable',
    'eventIdxEnabled',
    'maxSize',
    'nextAvail',
    'nextUsed',
    'ready',
    'size',
    'usedRing',
  ])
  t.deepEqual(JSON.parse(JSON.stringify(s)), s)
  // state() works without a guard, too.
  guard.release()
  t.deepEqual(queue.state(), s)
})

test('fromState restores every field', (t) => {
  const memory = GuestMemory.fromRanges([[0, 0x10000]])
  const state = validState()
  const q = Queue.fromState(memory, JSON.parse(JSON.stringify(state)))
  t.true(q instanceof Queue)
  t.is(q.memory, memory)
  t.deepEqual(q.state(), state)
  const g = q.lockWithMemory()
  t.is(g.maxSize(), 16)
  t.is(g.size(), 8)
  t.is(g.nextAvail(), 5)
  t.is(g.nextUsed(), 3)
  t.true(g.ready())
  t.true(g.eventIdxEnabled())
  // A restored queue is a queue like any other: it can be locked once at a time.
  t.throws(() => q.lockWithMemory(), vqError('QueueLocked'))
  // And constructing an ordinary queue afterwards is unaffected by the restore.
  const plain = new Queue(memory, 4)
  t.is(plain.state().maxSize, 4)
})

test('addresses above 2^53 round-trip as decimal strings', (t) => {
  const { queue, guard } = makeRig({ size: 8 })
  guard.setDescTableAddress(0, 0x300000)
  guard.setAvailRingAddress(0x2, 0xffffffff)
  guard.setUsedRingAddress(0x4, 0x1fffff)
  const s = queue.state()
  t.is(s.descTable, (0x300000n << 32n).toString())
  t.is(s.availRing, ((0xffffffffn << 32n) | 2n).toString())
  t.is(s.usedRing, 0x1fffff * 2 ** 32 + 4, 'still a safe integer: a number')
  const back = JSON.parse(JSON.stringify(s)) as QueueState
  t.deepEqual(back, s)
  const restored = Queue.fromState(GuestMemory.fromRanges([[0, 0x1000]]), back)
  t.deepEqual(restored.state(), s)
  // Restored exactly: the high halves are where they were.
  const g = restored.lockWithMemory()
  g.setDescTableAddress(0x10)
  t.is(restored.state().descTable, ((0x300000n << 32n) | 0x10n).toString())
})

test('fromState rejects invalid states with the crate error', (t) => {
  const memory = GuestMemory.fromRanges([[0, 0x1000]])
  const bad = (patch: Partial<Record<keyof QueueState, unknown>>) => ({ ...validState(), ...patch }) as QueueState
  t.throws(() => Queue.fromState(memory, bad({ maxSize: 0 })), vqError('InvalidMaxSize'))
  t.throws(() => Queue.fromState(memory, bad({ maxSize: 24 })), vqError('InvalidMaxSize'))
  t.throws(() => Queue.fromState(memory, bad({ maxSize: 65535 })), vqError('InvalidMaxSize'))
  t.throws(() => Queue.fromState(memory, bad({ size: 0 })), vqError('InvalidSize'))
  t.throws(() => Queue.fromState(memory, bad({ size: 3 })), vqError('InvalidSize'))
  t.throws(() => Queue.fromState(memory, bad({ size: 32 })), vqError('InvalidSize'))
  t.throws(() => Queue.fromState(memory, bad({ descTable: 0x1008 })), vqError('InvalidDescTableAlign'))
  t.throws(() => Queue.fromState(memory, bad({ availRing: 0x2001 })), vqError('InvalidAvailRingAlign'))
  t.throws(() => Queue.fromState(memory, bad({ usedRing: 0x3002 })), vqError('InvalidUsedRingAlign'))
  t.throws(() => Queue.fromState(memory, bad({ usedRing: '4611686018427387906' })), vqError('InvalidUsedRingAlign'))
})

test('fromState: garbage addresses are InvalidState', (t) => {
  const memory = GuestMemory.fromRanges([[0, 0x1000]])
  for (const v of [
    'garbage',
    '',
    '-16',
    '1e3',
    ' 16',
    '016',
    -16,
    1.5,
    NaN,
    2 ** 53,
    null,
    undefined,
    {},
    '18446744073709551616',
  ]) {
    t.throws(
      () => Queue.fromState(memory, { ...validState(), descTable: v } as never),
      vqError('InvalidState', /descTable/),
      String(v),
    )
  }
  t.throws(
    () => Queue.fromState(memory, { ...validState(), usedRing: true } as never),
    vqError('InvalidState', /usedRing/),
  )
  // Any u64 decimal string is decoded; then the crate judges the alignment (the avail ring needs 2).
  t.throws(
    () => Queue.fromState(memory, { ...validState(), availRing: '18446744073709551615' }),
    vqError('InvalidAvailRingAlign'),
  )
  const ok = Queue.fromState(memory, { ...validState(), availRing: '18446744073709551614' })
  t.is(ok.state().availRing, '18446744073709551614')
})

test('fromState: wrong field types are TypeErrors naming the field', (t) => {
  const memory = GuestMemory.fromRanges([[0, 0x1000]])
  t.throws(() => Queue.fromState(memory, null as never), argTypeError('state'))
  t.throws(() => Queue.fromState(memory, 'state' as never), argTypeError('state'))
  t.throws(() => Queue.fromState(memory, { ...validState(), maxSize: '16' } as never), argTypeError('state.maxSize'))
  t.throws(
    () => Queue.fromState(memory, { ...validState(), nextAvail: undefined } as never),
    argTypeError('state.nextAvail'),
  )
  t.throws(() => Queue.fromState(memory, { ...validState(), ready: 1 } as never), argTypeError('state.ready'))
  t.throws(
    () => Queue.fromState(memory, { ...validState(), eventIdxEnabled: 'true' } as never),
    argTypeError('state.eventIdxEnabled'),
  )
  t.throws(() => Queue.fromState(memory, { ...validState(), nextUsed: 70000 }), argRangeError('state.nextUsed'))
  t.throws(() => Queue.fromState(memory, { ...validState(), size: 1.5 }), argRangeError('state.size'))
  t.throws(() => Queue.fromState({} as never, validState()), argTypeError('memory'))
})

// ---- snapshot and restore in the middle of a stream ----

interface Step {
  head: number
  usedIdx: number
  notify: boolean
}

const CHAINS = 50
const SNAPSHOT_AFTER = 7

/** A guest that publishes CHAINS chains in rounds and moves used_event around. */
function world() {
  const memory = GuestMemory.fromRanges([[0, 0x100000]])
  return makeRig({ size: 64, eventIdx: true, memory })
}

function publish(rig: ReturnType<typeof world>, round: number): void {
  rig.driver.setUsedEvent((round * 3 + 1) & 0xffff)
  for (let i = 0; i < 10; i++) {
    const n = 1 + ((round + i) % 3)
    const buffers = Array.from({ length: n }, (_, j) => ({
      addr: 0x80000 + 0x100 * (i * 3 + j),
      len: 16,
      writable: j === n - 1,
    }))
    rig.driver.addChain(buffers, { indirect: (round + i) % 4 === 0 })
  }
}

function serve(guard: import('..').QueueGuard, chain: import('..').DescriptorChain, steps: Step[]): void {
  const w = chain.writer()
  w.write(Buffer.from([chain.headIndex, steps.length]))
  guard.addUsed(chain.headIndex, w.bytesWritten())
  steps.push({ head: chain.headIndex, usedIdx: guard.usedIdx(), notify: guard.needsNotification() })
}

test('snapshot mid-stream (with prefetched chains pending), JSON, restore, continue: same as uninterrupted', (t) => {
  const a = world()
  const b = world()
  const stepsA: Step[] = []
  const stepsB: Step[] = []
  const usedA: Array<[number, number]> = []
  const usedB: Array<[number, number]> = []

  let guardB = b.guard
  let queueB = b.queue
  let restored = false
  for (let round = 0; stepsA.length < CHAINS; round++) {
    publish(a, round)
    publish(b, round)
    for (const chain of a.guard.iter()) serve(a.guard, chain, stepsA)
    for (const chain of guardB.iter()) {
      serve(guardB, chain, stepsB)
      if (round === 1 && stepsB.length === 10 + SNAPSHOT_AFTER) {
        // Chains of this round are still prefetched in the guard: state() must not count them.
        const snapshot = JSON.stringify(queueB.state())
        t.is((JSON.parse(snapshot) as QueueState).nextAvail, stepsB.length)
        queueB = Queue.fromState(b.memory, JSON.parse(snapshot) as QueueState)
        guardB = queueB.lockWithMemory()
        restored = true
        break
      }
    }
    // After a restore, the rest of this round is served by the new queue.
    for (const chain of guardB.iter()) serve(guardB, chain, stepsB)
    for (const u of a.driver.popAllUsed()) usedA.push([u.head, u.len])
    for (const u of b.driver.popAllUsed()) usedB.push([u.head, u.len])
  }
  t.true(restored)
  t.is(stepsA.length, CHAINS)
  t.deepEqual(stepsB, stepsA)
  t.deepEqual(usedB, usedA)
  t.true(stepsA.some((s) => s.notify) && stepsA.some((s) => !s.notify), 'the run exercises both answers')
  t.deepEqual(queueB.state(), a.queue.state())
  t.deepEqual(b.memory.read(0, 0x100000), a.memory.read(0, 0x100000), 'identical guest memory')
})

test('a restored queue on fresh memory works with a freshly configured driver', (t) => {
  const memory = GuestMemory.fromRanges([[0, 0x100000]])
  const { queue, guard, driver } = makeRig({ size: 8, memory })
  driver.addChain([{ addr: 0x80000, len: 4 }])
  guard.addUsed(guard.popDescriptorChain()!.headIndex, 4)
  guard.release()
  const restored = Queue.fromState(memory, queue.state())
  const g = restored.lockWithMemory()
  t.true(g.isValid())
  const head = driver.addChain([{ addr: 0x80000, len: 4 }])
  t.is(g.popDescriptorChain()!.headIndex, head)
  t.is(g.nextAvail(), 2)
  configure(g, splitQueueLayout(0x1000, 8))
  t.true(g.isValid())
})
