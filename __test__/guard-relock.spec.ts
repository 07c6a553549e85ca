// QueueGuard.relock(): a released guard takes its queue's lock again instead of a new guard
// being made, so a device that locks on every kick allocates nothing for it. It must obey
// the lock exactly as lockWithMemory() does, and give no access to chains another holder
// read ahead.
import test from 'ava'

import { addSimpleChains, drainHeads, makeRig, vqError } from './helpers/queue-setup'

test('relock() after release(): the same guard works again, from where the ring is', (t) => {
  const r = makeRig({ size: 16 })
  addSimpleChains(r.driver, 4)
  const g = r.guard
  t.is(g.popDescriptorChain()!.headIndex, 0)
  g.release()
  t.throws(() => g.popDescriptorChain(), vqError('GuardReleased'))
  t.is(g.relock(), g)
  t.false(g.released)
  // The chains read ahead before the release went back to the ring: none is lost or repeated.
  t.deepEqual(drainHeads(g), [1, 2, 3])
  t.is(g.relock(), g, 'a no-op while it holds the lock')
  t.throws(() => r.queue.lockWithMemory(), vqError('QueueLocked'))
  g.release()
})

test('relock() refuses while another guard holds the queue, and works after it is released', (t) => {
  const r = makeRig({ size: 16 })
  addSimpleChains(r.driver, 3)
  const g = r.guard
  g.release()
  const other = r.queue.lockWithMemory()
  t.is(other.popDescriptorChain()!.headIndex, 0)
  t.throws(() => g.relock(), vqError('QueueLocked', /not released/))
  t.true(g.released)
  t.false(other.released, 'the holder keeps its lock')
  other.release()
  g.relock()
  t.throws(() => other.popDescriptorChain(), vqError('GuardReleased'))
  t.deepEqual(drainHeads(g), [1, 2])
  g.release()
})

test('relock() after queue.forceUnlock() takes the lock back; the forced-out holder stays out', (t) => {
  const r = makeRig({ size: 16 })
  addSimpleChains(r.driver, 2)
  const g = r.guard
  t.true(r.queue.forceUnlock())
  const other = r.queue.lockWithMemory()
  other.release()
  g.relock()
  t.true(other.released)
  t.deepEqual(drainHeads(g), [0, 1])
})

test('relock() returns the one guard every time (what it allocates per kick: vhost-user-alloc.spec)', (t) => {
  const r = makeRig({ size: 16 })
  const g = r.guard
  g.release()
  const seen = new Set<object>()
  for (let i = 0; i < 1000; i++) {
    seen.add(g.relock())
    g.enableNotification()
    g.release()
  }
  t.deepEqual([...seen], [g])
})
