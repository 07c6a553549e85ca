// Callers whose objects lie or run code at the wrong moment: getters that lie about a
// buffer, patched prototypes, accessors that release or pop from the guard while it reads
// its arguments, a Proxy memory whose trap throws in the middle of Queue.fromState.
import test from 'ava'

import { ChainBatch, GuestMemory, Queue, type QueueGuard, UsedBatch, VirtioQueueError } from '..'
import { addSimpleChains, argTypeError, makeRig, type Rig, vqError } from './helpers/queue-setup'

// ES2024 buffers (Node 20 has them; the test project's lib is older).
type Resizable = ArrayBuffer & { readonly resizable: boolean }
type GrowableShared = SharedArrayBuffer & { grow(size: number): void }
const resizable = (size: number): Resizable =>
  new (ArrayBuffer as unknown as new (n: number, o: object) => Resizable)(size, { maxByteLength: 2 * size })
const growableShared = (size: number): GrowableShared =>
  new (SharedArrayBuffer as unknown as new (n: number, o: object) => GrowableShared)(size, { maxByteLength: 2 * size })

test('fromBuffers: a view of a resizable ArrayBuffer with an own `buffer` property is still refused', (t) => {
  const view = new Uint8Array(resizable(0x1000))
  Object.defineProperty(view, 'buffer', { value: new ArrayBuffer(0x1000) })
  t.throws(() => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: view }]), vqError('InvalidRegion'))
  const dv = new DataView(resizable(0x1000))
  Object.defineProperty(dv, 'buffer', { value: new ArrayBuffer(0x1000) })
  t.throws(() => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: dv }]), vqError('InvalidRegion'))
})

test('fromBuffers: a patched ArrayBuffer.prototype.resizable does not hide a resizable buffer', (t) => {
  const saved = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')!
  Object.defineProperty(ArrayBuffer.prototype, 'resizable', { get: () => false, configurable: true })
  try {
    const rab = resizable(0x1000)
    t.is(rab.resizable, false, 'the patch is in place')
    t.throws(() => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: rab }]), vqError('InvalidRegion'))
    t.throws(
      () => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new Uint8Array(rab) }]),
      vqError('InvalidRegion'),
    )
  } finally {
    Object.defineProperty(ArrayBuffer.prototype, 'resizable', saved)
  }
})

test('fromBuffers: a resizable buffer with a null prototype, behind a view, is refused', (t) => {
  const rab = resizable(0x1000)
  const view = new Uint8Array(rab)
  Object.setPrototypeOf(rab, null)
  t.throws(() => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: view }]), vqError('InvalidRegion'))
  // Growable SharedArrayBuffers can only grow, so a fixed view of them stays valid.
  const gsab = growableShared(0x1000)
  const m = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: gsab }])
  gsab.grow(0x2000)
  m.writeU32(0xffc, 7)
  t.is(m.size, 0x1000)
  t.is(new DataView(gsab).getUint32(0xffc, true), 7)
})

test('fromBuffers: JavaScript and the queue see the same bytes whatever `buffer`, `byteOffset` or `byteLength` claim', (t) => {
  const real = new Uint8Array(0x2000).subarray(0x1000)
  Object.defineProperty(real, 'buffer', { value: new ArrayBuffer(0x2000) })
  Object.defineProperty(real, 'byteOffset', { value: 8 })
  Object.defineProperty(real, 'byteLength', { value: 0x800 })
  const m = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: real }])
  t.is(m.size, 0x1000)
  m.writeU8(0, 7)
  m.writeU8(0xfff, 9)
  t.is(real[0], 7, 'JS writes land in the memory the queue uses')
  t.is(real[0xfff], 9)
})

test('memory.write/readInto use the real length of a Uint8Array whose `length` getter lies', (t) => {
  class Liar extends Uint8Array {
    override get length(): number {
      return 8
    }
  }
  const m = GuestMemory.fromRanges([[0, 0x1000]])
  const bytes = new Liar(64).fill(0xab)
  // 64 real bytes do not fit 8 bytes before the end: refused, nothing written.
  t.throws(() => m.write(0xff8, bytes), { instanceOf: VirtioQueueError, code: 'InvalidGuestAddress' })
  t.is(m.readU8(0xff8), 0)
  m.write(0x100, bytes)
  t.deepEqual([...m.read(0x100, 65)], [...new Array(64).fill(0xab), 0])
  const target = new Liar(64)
  m.readInto(0x100, target)
  t.is(new Uint8Array(target.buffer)[63], 0xab, 'all 64 real bytes were filled')
  t.throws(() => m.readInto(0xff8, target), { instanceOf: VirtioQueueError, code: 'InvalidGuestAddress' })
})

