// GuestMemory accessors: scalar reads/writes, addresses, bulk copies across regions, slices, atomics, checkRange.
import test from 'ava'

import { GuestMemory } from '..'
import { argRangeError, argTypeError, badAddress } from './helpers/queue-setup'

const END = 0x2000

function mem(): GuestMemory {
  return GuestMemory.fromRanges([[0, END]])
}

/** [0, 0x1000) and [0x1000, 0x2000) adjacent, then a gap, then [0x3000, 0x4000). */
function split(): GuestMemory {
  return GuestMemory.fromRanges([
    [0x1000, 0x1000],
    [0, 0x1000],
    [0x3000, 0x1000],
  ])
}

test('scalar reads and writes are little-endian', (t) => {
  const m = mem()
  m.writeU8(0x10, 0xfe)
  m.writeU16(0x20, 0xbeef)
  m.writeU32(0x30, 0xfeedface)
  m.writeU64(0x40, 0x0123456789abcdefn)
  t.is(m.readU8(0x10), 0xfe)
  t.is(m.readU16(0x20), 0xbeef)
  t.is(m.readU8(0x20), 0xef)
  t.is(m.readU32(0x30), 0xfeedface)
  t.is(m.readU16(0x32), 0xfeed)
  t.is(m.readU64(0x40), 0x0123456789abcdefn)
  t.is(m.readU32(0x40), 0x89abcdef)
  // Unaligned scalar accesses are fine.
  m.writeU32(0x51, 0x11223344)
  t.is(m.readU32(0x51), 0x11223344)
  // Last bytes of memory.
  m.writeU64(END - 8, 0xffffffffffffffffn)
  t.is(m.readU64(END - 8), 0xffffffffffffffffn)
})

test('writeU64 takes bigints and safe-integer numbers, and nothing that does not fit', (t) => {
  const m = mem()
  m.writeU64(0, Number.MAX_SAFE_INTEGER)
  t.is(m.readU64(0), BigInt(Number.MAX_SAFE_INTEGER))
  m.writeU64(0, 2n ** 64n - 1n)
  t.is(m.readU64(0), 2n ** 64n - 1n)
  m.writeU64(8, 0)
  t.throws(() => m.writeU64(8, 2n ** 64n), argRangeError('value'))
  t.throws(() => m.writeU64(8, -1n), argRangeError('value'))
  t.throws(() => m.writeU64(8, -1), argRangeError('value'))
  t.throws(() => m.writeU64(8, 2 ** 53), argRangeError('value'))
  t.throws(() => m.writeU64(8, 1.5), argRangeError('value'))
  t.throws(() => m.writeU64(8, '1' as never), argTypeError('value'))
  t.is(m.readU64(8), 0n, 'nothing written by the failed calls')
})

test('values out of the field range are rejected and write nothing', (t) => {
  const m = mem()
  t.throws(() => m.writeU8(0, 256), argRangeError('value'))
  t.throws(() => m.writeU8(0, -1), argRangeError('value'))
  t.throws(() => m.writeU16(0, 0x10000), argRangeError('value'))
  t.throws(() => m.writeU16(0, 0.5), argRangeError('value'))
  t.throws(() => m.writeU32(0, 2 ** 32), argRangeError('value'))
  t.throws(() => m.writeU32(0, NaN), argRangeError('value'))
  t.throws(() => m.writeU8(0, '1' as never), argTypeError('value'))
  t.throws(() => m.writeU16(0, 1n as never), argTypeError('value'))
  t.throws(() => m.storeU16(0, 0x10000), argRangeError('value'))
  t.is(m.readU64(0), 0n)
})

test('accesses outside guest memory throw InvalidGuestAddress naming the address in hex', (t) => {
  const m = mem()
  t.throws(() => m.readU8(END), badAddress(END))
  t.throws(() => m.readU16(END - 1), badAddress(END - 1))
  t.throws(() => m.readU32(END - 3), badAddress(END - 3))
  t.throws(() => m.readU64(END - 7), badAddress(END - 7))
  t.throws(() => m.writeU8(0x123456, 1), badAddress(0x123456))
  t.throws(() => m.writeU64(END - 4, 1n), badAddress(END - 4))
  t.throws(() => m.read(END - 4, 8), badAddress(END - 4))
  t.throws(() => m.readInto(END, new Uint8Array(1)), badAddress(END))
  t.throws(() => m.write(END - 1, new Uint8Array(2)), badAddress(END - 1))
  t.throws(() => m.slice(END - 1, 2), badAddress(END - 1))
  t.is(m.readU8(END - 1), 0, 'the failed write wrote nothing')
})

