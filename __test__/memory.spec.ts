// GuestMemory construction: fromRanges, fromBuffers, zero-copy regions, layout errors, detachment.
import test from 'ava'

import { ADDRESS_LIMIT, GuestMemory, PAGE_SIZE, Queue, VirtioQueueError } from '..'
import { argRangeError, argTypeError, configure, vqError } from './helpers/queue-setup'
import { splitQueueLayout } from '../driver'

test('PAGE_SIZE and ADDRESS_LIMIT', (t) => {
  t.true(PAGE_SIZE >= 4096 && (PAGE_SIZE & (PAGE_SIZE - 1)) === 0)
  t.is(ADDRESS_LIMIT, 2 ** 53)
})

test('fromRanges: zero-filled regions aliased by Buffers, in the order given', (t) => {
  const m = GuestMemory.fromRanges([
    [0x20000, 0x3000],
    [0, PAGE_SIZE + 5],
    [0x10000n, 0x100n],
  ])
  t.is(m.regions.length, 3)
  t.deepEqual(
    m.regions.map((r) => [r.guestAddress, r.size]),
    [
      [0x20000, 0x3000],
      [0, PAGE_SIZE + 5],
      [0x10000, 0x100],
    ],
  )
  t.is(m.size, 0x3000 + PAGE_SIZE + 5 + 0x100)
  for (const r of m.regions) {
    t.true(Buffer.isBuffer(r.buffer))
    t.is(r.buffer.length, r.size)
    t.true(r.buffer.every((b) => b === 0))
  }
  t.true(Object.isFrozen(m.regions))
  // Buffer writes are guest memory writes and vice versa.
  m.regions[0]!.buffer.writeUInt32LE(0xdeadbeef, 0x10)
  t.is(m.readU32(0x20010), 0xdeadbeef)
  m.writeU16(0x10002, 0xabcd)
  t.is(m.regions[2]!.buffer.readUInt16LE(2), 0xabcd)
  // Gaps are not memory.
  t.false(m.checkRange(0x3000, 1))
  t.false(m.checkRange(0x10100, 1))
  t.throws(() => m.readU8(0x10100), { instanceOf: RangeError, code: 'InvalidGuestAddress' })
})

test('fromRanges: a region may end exactly at 2^53', (t) => {
  const m = GuestMemory.fromRanges([[2 ** 53 - 0x1000, 0x1000]])
  m.writeU8(2 ** 53 - 1, 0x5a)
  t.is(m.readU8(BigInt(2 ** 53 - 1)), 0x5a)
  t.is(m.regions[0]!.buffer[0xfff], 0x5a)
})

test('fromRanges: layout errors are InvalidRegion', (t) => {
  t.throws(() => GuestMemory.fromRanges([]), vqError('InvalidRegion', /at least one/))
  t.throws(() => GuestMemory.fromRanges([[0, 0]]), vqError('InvalidRegion', /empty/))
  t.throws(() => GuestMemory.fromRanges([[4, 0x1000]]), vqError('InvalidRegion', /0x4 is not a multiple of 8/))
  t.throws(
    () =>
      GuestMemory.fromRanges([
        [0, 0x2000],
        [0x1000, 0x1000],
      ]),
    vqError('InvalidRegion', /overlap/),
  )
  t.throws(
    () =>
      GuestMemory.fromRanges([
        [0x1000, 0x1000],
        [0, 0x1001],
      ]),
    vqError('InvalidRegion', /overlap/),
  )
  t.throws(() => GuestMemory.fromRanges([[2 ** 53 - 0x1000, 0x1008]]), vqError('InvalidRegion', /2\^53/))
})

test('fromRanges: argument errors name the argument', (t) => {
  t.throws(() => GuestMemory.fromRanges('0,4096' as never), argTypeError('ranges'))
  t.throws(() => GuestMemory.fromRanges([[0]] as never), argTypeError('ranges[0]'))
  t.throws(() => GuestMemory.fromRanges([[0, 0x1000], 7] as never), argTypeError('ranges[1]'))
  t.throws(() => GuestMemory.fromRanges([['0', 0x1000]] as never), argTypeError('ranges[0][0]'))
  t.throws(() => GuestMemory.fromRanges([[0, 4096.5]]), argRangeError('ranges[0][1]'))
  t.throws(() => GuestMemory.fromRanges([[-8, 0x1000]]), argRangeError('ranges[0][0]'))
  t.throws(() => GuestMemory.fromRanges([[2n ** 53n, 0x1000]]), argRangeError('ranges[0][0]'))
  t.throws(() => GuestMemory.fromRanges([[2 ** 53 + 8, 0x1000]]), argRangeError('ranges[0][0]'))
})

