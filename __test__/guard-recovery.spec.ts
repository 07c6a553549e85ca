// A guard that is never released (an exception between lock and release) must not lock
// its queue for good: queue.forceUnlock() takes the lock back, and a later
// lockWithMemory() takes over from a guard that was garbage-collected. Either way the
// chains it read ahead but never handed out go back to the ring.
import test from 'ava'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { GuestMemory, Queue, type QueueGuard, UsedBatch } from '..'
import { addSimpleChains, drainHeads, makeRig, vqError } from './helpers/queue-setup'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

test('forceUnlock(): the old guard throws GuardReleased, its read-ahead chains go to the next guard', (t) => {
  const r = makeRig({ size: 16 })
  addSimpleChains(r.driver, 6)
  const old = r.guard
  t.is(old.popDescriptorChain()!.headIndex, 0)
  t.throws(() => r.queue.lockWithMemory(), vqError('QueueLocked', /forceUnlock/))
  t.true(r.queue.forceUnlock())
  t.true(old.released)
  t.throws(() => old.popDescriptorChain(), vqError('GuardReleased'))
  t.throws(() => old.addUsed(0, 0), vqError('GuardReleased'))
  t.throws(() => old.setReady(false), vqError('GuardReleased'))
  const g = r.queue.lockWithMemory()
  t.is(g.nextAvail(), 1)
  t.deepEqual(drainHeads(g), [1, 2, 3, 4, 5])
  // The old guard's release() is a no-op now: it must not unlock the new holder.
  old.release()
  t.false(g.released)
  t.throws(() => r.queue.lockWithMemory(), vqError('QueueLocked'))
  g.release()
  t.false(r.queue.forceUnlock(), 'nothing held the lock')
})

test('forceUnlock() between an exception and release: the queue keeps working', (t) => {
  const r = makeRig({ size: 16 })
  addSimpleChains(r.driver, 3)
  r.guard.release()
  const serve = () => {
    const g = r.queue.lockWithMemory()
    g.popDescriptorChain()
    throw new Error('device bug before release()')
  }
  t.throws(serve, { message: /device bug/ })
  r.queue.forceUnlock()
  const g = r.queue.lockWithMemory()
  t.deepEqual(drainHeads(g), [1, 2])
  g.addUsed(0, 0)
  t.is(g.usedIdx(), 1)
})

/** Locks `queue`, pops one chain and drops the guard without releasing it. */
function lockAndLeak(queue: Queue): number {
  const g: QueueGuard = queue.lockWithMemory()
  return g.popDescriptorChain()!.headIndex
}

test('lockWithMemory() takes over from a guard that was collected without release()', async (t) => {
  const r = makeRig({ size: 16 })
  addSimpleChains(r.driver, 5)
  r.guard.release()
  t.is(lockAndLeak(r.queue), 0)
  let g: QueueGuard | null = null
  // A WeakRef's target survives the job that created it: collect from later turns.
  for (let i = 0; i < 20 && g === null; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
    try {
      g = r.queue.lockWithMemory()
    } catch (e) {
      t.is((e as { code?: string }).code, 'QueueLocked')
    }
  }
  if (g === null) return t.fail('the leaked guard was never collected')
  t.is(g.nextAvail(), 1, 'the leaked read-ahead went back to the ring')
  t.deepEqual(drainHeads(g), [1, 2, 3, 4])
})

test('addUsed/addUsedBatch refuse a queue that is not ready (QueueNotReady) and write nothing', (t) => {
  const m = GuestMemory.fromRanges([[0, 0x10000]])
  m.write(0, new Uint8Array(16).fill(0xee))
  const g = new Queue(m, 16).lockWithMemory()
  t.throws(() => g.addUsed(0, 16), vqError('QueueNotReady'))
  const used = new UsedBatch()
  used.push(0, 16)
  t.throws(() => g.addUsedBatch(used), vqError('QueueNotReady'))
  t.deepEqual([...m.read(0, 16)], new Array(16).fill(0xee), 'nothing written at guest address 0')
  t.is(g.nextUsed(), 0)
  // Argument mistakes are still reported as such.
  t.throws(() => g.addUsed(-1, 0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => g.addUsed('0' as never, 0), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  // Ready: accepted. reset() and setReady(false) make it not ready again.
  g.setUsedRingAddress(0x3000)
  g.setReady(true)
  g.addUsed(0, 16)
  t.is(g.nextUsed(), 1)
  g.setReady(false)
  t.throws(() => g.addUsed(0, 16), vqError('QueueNotReady'))
  g.setReady(true)
  g.reset()
  t.throws(() => g.addUsed(0, 16), vqError('QueueNotReady'))
})

test('a queue restored ready (fromState) accepts addUsed; one restored not ready refuses it', (t) => {
  const r = makeRig({ size: 16 })
  const ready = Queue.fromState(r.memory, r.queue.state())
  r.guard.release()
  const g = ready.lockWithMemory()
  g.addUsed(0, 1)
  t.is(g.nextUsed(), 1)
  const notReady = Queue.fromState(r.memory, { ...ready.state(), ready: false })
  t.throws(() => notReady.lockWithMemory().addUsed(0, 1), vqError('QueueNotReady'))
})