/** A ring of `n` one-buffer chains, the guard holding it, and a log of every chain delivered. */
function offered(n: number): Rig & { delivered: number[] } {
  const r = makeRig({ size: 32 })
  addSimpleChains(r.driver, n)
  return { ...r, delivered: [] }
}

/**
 * A ring of 12 chains of 100 descriptors each (indirect tables), so one read-ahead of
 * popDescriptorChain() stops before the last chains (its window holds 1024 descriptors).
 */
function offeredLong(): Rig & { delivered: number[] } {
  const r = makeRig({ size: 128 })
  for (let i = 0; i < 12; i++) {
    const buffers = Array.from({ length: 100 }, (_, j) => ({ addr: 0x80000 + 0x100 * j, len: 16 }))
    r.driver.addChain(buffers, { indirect: true, token: `long${i}` })
  }
  return { ...r, delivered: [] }
}

function popBatch(g: QueueGuard, batch: ChainBatch, delivered: number[]): number {
  const n = g.popChains(batch)
  for (let i = 0; i < n; i++) delivered.push(batch.head(i))
  return n
}

function sorted(a: number[]): number[] {
  return [...a].sort((x, y) => x - y)
}

test('popChains: a `words` accessor that pops from the same guard delivers no chain twice', (t) => {
  const r = offeredLong()
  const g = r.guard
  t.not(g.popDescriptorChain(), null)
  r.delivered.push(0)
  const batch = new ChainBatch(4, 400)
  const words = batch.words
  Object.defineProperty(batch, 'words', {
    get() {
      const c = g.popDescriptorChain()
      if (c) r.delivered.push(c.headIndex)
      return words
    },
    configurable: true,
  })
  for (let rounds = 0; rounds < 20; rounds++) {
    if (popBatch(g, batch, r.delivered) === 0) break
  }
  for (let c = g.popDescriptorChain(); c; c = g.popDescriptorChain()) r.delivered.push(c.headIndex)
  t.deepEqual(sorted(r.delivered), [...Array(12).keys()], `delivered ${r.delivered}`)
})

test('popChains: accessors that release and relock the guard deliver every chain exactly once', (t) => {
  for (const key of ['words', 'maxChains'] as const) {
    const r = offeredLong()
    let g = r.guard
    t.not(g.popDescriptorChain(), null)
    r.delivered.push(0)
    const batch = new ChainBatch(4, 400)
    const real = batch[key]
    Object.defineProperty(batch, key, {
      get() {
        g.release()
        g = r.queue.lockWithMemory()
        const c = g.popDescriptorChain()
        if (c) r.delivered.push(c.headIndex)
        return real
      },
      configurable: true,
    })
    for (let rounds = 0; rounds < 20; rounds++) {
      const current = g
      try {
        if (popBatch(current, batch, r.delivered) === 0) break
      } catch (e) {
        t.is((e as VirtioQueueError).code, 'GuardReleased', key)
      }
    }
    for (let c = g.popDescriptorChain(); c; c = g.popDescriptorChain()) r.delivered.push(c.headIndex)
    t.deepEqual(sorted(r.delivered), [...Array(12).keys()], `${key}: delivered ${r.delivered}`)
  }
})

test('popChains/addUsedBatch: a Proxy batch (its traps could run anything) is a TypeError, and no trap runs', (t) => {
  const r = offered(4)
  let traps = 0
  const handler: ProxyHandler<object> = {
    get(target, key) {
      traps++
      return Reflect.get(target, key, target)
    },
    getPrototypeOf(target) {
      traps++
      return Reflect.getPrototypeOf(target)
    },
  }
  t.throws(() => r.guard.popChains(new Proxy(new ChainBatch(), handler) as ChainBatch), argTypeError('batch'))
  t.throws(() => r.guard.addUsedBatch(new Proxy(new UsedBatch(), handler) as UsedBatch), argTypeError('used'))
  t.is(r.guard.nextAvail(), 0)
  t.is(traps, 0)
})

