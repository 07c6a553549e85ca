// QueueGuard ring indices, used entries and notification suppression (flags and event idx).
import test from 'ava'

import { DriverConstants, vringNeedEvent } from '../driver'
import { addSimpleChains, argRangeError, argTypeError, makeRig, vqError } from './helpers/queue-setup'

const ORDERS = ['relaxed', 'acquire', 'seqcst'] as const

test('availIdx/usedIdx read the ring indices with every ordering', (t) => {
  const { guard, driver, memory, layout } = makeRig({ size: 8 })
  addSimpleChains(driver, 3)
  memory.writeU16(layout.usedRing + 2, 0x1234)
  for (const order of ORDERS) {
    t.is(guard.availIdx(order), 3, order)
    t.is(guard.usedIdx(order), 0x1234, order)
  }
  t.is(guard.availIdx(), 3, 'default ordering')
  t.is(guard.usedIdx(), 0x1234)
  t.throws(() => guard.availIdx('release' as never), argTypeError('order'))
  t.throws(() => guard.usedIdx('SeqCst' as never), argTypeError('order'))
  t.throws(() => guard.usedIdx(2 as never), argTypeError('order'))
  t.throws(() => guard.availIdx('constructor' as never), argTypeError('order'))
})

test('availIdx/usedIdx outside guest memory: GuestMemory', (t) => {
  const { guard } = makeRig({ size: 8 })
  guard.setAvailRingAddress(0x200000)
  guard.setUsedRingAddress(0x300000)
  t.throws(() => guard.availIdx(), vqError('GuestMemory'))
  t.throws(() => guard.usedIdx(), vqError('GuestMemory'))
  t.throws(() => guard.addUsed(0, 1), vqError('GuestMemory'))
})

test('addUsed writes id/len at used_ring + 4 + 8*(nextUsed % size) and publishes used idx', (t) => {
  const { guard, driver, memory, layout } = makeRig({ size: 4 })
  const heads = addSimpleChains(driver, 3)
  for (const h of heads) {
    t.is(guard.popDescriptorChain()!.headIndex, h)
    guard.addUsed(h, 0x10 + h)
  }
  t.is(guard.nextUsed(), 3)
  t.is(guard.usedIdx(), 3)
  t.is(memory.readU16(layout.usedRing + 2), 3)
  heads.forEach((h, slot) => {
    t.is(memory.readU32(layout.usedRing + 4 + 8 * slot), h)
    t.is(memory.readU32(layout.usedRing + 8 + 8 * slot), 0x10 + h)
  })
  t.deepEqual(
    driver.popAllUsed().map((u) => [u.head, u.len, u.token]),
    heads.map((h, i) => [h, 0x10 + h, `c${i}`]),
  )
  // The slot wraps with the queue size.
  guard.setNextUsed(0xffff)
  guard.addUsed(2, 0xffffffff)
  t.is(memory.readU32(layout.usedRing + 4 + 8 * 3), 2)
  t.is(memory.readU32(layout.usedRing + 8 + 8 * 3), 0xffffffff)
  t.is(guard.usedIdx(), 0)
  t.is(guard.nextUsed(), 0)
})

test('addUsed: head ≥ size is InvalidDescriptorIndex and writes nothing; arguments are checked', (t) => {
  const { guard, memory, layout } = makeRig({ size: 8, maxSize: 16 })
  t.throws(() => guard.addUsed(8, 1), vqError('InvalidDescriptorIndex'))
  t.throws(() => guard.addUsed(15, 1), vqError('InvalidDescriptorIndex'))
  t.is(guard.nextUsed(), 0)
  t.is(memory.readU16(layout.usedRing + 2), 0)
  t.is(memory.readU64(layout.usedRing + 4), 0n)
  t.throws(() => guard.addUsed('x' as never, 1), argTypeError('headIndex'))
  t.throws(() => guard.addUsed(0, '1' as never), argTypeError('len'))
  t.throws(() => guard.addUsed(0.5, 1), argRangeError('headIndex'))
  t.throws(() => guard.addUsed(0, -1), argRangeError('len'))
  t.throws(() => guard.addUsed(0, 2 ** 32), argRangeError('len'))
  t.is(guard.nextUsed(), 0)
})