test('fromBuffers: every kind of backing is mapped without copying', (t) => {
  const buf = Buffer.alloc(0x1000)
  const u8 = new Uint8Array(0x1000)
  const ab = new ArrayBuffer(0x1000)
  const sab = new SharedArrayBuffer(0x1000)
  const dvBacking = new ArrayBuffer(0x100)
  const dv = new DataView(dvBacking, 8, 0x40)
  const u32 = new Uint32Array(0x100)
  const f64 = new Float64Array(new ArrayBuffer(0x200), 16, 8)
  const m = GuestMemory.fromBuffers([
    { guestAddress: 0, buffer: buf },
    { guestAddress: 0x1000, buffer: u8 },
    { guestAddress: 0x2000n, buffer: ab },
    { guestAddress: 0x3000, buffer: sab },
    { guestAddress: 0x4000, buffer: dv },
    { guestAddress: 0x5000, buffer: u32 },
    { guestAddress: 0x6000, buffer: f64 },
  ])
  t.deepEqual(
    m.regions.map((r) => [r.guestAddress, r.size]),
    [
      [0, 0x1000],
      [0x1000, 0x1000],
      [0x2000, 0x1000],
      [0x3000, 0x1000],
      [0x4000, 0x40],
      [0x5000, 0x400],
      [0x6000, 0x40],
    ],
  )
  t.is(m.size, 4 * 0x1000 + 0x40 + 0x400 + 0x40)

  // Guest writes land in the original memory ...
  m.writeU8(0x10, 1)
  m.writeU8(0x1010, 2)
  m.writeU8(0x2010, 3)
  m.writeU8(0x3010, 4)
  m.writeU8(0x4000, 5)
  m.writeU32(0x5004, 0x12345678)
  m.writeU64(0x6008, 0x3ff0000000000000n)
  t.is(buf[0x10], 1)
  t.is(u8[0x10], 2)
  t.is(new Uint8Array(ab)[0x10], 3)
  t.is(new Uint8Array(sab)[0x10], 4)
  t.is(new Uint8Array(dvBacking)[8], 5, 'DataView offset respected')
  t.is(u32[1], 0x12345678)
  t.is(f64[1], 1)
  // ... and host writes are visible to the guest.
  buf[0x20] = 9
  u8[0x20] = 10
  new Uint8Array(ab)[0x20] = 11
  new Uint8Array(sab)[0x20] = 12
  dv.setUint8(1, 13)
  u32[2] = 0xcafef00d
  f64[2] = -2
  t.is(m.readU8(0x20), 9)
  t.is(m.readU8(0x1020), 10)
  t.is(m.readU8(0x2020), 11)
  t.is(m.readU8(0x3020), 12)
  t.is(m.readU8(0x4001), 13)
  t.is(m.readU32(0x5008), 0xcafef00d)
  t.is(m.readU64(0x6010), 0xc000000000000000n)
  // The region Buffers alias the same bytes.
  t.is(m.regions[4]!.buffer[1], 13)
  m.regions[1]!.buffer[0x30] = 77
  t.is(u8[0x30], 77)
})

test('fromBuffers: layout errors are InvalidRegion', (t) => {
  t.throws(() => GuestMemory.fromBuffers([]), vqError('InvalidRegion', /at least one/))
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new Uint8Array(0) }]),
    vqError('InvalidRegion', /empty/),
  )
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new Uint8Array(new ArrayBuffer(64), 4, 32) }]),
    vqError('InvalidRegion', /aligned in host memory/),
  )
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 12, buffer: new ArrayBuffer(64) }]),
    vqError('InvalidRegion', /0xc is not a multiple of 8/),
  )
  t.throws(
    () =>
      GuestMemory.fromBuffers([
        { guestAddress: 0, buffer: new ArrayBuffer(64) },
        { guestAddress: 56, buffer: new ArrayBuffer(64) },
      ]),
    vqError('InvalidRegion', /overlap/),
  )
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 2 ** 53 - 32, buffer: new ArrayBuffer(64) }]),
    vqError('InvalidRegion', /2\^53/),
  )
  const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer
  const rab = new Resizable(64, { maxByteLength: 128 })
  t.throws(() => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: rab }]), vqError('InvalidRegion', /resizable/))
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new Uint8Array(rab) }]),
    vqError('InvalidRegion', /resizable/),
  )
})