test('addUsedBatch: publishes the entries pushed, whatever a `count` accessor says or does', (t) => {
  const r = offered(4)
  const heads = [0, 1, 2, 3].map(() => r.guard.popDescriptorChain()!.headIndex)
  const used = new UsedBatch(8)
  used.push(heads[0]!, 1)
  used.push(heads[1]!, 2)
  let other: QueueGuard | null = null
  Object.defineProperty(used, 'count', {
    get() {
      r.guard.release()
      other = r.queue.lockWithMemory()
      return 5
    },
    configurable: true,
  })
  try {
    r.guard.addUsedBatch(used)
  } catch (e) {
    t.is((e as VirtioQueueError).code, 'GuardReleased')
  }
  t.is(other, null, 'the accessor never ran')
  t.is(r.memory.readU16(r.layout.usedRing + 2), 2, 'two used entries, as pushed')
  t.is(r.guard.usedIdx(), 2)
})

test('UsedBatch.count is read-only: assigning it publishes nothing that was not pushed', (t) => {
  const r = offered(2)
  const head = r.guard.popDescriptorChain()!.headIndex
  const used = new UsedBatch()
  used.push(head, 2)
  for (const bogus of [-1, 5]) {
    try {
      ;(used as { count: number }).count = bogus // a TypeError in strict code, ignored otherwise
    } catch (e) {
      t.true(e instanceof TypeError)
    }
    t.is(used.count, 1)
  }
  r.guard.addUsedBatch(used)
  t.is(r.guard.usedIdx(), 1)
  t.is(used.count, 0)
})

test('availIdx/usedIdx: an ordering that is not a string runs no conversion and is a TypeError', (t) => {
  const r = offered(1)
  let converted = 0
  const order = {
    toString() {
      converted++
      r.guard.release()
      r.queue.lockWithMemory()
      return 'acquire'
    },
  }
  t.throws(() => r.guard.availIdx(order as never), argTypeError('order'))
  t.throws(() => r.guard.usedIdx(order as never), argTypeError('order'))
  t.is(converted, 0)
  t.false(r.guard.released)
  t.is(r.guard.availIdx('relaxed'), 1)
})

test('Queue.fromState: a Proxy memory whose trap throws midway leaves nothing behind for the next new Queue', (t) => {
  const m1 = GuestMemory.fromRanges([[0, 0x10000]])
  const source = new Queue(m1, 16)
  const g = source.lockWithMemory()
  g.setDescTableAddress(0x1000)
  g.setReady(true)
  g.release()
  const state = source.state()
  let calls = 0
  const proxy = new Proxy(m1, {
    getPrototypeOf(target) {
      if (++calls === 2) throw new Error('trap')
      return Reflect.getPrototypeOf(target)
    },
  })
  t.throws(() => Queue.fromState(proxy, state))
  const m2 = GuestMemory.fromRanges([[0, 0x1000]])
  const fresh = new Queue(m2, 256)
  t.is(fresh.lockWithMemory().maxSize(), 256)
  t.like(fresh.state(), { maxSize: 256, ready: false, descTable: 0 })
  // A Proxy is not a GuestMemory for Queue either: no trap decides which memory a queue uses.
  t.throws(() => new Queue(new Proxy(m2, {}), 8), argTypeError('memory'))
  t.throws(() => Queue.fromState(new Proxy(m1, {}), state), argTypeError('memory'))
  t.like(Queue.fromState(m1, state).state(), { maxSize: 16, ready: true, descTable: 0x1000 })
})

test('a chain reads the memory it was popped from, whatever its `memory` property is set to', (t) => {
  const r = offered(1)
  r.memory.write(0x80000, Buffer.from('guest data 16 B!'))
  const chain = r.guard.popDescriptorChain()!
  const other = GuestMemory.fromRanges([[0, 0x100000]])
  ;(chain as { memory: GuestMemory }).memory = other
  t.is(chain.reader().read(16).toString(), 'guest data 16 B!')
  t.is(chain.buffers()[0]!.toString(), 'guest data 16 B!')
})