test('notifications without event idx: used flags NO_NOTIFY, needsNotification always true', (t) => {
  const { guard, driver, memory, layout } = makeRig({ size: 8 })
  const flags = () => memory.readU16(layout.usedRing)
  guard.disableNotification()
  t.is(flags(), DriverConstants.VRING_USED_F_NO_NOTIFY)
  addSimpleChains(driver, 1)
  t.false(driver.kick(), 'the driver sees the suppression')
  t.true(guard.enableNotification(), 'a chain was made available meanwhile')
  t.is(flags(), 0)
  guard.addUsed(guard.popDescriptorChain()!.headIndex, 0)
  t.false(guard.enableNotification(), 'nothing pending')
  t.is(memory.readU16(layout.usedRing + 4 + 8 * 8), 0, 'avail_event untouched')
  t.true(guard.needsNotification())
  t.true(guard.needsNotification(), 'even with nothing added since')
  // With event idx off the used_event field is ignored.
  memory.writeU16(driver.usedEventAddr, 100)
  guard.addUsed(0, 0)
  t.true(guard.needsNotification())
})

test('notifications with event idx: avail_event = nextAvail, flags untouched', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8, eventIdx: true })
  const availEvent = () => memory.readU16(driver.availEventAddr)
  memory.writeU16(driver.availEventAddr, 0x55)
  guard.disableNotification()
  t.is(availEvent(), 0x55, 'disable is a no-op with event idx')
  t.is(memory.readU16(driver.usedRing), 0)

  addSimpleChains(driver, 3)
  t.true(guard.enableNotification(), 'chains pending')
  t.is(availEvent(), 0)
  for (const c of guard.iter()) guard.addUsed(c.headIndex, 1)
  t.false(guard.enableNotification())
  t.is(availEvent(), 3)
  t.is(memory.readU16(driver.usedRing), 0)
  addSimpleChains(driver, 1)
  t.true(driver.kick(), 'the driver kicks: avail idx passed avail_event')
})

test('enableNotification counts chains prefetched but not yet handed out as pending', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8, eventIdx: true })
  addSimpleChains(driver, 3)
  t.not(guard.popDescriptorChain(), null)
  t.true(guard.enableNotification())
  t.is(memory.readU16(driver.availEventAddr), 1, 'avail_event is the consumed position')
  t.is(guard.nextAvail(), 1)
})

/** Adds `n` used entries and returns the device's notification decision. */
function useAndAsk(guard: import('..').QueueGuard, n: number): boolean {
  for (let i = 0; i < n; i++) guard.addUsed(0, 0)
  return guard.needsNotification()
}

test('needsNotification with event idx follows used_event (vring_need_event)', (t) => {
  const { guard, driver } = makeRig({ size: 8, eventIdx: true })
  // used_event 0: notify when the used idx passes 0 -> 1.
  t.true(useAndAsk(guard, 1))
  t.false(useAndAsk(guard, 1), '1 -> 2 does not cross 0')
  driver.setUsedEvent(3)
  t.false(useAndAsk(guard, 1), '2 -> 3: not yet')
  t.true(useAndAsk(guard, 1), '3 -> 4 crosses used_event 3')
  driver.setUsedEvent(5)
  t.true(useAndAsk(guard, 3), '4 -> 7 crosses 5 within a batch')
  t.false(guard.needsNotification(), 'nothing added since the last call')
  driver.setUsedEvent(6)
  t.false(useAndAsk(guard, 1), 'used_event already passed')
  t.is(guard.nextUsed(), 8)
})

test('needsNotification with event idx wraps around u16', (t) => {
  // Expected: the spec's (u16)(new - used_event - 1) < (u16)(new - old), worked out by hand.
  const cases: Array<[start: number, added: number, usedEvent: number, notify: boolean]> = [
    [0xfffe, 2, 0xffff, true],
    [0xfffe, 2, 0xfffd, false],
    [0xfffe, 3, 0, true],
    [0xffff, 1, 0xffff, true],
    [0xffff, 1, 0xfffe, false],
    [0xfff0, 0x20, 0x5, true],
    [0xfff0, 0x20, 0x10, false],
  ]
  for (const [start, added, usedEvent, notify] of cases) {
    const { guard, driver } = makeRig({ size: 8, eventIdx: true })
    guard.setNextUsed(start)
    driver.setUsedEvent(usedEvent)
    t.is(vringNeedEvent(usedEvent, (start + added) & 0xffff, start), notify, 'the driver simulator agrees')
    t.is(useAndAsk(guard, added), notify, `${start} +${added}, used_event ${usedEvent}`)
    t.is(guard.nextUsed(), (start + added) & 0xffff)
  }
})

test('needsNotification agrees with the driver simulator through a run of chains', (t) => {
  const { guard, driver } = makeRig({ size: 16, eventIdx: true })
  let old = 0
  for (let round = 0; round < 6; round++) {
    driver.setUsedEvent((round * 5) & 0xffff)
    addSimpleChains(driver, 3)
    for (const c of guard.iter()) guard.addUsed(c.headIndex, 0)
    const now = guard.nextUsed()
    t.is(guard.needsNotification(), driver.interruptNeeded(old, now), `round ${round}`)
    old = now
    driver.popAllUsed()
  }
})