test('fromBuffers: argument errors name the argument', (t) => {
  t.throws(() => GuestMemory.fromBuffers(null as never), argTypeError('regions'))
  t.throws(() => GuestMemory.fromBuffers([null] as never), argTypeError('regions[0]'))
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: 'bytes' }] as never),
    argTypeError('regions[0].buffer'),
  )
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: [1, 2, 3] }] as never),
    argTypeError('regions[0].buffer'),
  )
  t.throws(
    () =>
      GuestMemory.fromBuffers([
        { guestAddress: 0, buffer: new ArrayBuffer(8) },
        { buffer: new ArrayBuffer(8) },
      ] as never),
    argTypeError('regions[1].guestAddress'),
  )
  t.throws(
    () => GuestMemory.fromBuffers([{ guestAddress: 0.5, buffer: new ArrayBuffer(8) }]),
    argRangeError('regions[0].guestAddress'),
  )
})

test('a detached ArrayBuffer makes JS accessors and native guard calls throw DetachedBuffer', (t) => {
  const ab = new ArrayBuffer(0x10000)
  const m = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }])
  const queue = new Queue(m, 8)
  const guard = queue.lockWithMemory()
  configure(guard, splitQueueLayout(0x1000, 8))
  t.true(guard.isValid())
  m.writeU8(0, 1)

  const moved = structuredClone(ab, { transfer: [ab] })
  t.is(ab.byteLength, 0)
  t.is(new Uint8Array(moved)[0], 1, 'the bytes moved to the clone')

  const detached = vqError('DetachedBuffer', /region 0 was detached/)
  t.throws(() => m.readU8(0), detached)
  t.throws(() => m.writeU32(0x10, 1), detached)
  t.throws(() => m.read(0, 4), detached)
  t.throws(() => m.write(0, new Uint8Array(4)), detached)
  t.throws(() => m.slice(0, 4), detached)
  t.throws(() => m.loadU16(0x1000), detached)
  t.throws(() => m.checkRange(0, 4), detached)
  t.throws(() => guard.isValid(), detached)
  t.throws(() => guard.availIdx(), detached)
  t.throws(() => guard.usedIdx('relaxed'), detached)
  t.throws(() => guard.popDescriptorChain(), detached)
  t.throws(() => guard.addUsed(0, 1), detached)
  t.throws(() => guard.needsNotification(), detached)
  // Calls that touch no guest memory still work.
  t.is(guard.size(), 8)
  t.true(guard.ready())
  const err = t.throws(() => m.readU8(0))
  t.true(err instanceof VirtioQueueError)
})

test('a detached region among others: only accesses to it fail', (t) => {
  const ab = new ArrayBuffer(0x1000)
  const m = GuestMemory.fromBuffers([
    { guestAddress: 0, buffer: new ArrayBuffer(0x1000) },
    { guestAddress: 0x1000, buffer: ab },
  ])
  structuredClone(ab, { transfer: [ab] })
  m.writeU8(0x10, 7)
  t.is(m.readU8(0x10), 7)
  t.throws(() => m.readU8(0x1010), vqError('DetachedBuffer', /region 1/))
  t.throws(() => m.read(0xff0, 0x20), vqError('DetachedBuffer'))
})

test('SharedArrayBuffer memory cannot be detached and works with a queue', (t) => {
  const sab = new SharedArrayBuffer(0x10000)
  const m = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: sab }])
  const guard = new Queue(m, 8).lockWithMemory()
  configure(guard, splitQueueLayout(0x1000, 8))
  t.true(guard.isValid())
  // The avail ring of this layout is at 0x1080; its idx is at 0x1082.
  Atomics.store(new Uint16Array(sab), 0x1082 / 2, 2)
  t.is(guard.availIdx(), 2)
  t.is(m.loadU16(0x1082), 2)
})