test('addresses: bigints are accepted; unsafe, fractional, negative and non-numeric ones are rejected', (t) => {
  const m = mem()
  m.writeU32(0x100n, 7)
  t.is(m.readU32(0x100n), 7)
  t.is(m.read(0x100n, 4).readUInt32LE(0), 7)
  t.is(m.slice(0x100n, 4).readUInt32LE(0), 7)
  t.true(m.checkRange(0x100n, 4))

  // 2^53 and beyond are never rounded to a valid address.
  t.throws(() => m.readU8(2n ** 53n), argRangeError('addr'))
  t.throws(() => m.readU8(2n ** 64n + 0x100n), argRangeError('addr'))
  t.throws(() => m.readU8(-1n), argRangeError('addr'))
  t.throws(() => m.readU8(2 ** 53), argRangeError('addr'))
  t.throws(() => m.readU8(2 ** 64 + 0x100), argRangeError('addr'))
  t.throws(() => m.writeU8(2 ** 53 + 2, 1), argRangeError('addr'))
  t.throws(() => m.readU8(0.5), argRangeError('addr'))
  t.throws(() => m.readU8(NaN), argRangeError('addr'))
  t.throws(() => m.readU8(Infinity), argRangeError('addr'))
  t.throws(() => m.readU8(-1), argRangeError('addr'))
  t.throws(() => m.read(-4, 4), argRangeError('addr'))
  t.throws(() => m.write(1.5, new Uint8Array(1)), argRangeError('addr'))
  t.throws(() => m.checkRange(2n ** 53n, 1), argRangeError('addr'))
  t.throws(() => m.readU8('16' as never), argTypeError('addr'))
  t.throws(() => m.readU8(null as never), argTypeError('addr'))
  t.throws(() => m.slice(undefined as never, 1), argTypeError('addr'))
})

test('read/readInto/write: copies, also across adjacent regions', (t) => {
  const m = split()
  const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1))
  m.write(0xff0, bytes)
  t.deepEqual(m.read(0xff0, 32), bytes)
  t.deepEqual(m.regions[1]!.buffer.subarray(0xff0), bytes.subarray(0, 16), 'first half in region [0, 0x1000)')
  t.deepEqual(m.regions[0]!.buffer.subarray(0, 16), bytes.subarray(16), 'second half in region [0x1000, 0x2000)')

  const target = new Uint8Array(20)
  m.readInto(0xffa, target)
  t.deepEqual([...target], [...bytes.subarray(10, 30)])

  // The copy is not a view.
  const copy = m.read(0xff0, 4)
  copy[0] = 99
  t.is(m.readU8(0xff0), 1)

  t.is(m.read(0x10, 0).length, 0)
  t.throws(() => m.read(0, -1), argRangeError('length'))
  t.throws(() => m.read(0, 1.5), argRangeError('length'))
  t.throws(() => m.readInto(0, [1, 2] as never), argTypeError('target'))
  t.throws(() => m.write(0, 'abc' as never), argTypeError('bytes'))
})

test('read/write across a gap throw and write nothing', (t) => {
  const m = split()
  t.throws(() => m.write(0x1ff0, new Uint8Array(0x20).fill(0xaa)), badAddress(0x1ff0))
  t.is(
    m.read(0x1ff0, 16).every((b) => b === 0),
    true,
    'the part inside memory was not written',
  )
  t.throws(() => m.read(0x1ff0, 0x20), badAddress(0x1ff0))
  t.throws(() => m.readInto(0x2ff0, new Uint8Array(0x20)), badAddress(0x2ff0))
  // The whole span 0 .. 0x2000 is fine, one past it is not.
  t.is(m.read(0, 0x2000).length, 0x2000)
  t.throws(() => m.read(0, 0x2001), badAddress(0))
})

