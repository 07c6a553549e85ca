// QueueGuard popping: popDescriptorChain, iter(), ring positions, and the invisibility of prefetching.
import test from 'ava'

import { addSimpleChains, argRangeError, argTypeError, drainHeads, makeRig, vqError } from './helpers/queue-setup'

test('popDescriptorChain: chains in avail order, then null', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  t.is(guard.popDescriptorChain(), null, 'empty ring')
  const heads = addSimpleChains(driver, 3)
  t.deepEqual(drainHeads(guard), heads)
  t.is(guard.popDescriptorChain(), null)
  t.is(guard.nextAvail(), 3)
  const more = addSimpleChains(driver, 2)
  t.deepEqual(drainHeads(guard), more)
  t.is(guard.nextAvail(), 5)
})

test('popDescriptorChain/iter: QueueNotReady when not ready or the avail ring is at 0', (t) => {
  const { guard, driver } = makeRig({ size: 8, notReady: true })
  addSimpleChains(driver, 1)
  t.throws(() => guard.popDescriptorChain(), vqError('QueueNotReady'))
  t.throws(() => guard.iter(), vqError('QueueNotReady'))
  guard.setReady(true)
  const saved = driver.availRing
  guard.setAvailRingAddress(0)
  t.throws(() => guard.popDescriptorChain(), vqError('QueueNotReady'))
  guard.setAvailRingAddress(saved)
  t.is(guard.popDescriptorChain()!.headIndex, 0)
})

test('popDescriptorChain/iter: InvalidAvailRingIndex when avail idx runs more than size ahead', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  driver.setAvailIdx(9)
  t.throws(() => guard.popDescriptorChain(), vqError('InvalidAvailRingIndex'))
  t.throws(() => guard.iter(), vqError('InvalidAvailRingIndex'))
  t.is(guard.nextAvail(), 0)
  // Exactly size ahead is allowed (every avail entry is head 0 here).
  driver.setAvailIdx(8)
  t.is(drainHeads(guard).length, 8)
  // Behind next_avail by one is 65535 ahead.
  driver.setAvailIdx(7)
  t.throws(() => guard.popDescriptorChain(), vqError('InvalidAvailRingIndex'))
})

test('popDescriptorChain: GuestMemory when the avail ring is outside memory', (t) => {
  const { guard } = makeRig({ size: 8 })
  guard.setAvailRingAddress(0x200000)
  t.throws(() => guard.popDescriptorChain(), vqError('GuestMemory'))
  t.throws(() => guard.iter(), vqError('GuestMemory'))
})

test('goToPreviousPosition: the last chain is popped again', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const heads = addSimpleChains(driver, 3)
  t.is(guard.popDescriptorChain()!.headIndex, heads[0])
  t.is(guard.popDescriptorChain()!.headIndex, heads[1])
  guard.goToPreviousPosition()
  t.is(guard.nextAvail(), 1)
  t.deepEqual(drainHeads(guard), [heads[1], heads[2]])
  guard.goToPreviousPosition()
  guard.goToPreviousPosition()
  t.deepEqual(drainHeads(guard), [heads[1], heads[2]])
})

test('AvailIter.goToPreviousPosition: the last chain is yielded again by the same iterator', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const heads = addSimpleChains(driver, 2)
  const it = guard.iter()
  const seen: number[] = []
  let retried = false
  for (let r = it.next(); !r.done; r = it.next()) {
    seen.push(r.value.headIndex)
    if (!retried) {
      retried = true
      it.goToPreviousPosition()
    }
  }
  t.deepEqual(seen, [heads[0], heads[0], heads[1]])
  t.true(it.next().done)
})

test('nextAvail/nextUsed and their setters', (t) => {
  const { queue, guard, driver } = makeRig({ size: 8 })
  const heads = addSimpleChains(driver, 4)
  guard.setNextAvail(2)
  t.is(guard.nextAvail(), 2)
  t.deepEqual(drainHeads(guard), heads.slice(2))
  guard.setNextUsed(0xfff0)
  t.is(guard.nextUsed(), 0xfff0)
  t.like(queue.state(), { nextAvail: 4, nextUsed: 0xfff0 })
  guard.addUsed(heads[0]!, 0)
  t.is(guard.usedIdx(), 0xfff1)
  guard.setNextAvail(0xffff)
  t.is(guard.nextAvail(), 0xffff)
  t.throws(() => guard.setNextAvail(0x10000), argRangeError('nextAvail'))
  t.throws(() => guard.setNextUsed(-1), argRangeError('nextUsed'))
  t.throws(() => guard.setNextAvail('1' as never), argTypeError('nextAvail'))
  t.throws(() => guard.setNextUsed(1.5), argRangeError('nextUsed'))
  t.is(guard.nextAvail(), 0xffff)
})

