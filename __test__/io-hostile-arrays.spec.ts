// Issue 11, item 2: the Reader and Writer size their copies from the real length of the
// caller's Uint8Array, never from properties JavaScript can redefine (a subclass getter,
// an own property, a patched TypedArray.prototype getter, a Proxy). Before, a Uint8Array
// whose `length` said 8 made Writer.write copy all 64 real bytes past the chain's buffer.
import test from 'ava'

import { argTypeError, DATA_BASE, makeRig } from './helpers/queue-setup'

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object

/** A chain with one 8-byte writable buffer at DATA_BASE + 0x100 and 8 readable bytes at DATA_BASE. */
function smallChain() {
  const rig = makeRig({ size: 8 })
  rig.memory.write(DATA_BASE, Buffer.from('readable'))
  rig.driver.addChain([
    { addr: DATA_BASE, len: 8 },
    { addr: DATA_BASE + 0x100, len: 8, writable: true },
  ])
  return { ...rig, chain: rig.guard.popDescriptorChain()! }
}

/** The guest bytes after the 8-byte writable buffer, which no write may touch. */
const after = (m: ReturnType<typeof smallChain>['memory']) => m.read(DATA_BASE + 0x108, 56)

test('a Uint8Array subclass whose length getter lies: write() copies nothing past the buffer', (t) => {
  const { chain, memory } = smallChain()
  class Liar extends Uint8Array {
    override get length(): number {
      return 8
    }
  }
  const evil = new Liar(64).fill(0x41)
  t.is(evil.length, 8)
  const w = chain.writer()
  t.throws(() => w.write(evil), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: /64 bytes/ })
  t.is(w.bytesWritten(), 0)
  t.deepEqual(after(memory), Buffer.alloc(56), 'nothing was written past the chain')
  t.deepEqual(memory.read(DATA_BASE + 0x100, 8), Buffer.alloc(8), 'nor into it')
  // writeSome writes the 8 real bytes that fit.
  t.is(w.writeSome(evil), 8)
  t.deepEqual(memory.read(DATA_BASE + 0x100, 8), Buffer.alloc(8, 0x41))
  t.deepEqual(after(memory), Buffer.alloc(56))
  // A reader counts the array's real length, whatever it claims (here: part of it).
  const big = new Liar(16)
  t.is(chain.reader().readInto(big), 8)
  t.is(Buffer.from(big.buffer, 0, 8).toString(), 'readable')
})