test('slice: a zero-copy view within one region; a span of two regions throws', (t) => {
  const m = split()
  const s = m.slice(0x1010, 8)
  t.is(s.length, 8)
  s[0] = 0x42
  t.is(m.readU8(0x1010), 0x42)
  m.writeU8(0x1017, 0x43)
  t.is(s[7], 0x43)
  t.is(m.slice(0xff8, 8).length, 8, 'ending exactly at the region end')
  t.throws(() => m.slice(0xffc, 8), { ...badAddress(0xffc), message: /0xffc.*not within one guest memory region/ })
  t.throws(() => m.slice(0x1ffc, 8), badAddress(0x1ffc))
  t.throws(() => m.slice(0, -1), argRangeError('length'))
})

test('loadU16/storeU16: atomic, aligned accesses on native and shared memory', (t) => {
  const sab = new SharedArrayBuffer(0x100)
  for (const m of [mem(), GuestMemory.fromBuffers([{ guestAddress: 0x1000, buffer: sab }])]) {
    const base = m.regions[0]!.guestAddress
    m.storeU16(base + 0x10, 0xbeef)
    t.is(m.loadU16(base + 0x10), 0xbeef)
    t.is(m.readU16(base + 0x10), 0xbeef, 'little-endian like readU16')
    t.is(m.regions[0]!.buffer.readUInt16LE(0x10), 0xbeef)
    t.throws(() => m.loadU16(base + 0x11), { ...badAddress(base + 0x11), message: /aligned/ })
    t.throws(() => m.storeU16(base + 0x13, 1), { ...badAddress(base + 0x13), message: /aligned/ })
    t.is(m.readU16(base + 0x12), 0, 'the misaligned store wrote nothing')
    t.throws(() => m.loadU16(base + 0x100000), badAddress(base + 0x100000))
  }
  t.is(new Uint16Array(sab)[8], 0xbeef, 'the shared memory itself holds the value')
})

test('checkRange: within, across adjacent regions, gaps and ends', (t) => {
  const m = split()
  t.true(m.checkRange(0, 1))
  t.true(m.checkRange(0xf00, 0x200), 'across adjacent regions')
  t.true(m.checkRange(0, 0x2000))
  t.false(m.checkRange(0, 0x2001))
  t.false(m.checkRange(0x1fff, 2), 'into the gap')
  t.false(m.checkRange(0x2000, 1))
  t.true(m.checkRange(0x3000, 0x1000))
  t.false(m.checkRange(0x3000, 0x1001))
  t.false(m.checkRange(0x1000000, 1))
  t.true(m.checkRange(0x3fff, 0), 'an empty range inside memory')
  t.false(m.checkRange(0x4000, 0), 'an empty range outside memory')
  t.throws(() => m.checkRange(0, -1), argRangeError('length'))
  t.throws(() => m.checkRange(0, '1' as never), argTypeError('length'))
})

test('scalar accesses may span two adjacent regions, as vm-memory read_obj/write_obj do', (t) => {
  const m = GuestMemory.fromRanges([
    [0, 0x1000],
    [0x1000, 0x1000],
    [0x3000, 0x1000],
  ])
  m.writeU32(0xffe, 0xaabbccdd)
  t.is(m.regions[0]!.buffer.readUInt16LE(0xffe), 0xccdd)
  t.is(m.regions[1]!.buffer.readUInt16LE(0), 0xaabb)
  t.is(m.readU32(0xffe), 0xaabbccdd)
  m.writeU64(0xffc, 0x0102030405060708n)
  t.is(m.readU64(0xffc), 0x0102030405060708n)
  t.is(m.readU16(0xfff), 0x0405)
  // Across the gap at 0x2000: nothing is written, the error names the address.
  m.writeU8(0x1fff, 0x5a)
  const e = t.throws(() => m.writeU32(0x1ffe, 1), { instanceOf: RangeError })
  t.is((e as RangeError & { code?: string }).code, 'InvalidGuestAddress')
  t.regex(e!.message, /0x1ffe/)
  t.is(m.readU8(0x1fff), 0x5a)
  t.throws(() => m.readU16(0x1fff), { instanceOf: RangeError, message: /0x1fff/ })
})