test('setNextAvail drops prefetched chains: popping resumes at the new position', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const heads = addSimpleChains(driver, 5)
  t.is(guard.popDescriptorChain()!.headIndex, heads[0])
  guard.setNextAvail(3)
  t.deepEqual(drainHeads(guard), heads.slice(3))
})

test('iter() reads the avail idx once: chains published during the loop wait for the next iter()', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const first = addSimpleChains(driver, 2)
  const seen: number[] = []
  let added: number[] = []
  for (const chain of guard.iter()) {
    seen.push(chain.headIndex)
    if (added.length === 0) added = [driver.addChain([{ addr: 0x90000, len: 8 }])]
    guard.addUsed(chain.headIndex, 0)
  }
  t.deepEqual(seen, first)
  t.deepEqual(
    [...guard.iter()].map((c) => c.headIndex),
    added,
  )
  t.deepEqual([...guard.iter()], [])
})

test('iter() after popDescriptorChain counts prefetched chains and newly published ones', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const heads = addSimpleChains(driver, 3)
  t.is(guard.popDescriptorChain()!.headIndex, heads[0])
  heads.push(driver.addChain([{ addr: 0x90000, len: 8 }]))
  t.deepEqual(
    [...guard.iter()].map((c) => c.headIndex),
    heads.slice(1),
  )
  t.is(guard.nextAvail(), 4)
})

test('interleaving an iterator with popDescriptorChain neither loses nor repeats chains', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const heads = addSimpleChains(driver, 2)
  const it = guard.iter()
  heads.push(...addSimpleChains(driver, 2))
  const order: number[] = [guard.popDescriptorChain()!.headIndex]
  let fromIter = 0
  for (let r = it.next(); !r.done; r = it.next()) {
    order.push(r.value.headIndex)
    fromIter++
  }
  t.true(fromIter >= 1 && fromIter <= 2, 'the iterator yields at most the two chains available at iter() time')
  order.push(...drainHeads(guard))
  t.deepEqual(order, heads)
})

test('breaking out of for...of: nextAvail() and state() count only consumed chains', (t) => {
  const { queue, guard, driver } = makeRig({ size: 16 })
  const heads = addSimpleChains(driver, 10)
  let n = 0
  for (const chain of guard.iter()) {
    t.is(chain.headIndex, heads[n])
    if (++n === 3) break
  }
  t.is(guard.nextAvail(), 3)
  t.is(queue.state().nextAvail, 3)
  t.is(guard.availIdx(), 10)
  // The unconsumed chains are popped again, in order.
  t.deepEqual(
    [...guard.iter()].map((c) => c.headIndex),
    heads.slice(3),
  )
})

test('settling before anything that observes next_avail: enable, disable, setters, release', (t) => {
  const { queue, guard, driver } = makeRig({ size: 16, eventIdx: true })
  addSimpleChains(driver, 6)
  guard.popDescriptorChain()
  guard.disableNotification()
  t.is(queue.state().nextAvail, 1)
  guard.popDescriptorChain()
  guard.setEventIdx(true)
  t.is(queue.state().nextAvail, 2)
  guard.popDescriptorChain()
  guard.release()
  t.is(queue.state().nextAvail, 3)
  const again = queue.lockWithMemory()
  t.is(again.nextAvail(), 3)
  t.is(drainHeads(again).length, 3)
})

test('a queue of size 1 and a wrapping avail index', (t) => {
  const { guard, driver } = makeRig({ size: 1 })
  for (let i = 0; i < 5; i++) {
    const h = driver.addChain([{ addr: 0x90000, len: 4 }])
    const c = guard.popDescriptorChain()!
    t.is(c.headIndex, h)
    guard.addUsed(h, 4)
    t.deepEqual(driver.popUsed(), { head: h, len: 4, token: undefined })
  }
  t.is(guard.nextAvail(), 5)
  // Near the u16 wrap, with raw avail entries (slots 0xfffe % 4 = 2, 3, then 0).
  const w = makeRig({ size: 4 })
  w.guard.setNextAvail(0xfffe)
  w.guard.setNextUsed(0xfffe)
  w.driver.setAvailIdx(0xfffe)
  t.is(w.guard.popDescriptorChain(), null)
  w.driver.writeAvailEntry(2, 1)
  w.driver.writeAvailEntry(3, 2)
  w.driver.writeAvailEntry(0, 3)
  w.driver.setAvailIdx(1)
  t.deepEqual(drainHeads(w.guard), [1, 2, 3])
  t.is(w.guard.nextAvail(), 1)
})