test('an own `length` property on a Uint8Array changes nothing', (t) => {
  const { chain, memory } = smallChain()
  const evil = new Uint8Array(64).fill(0x42)
  Object.defineProperty(evil, 'length', { value: 8 })
  t.throws(() => chain.writer().write(evil), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.deepEqual(after(memory), Buffer.alloc(56))
})

test('a patched TypedArray.prototype length getter changes nothing', (t) => {
  const { chain, memory } = smallChain()
  const evil = new Uint8Array(64).fill(0x43)
  const original = Object.getOwnPropertyDescriptor(TypedArrayPrototype, 'length')!
  const realLength = original.get!
  Object.defineProperty(TypedArrayPrototype, 'length', {
    ...original,
    get(this: Uint8Array) {
      return this === evil ? 8 : realLength.call(this)
    },
  })
  try {
    t.is(evil.length, 8)
    const w = chain.writer()
    t.throws(() => w.write(evil), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    t.is(w.writeSome(evil), 8)
  } finally {
    Object.defineProperty(TypedArrayPrototype, 'length', original)
  }
  t.deepEqual(after(memory), Buffer.alloc(56))
  t.deepEqual(memory.read(DATA_BASE + 0x100, 8), Buffer.alloc(8, 0x43))
})

test('patched buffer/byteOffset getters do not choose which bytes a split write copies', (t) => {
  const rig = makeRig({ size: 8 })
  rig.driver.addChain([
    { addr: DATA_BASE + 0x100, len: 4, writable: true },
    { addr: DATA_BASE + 0x200, len: 4, writable: true },
  ])
  const w = rig.guard.popDescriptorChain()!.writer()
  const backing = Buffer.from('0123456789abcdef')
  const evil = backing.subarray(4, 12) // '456789ab', copied in two pieces
  const elsewhere = new Uint8Array(64).fill(0x5a).buffer
  const originals = ['buffer', 'byteOffset'].map(
    (k) => [k, Object.getOwnPropertyDescriptor(TypedArrayPrototype, k)!] as const,
  )
  for (const [k, d] of originals) {
    Object.defineProperty(TypedArrayPrototype, k, {
      ...d,
      get(this: Uint8Array) {
        if (this === evil) return k === 'buffer' ? elsewhere : 40
        return d.get!.call(this)
      },
    })
  }
  try {
    t.is(w.write(evil), 8)
  } finally {
    for (const [k, d] of originals) Object.defineProperty(TypedArrayPrototype, k, d)
  }
  t.is(rig.memory.read(DATA_BASE + 0x100, 4).toString(), '4567')
  t.is(rig.memory.read(DATA_BASE + 0x200, 4).toString(), '89ab')
})

test('a Proxy around a Uint8Array is refused (its length can change between two reads)', (t) => {
  const { chain, memory } = smallChain()
  let reads = 0
  const target = new Uint8Array(64).fill(0x44)
  const proxy = new Proxy(target, {
    get(o, key) {
      if (key === 'length') return reads++ === 0 ? 8 : 64
      const v = Reflect.get(o, key)
      return typeof v === 'function' ? v.bind(o) : v
    },
  })
  t.true(proxy instanceof Uint8Array, 'it passes instanceof')
  const w = chain.writer()
  t.throws(() => w.write(proxy), argTypeError('bytes'))
  t.throws(() => w.writeSome(proxy), argTypeError('bytes'))
  t.throws(() => chain.reader().readInto(proxy), argTypeError('target'))
  t.is(w.bytesWritten(), 0)
  t.deepEqual(after(memory), Buffer.alloc(56))
  t.deepEqual(memory.read(DATA_BASE + 0x100, 8), Buffer.alloc(8))
})

test('a subclass overriding subarray() or set(): the reader and writer call neither', (t) => {
  const { chain, memory } = smallChain()
  let called = 0
  class Sneaky extends Uint8Array {
    override subarray(): never {
      called++
      throw new Error('subarray called')
    }
    override set(): never {
      called++
      throw new Error('set called')
    }
  }
  const src = new Sneaky(16).fill(0x45)
  t.is(chain.writer().writeSome(src), 8)
  t.deepEqual(memory.read(DATA_BASE + 0x100, 8), Buffer.alloc(8, 0x45))
  t.is(chain.writer().write(new Sneaky(0)), 0)
  const dst = new Sneaky(16)
  t.is(chain.reader().readInto(dst), 8)
  t.is(Buffer.from(dst.buffer, 0, 8).toString(), 'readable')
  t.is(called, 0)
})

test('a replaced Uint8Array[Symbol.hasInstance] that grows the source mid-call: write() copies nothing past the buffer', (t) => {
  const { chain, memory } = smallChain()
  // A length-tracking view of a resizable buffer: 8 bytes now, 64 once the hook ran.
  type Resizable = ArrayBuffer & { resize(n: number): void }
  const ab = new (ArrayBuffer as unknown as new (n: number, o: object) => Resizable)(8, { maxByteLength: 64 })
  const src = new Uint8Array(ab).fill(0x44)
  let ran = 0
  Object.defineProperty(Uint8Array, Symbol.hasInstance, {
    configurable: true,
    value(v: unknown) {
      ran++
      ab.resize(64)
      new Uint8Array(ab).fill(0x44)
      return Function.prototype[Symbol.hasInstance].call(Uint8Array, v)
    },
  })
  try {
    const w = chain.writer()
    w.write(src)
    t.is(w.bytesWritten(), 8)
  } finally {
    delete (Uint8Array as unknown as Record<symbol, unknown>)[Symbol.hasInstance]
  }
  t.is(ran, 0, 'the package ran no instanceof on the caller array')
  t.deepEqual(memory.read(DATA_BASE + 0x100, 8), Buffer.alloc(8, 0x44))
  t.deepEqual(after(memory), Buffer.alloc(56), 'nothing was written past the chain')
})
