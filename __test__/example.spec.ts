// The crate's QueueGuard example (virtio-queue 0.4, `Queue::lock_with_memory`),
// ported line for line, plus `for...of` and `using` variants.
import test from 'ava'

import { GuestMemory, Queue, type QueueGuard, VirtioQueueError } from '..'
import { vqError } from './helpers/queue-setup'

interface Outcome {
  heads: number[]
  notifications: boolean[]
  rounds: number
}

/** Memory and queue exactly as in the crate's example. */
function setup(): { m: GuestMemory; queue: Queue } {
  const m = GuestMemory.fromRanges([[0, 0x10000]])
  const queue = new Queue(m, 1024)
  return { m, queue }
}

/** The example's configuration of the locked queue. */
function configure(q: QueueGuard): void {
  q.setSize(8)
  q.setDescTableAddress(0x1000)
  q.setAvailRingAddress(0x2000)
  q.setUsedRingAddress(0x3000)
  q.setEventIdx(true)
  q.setReady(true)
}

/** What the guest memory must hold after the example processed 3 chains (size 8, used ring at 0x3000). */
function assertUsedRing(t: import('ava').ExecutionContext, m: GuestMemory): void {
  t.is(m.readU16(0x3002), 3, 'used idx published')
  for (let i = 0; i < 3; i++) {
    t.is(m.readU32(0x3004 + 8 * i), 0, `used[${i}].id is head 0`)
    t.is(m.readU32(0x3008 + 8 * i), 0x100, `used[${i}].len`)
  }
  t.is(m.readU32(0x3004 + 8 * 3), 0, 'nothing beyond the third element')
  // enableNotification with event idx writes avail_event = next_avail after the ring.
  t.is(m.readU16(0x3000 + 4 + 8 * 8), 3, 'avail_event')
  // With event idx, disableNotification leaves the used flags alone.
  t.is(m.readU16(0x3000), 0, 'used flags')
}

// used_event (0x2000 + 4 + 2*8) is 0: the crate's `used - used_event - 1 < used - old`
// asks for a notification after the first used element only.
const EXPECTED_NOTIFICATIONS = [true, false, false]

test('the crate example, line for line', (t) => {
  const { m, queue } = setup()
  const q = queue.lockWithMemory()

  configure(q)
  t.true(q.isValid())

  // The driver makes three chains available (every descriptor and avail entry is 0).
  m.writeU16(0x2002, 3)

  const out: Outcome = { heads: [], notifications: [], rounds: 0 }
  for (;;) {
    out.rounds++
    q.disableNotification()

    let r: IteratorResult<import('..').DescriptorChain, undefined>
    while (!(r = q.iter().next()).done) {
      const chain = r.value
      out.heads.push(chain.headIndex)
      q.addUsed(chain.headIndex, 0x100)
      out.notifications.push(q.needsNotification())
    }

    if (!q.enableNotification()) {
      break
    }
  }

  t.deepEqual(out.heads, [0, 0, 0], '3 chains processed')
  t.deepEqual(out.notifications, EXPECTED_NOTIFICATIONS)
  t.is(out.rounds, 1)
  t.is(q.nextAvail(), 3)
  t.is(q.nextUsed(), 3)
  t.is(q.usedIdx(), 3)
  assertUsedRing(t, m)

  q.reset()
  t.false(q.ready())
  t.false(q.isValid())
})

test('the example with for...of over iter()', (t) => {
  const { m, queue } = setup()
  const q = queue.lockWithMemory()
  configure(q)
  m.writeU16(0x2002, 3)

  const heads: number[] = []
  const notifications: boolean[] = []
  let rounds = 0
  do {
    rounds++
    q.disableNotification()
    for (const chain of q.iter()) {
      t.true(chain.isComplete)
      t.is(chain.length, 1)
      heads.push(chain.headIndex)
      q.addUsed(chain.headIndex, 0x100)
      notifications.push(q.needsNotification())
    }
  } while (q.enableNotification())

  t.deepEqual(heads, [0, 0, 0])
  t.deepEqual(notifications, EXPECTED_NOTIFICATIONS)
  t.is(rounds, 1)
  assertUsedRing(t, m)
  q.reset()
  t.false(q.ready())
})

test('enableNotification returning true runs the loop again for chains added meanwhile', (t) => {
  const { m, queue } = setup()
  const q = queue.lockWithMemory()
  configure(q)
  m.writeU16(0x2002, 3)

  const heads: number[] = []
  let rounds = 0
  do {
    rounds++
    q.disableNotification()
    for (const chain of q.iter()) {
      heads.push(chain.headIndex)
      q.addUsed(chain.headIndex, 0x100)
    }
    // The driver publishes two more chains after the device drained the ring once.
    if (rounds === 1) m.writeU16(0x2002, 5)
  } while (q.enableNotification())

  t.is(rounds, 2)
  t.is(heads.length, 5)
  t.is(m.readU16(0x3002), 5)
  t.is(m.readU16(0x3000 + 4 + 8 * 8), 5, 'avail_event follows next_avail')
})

test('a `using` guard is released at the end of the block', (t) => {
  const { m, queue } = setup()
  let escaped: QueueGuard | undefined
  {
    using q = queue.lockWithMemory()
    escaped = q
    configure(q)
    m.writeU16(0x2002, 3)
    for (const chain of q.iter()) q.addUsed(chain.headIndex, 0x100)
    t.false(q.released)
    t.throws(() => queue.lockWithMemory(), vqError('QueueLocked'))
  }
  t.true(escaped.released)
  t.throws(() => escaped!.size(), vqError('GuardReleased'))
  t.throws(() => escaped!.iter(), vqError('GuardReleased'))

  // The queue can be locked again, and kept its state.
  const again = queue.lockWithMemory()
  t.true(again.isValid())
  t.is(again.nextAvail(), 3)
  t.is(again.nextUsed(), 3)
  t.is(m.readU16(0x3002), 3)
  again.release()
})

test('a `using` guard is released when the block throws', (t) => {
  const { queue } = setup()
  let escaped: QueueGuard | undefined
  const err = t.throws(() => {
    using q = queue.lockWithMemory()
    escaped = q
    q.setSize(3)
  }, vqError('InvalidSize'))
  t.true(err instanceof VirtioQueueError)
  t.true(escaped!.released)
  t.notThrows(() => queue.lockWithMemory().release())
})

test('release() hands back chains the iterator prefetched but did not yield', (t) => {
  const { m, queue } = setup()
  {
    using q = queue.lockWithMemory()
    configure(q)
    m.writeU16(0x2002, 3)
    const it = q.iter()
    t.false(it.next().done)
  }
  t.is(queue.state().nextAvail, 1)
  using q = queue.lockWithMemory()
  t.is([...q.iter()].length, 2)
})
