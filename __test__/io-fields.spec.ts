// Typed fields (reader.readU8..readU64, writer.writeU8..writeU64: the crate's read_obj /
// write_obj of little-endian integers) and partial writes (writer.writeSome: the crate's
// io::Write::write; reader.readInto is io::Read::read), error paths included.
import test from 'ava'

import { GuestMemory } from '..'
import { argRangeError, argTypeError, DATA_BASE, makeRig, vqError } from './helpers/queue-setup'

const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff))
const pastEnd = (op: 'readable' | 'writable', left: number) => ({
  instanceOf: RangeError,
  code: 'ERR_OUT_OF_RANGE',
  message: new RegExp(`only ${left} ${op} bytes`),
})

test('reader.readU8..readU64: little-endian, in order, fields straddling descriptors', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  const data = bytes(18, 3)
  const view = new DataView(data.buffer, data.byteOffset, data.length)
  // Readable 3 + 0 + 5 + 9 + 1 bytes, with a writable buffer in between for the reader to skip.
  memory.write(DATA_BASE, data.subarray(0, 3))
  memory.write(DATA_BASE + 0x100, data.subarray(3, 8))
  memory.write(DATA_BASE + 0x200, data.subarray(8, 17))
  memory.write(DATA_BASE + 0x300, data.subarray(17))
  driver.addChain([
    { addr: DATA_BASE, len: 3 },
    { addr: DATA_BASE + 0x80, len: 0 },
    { addr: DATA_BASE + 0x100, len: 5 },
    { addr: DATA_BASE + 0x200, len: 9 },
    { addr: DATA_BASE + 0x300, len: 1 },
    { addr: DATA_BASE + 0x400, len: 8, writable: true },
  ])
  const r = guard.popDescriptorChain()!.reader()
  t.is(r.readU8(), data[0]!)
  t.is(r.readU16(), view.getUint16(1, true), 'ends exactly at the end of a descriptor')
  t.is(r.readU32(), view.getUint32(3, true), 'after an empty descriptor')
  t.is(r.readU64(), view.getBigUint64(7, true), 'straddles: 1 byte, then 7')
  t.is(r.readU16(), view.getUint16(15, true))
  t.is(r.readU8(), data[17]!)
  t.is(r.bytesRead(), 18)
  t.is(r.availableBytes(), 0)
  t.throws(() => r.readU8(), pastEnd('readable', 0))
})

test('reader_writer_shattered_object: a u32 over four 1-byte descriptors, written then read', (t) => {
  // The crate's test: 1-byte buffers 123 bytes apart; write_obj(Le32) then read_obj::<Le32>.
  const { guard, driver, memory } = makeRig({ size: 8 })
  const at = [0, 1, 2, 3].map((i) => DATA_BASE + i * 124)
  driver.addChain(at.map((addr) => ({ addr, len: 1, writable: true })))
  const w = guard.popDescriptorChain()!.writer()
  w.writeU32(0x12345678)
  t.is(w.bytesWritten(), 4)
  t.deepEqual(
    at.map((a) => memory.readU8(a)),
    [0x78, 0x56, 0x34, 0x12],
  )
  t.is(memory.readU8(DATA_BASE + 1), 0, 'nothing between the buffers')
  driver.addChain(at.map((addr) => ({ addr, len: 1 })))
  const r = guard.popDescriptorChain()!.reader()
  t.is(r.readU32(), 0x12345678)
})

test('writer.writeU8..writeU64: little-endian, straddling descriptors, bigint or number for u64', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  driver.addChain([
    { addr: DATA_BASE, len: 4 },
    { addr: DATA_BASE + 0x100, len: 3, writable: true },
    { addr: DATA_BASE + 0x200, len: 6, writable: true },
    { addr: DATA_BASE + 0x300, len: 16, writable: true },
  ])
  const w = guard.popDescriptorChain()!.writer()
  w.writeU8(0xa1)
  w.writeU32(0xb2b3b4b5) // 2 bytes, then 2
  w.writeU16(0xc6c7)
  w.writeU64(0x0102030405060708n) // 2 bytes, then 6
  w.writeU64(Number.MAX_SAFE_INTEGER)
  t.is(w.bytesWritten(), 23)
  t.is(w.availableBytes(), 2)
  t.is(memory.read(DATA_BASE + 0x100, 3).toString('hex'), 'a1b5b4')
  t.is(memory.read(DATA_BASE + 0x200, 6).toString('hex'), 'b3b2c7c60807')
  t.is(memory.read(DATA_BASE + 0x300, 14).toString('hex'), '060504030201' + 'ffffffffffff1f00')
  t.is(memory.readU32(DATA_BASE), 0, 'the readable buffer is untouched')
  t.throws(() => w.writeU64(0n), pastEnd('writable', 2))
  t.throws(() => w.writeU32(0), pastEnd('writable', 2))
  w.writeU16(0xffff)
  t.is(memory.readU16(DATA_BASE + 0x30e), 0xffff)
  t.is(memory.readU8(DATA_BASE + 0x310), 0, 'nothing past the chain')
})

test('writer: a typed write that does not fit throws RangeError and writes nothing', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  driver.addChain([
    { addr: DATA_BASE, len: 2, writable: true },
    { addr: DATA_BASE + 0x100, len: 3, writable: true },
  ])
  const w = guard.popDescriptorChain()!.writer()
  w.writeU8(1)
  t.throws(() => w.writeU64(0xffn), pastEnd('writable', 4))
  t.throws(() => w.writeU64(0xff), pastEnd('writable', 4))
  t.is(w.bytesWritten(), 1)
  t.is(memory.read(DATA_BASE, 2).toString('hex'), '0100')
  t.is(memory.read(DATA_BASE + 0x100, 3).toString('hex'), '000000')
  w.writeU32(0xffeeddcc)
  t.throws(() => w.writeU8(0), pastEnd('writable', 0))
  t.throws(() => w.writeU16(0), pastEnd('writable', 0))
  t.throws(() => w.writeU32(0), pastEnd('writable', 0))
  t.is(w.bytesWritten(), 5)
  t.is(memory.readU8(DATA_BASE + 0x103), 0, 'nothing past the chain')
})

test('writer: typed values are validated as GuestMemory validates them, before anything is written', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  driver.addChain([{ addr: DATA_BASE, len: 16, writable: true }])
  const w = guard.popDescriptorChain()!.writer()
  const m = GuestMemory.fromRanges([[0, 0x1000]])
  const cases: Array<[string, (v: never) => void, (v: never) => void, unknown[], unknown[]]> = [
    ['writeU8', (v) => w.writeU8(v), (v) => m.writeU8(0, v), [256, -1, 1.5, Number.NaN], ['1', 1n, null]],
    ['writeU16', (v) => w.writeU16(v), (v) => m.writeU16(0, v), [0x10000, -1, 0.5], ['1', 1n]],
    ['writeU32', (v) => w.writeU32(v), (v) => m.writeU32(0, v), [2 ** 32, -1, 2.5], ['1', 1n, undefined]],
    [
      'writeU64',
      (v) => w.writeU64(v),
      (v) => m.writeU64(0, v),
      [-1n, 2n ** 64n, 2 ** 53, -1, 1.5, Number.POSITIVE_INFINITY],
      ['1', null, {}],
    ],
  ]
  for (const [name, onWriter, onMemory, badRange, badType] of cases) {
    for (const v of badRange) {
      t.throws(() => onWriter(v as never), argRangeError('value'), `${name}(${String(v)})`)
      t.throws(() => onMemory(v as never), argRangeError('value'), `GuestMemory.${name}(${String(v)})`)
    }
    for (const v of badType) {
      t.throws(() => onWriter(v as never), argTypeError('value'), `${name}(${String(v)})`)
      t.throws(() => onMemory(v as never), argTypeError('value'), `GuestMemory.${name}(${String(v)})`)
    }
  }
  t.is(w.bytesWritten(), 0)
  t.is(memory.read(DATA_BASE, 16).toString('hex'), '00'.repeat(16))
  w.writeU64(2n ** 64n - 1n)
  w.writeU64(2 ** 53 - 1)
  t.is(memory.read(DATA_BASE, 16).toString('hex'), 'ff'.repeat(8) + 'ffffffffffff1f00')
})

test('reader: a typed read past the end throws RangeError and reads nothing', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  memory.write(DATA_BASE, Buffer.from([1, 2]))
  memory.write(DATA_BASE + 0x100, Buffer.from([3]))
  driver.addChain([
    { addr: DATA_BASE, len: 2 },
    { addr: DATA_BASE + 0x100, len: 1 },
  ])
  const r = guard.popDescriptorChain()!.reader()
  t.throws(() => r.readU64(), pastEnd('readable', 3))
  t.throws(() => r.readU32(), pastEnd('readable', 3))
  t.is(r.bytesRead(), 0)
  r.readU8()
  t.is(r.readU16(), 0x0302, 'the same bytes are still there')
  t.throws(() => r.readU8(), pastEnd('readable', 0))
  t.is(r.bytesRead(), 3)
})

test('reader_test_incompatible_chain / writer_test_incompatible_chain: no bytes of the direction', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  driver.addChain([{ addr: DATA_BASE, len: 8, writable: true }])
  const r = guard.popDescriptorChain()!.reader()
  t.is(r.availableBytes(), 0)
  t.throws(() => r.readU8(), pastEnd('readable', 0))
  t.is(r.availableBytes(), 0)
  t.is(r.bytesRead(), 0)
  driver.addChain([{ addr: DATA_BASE, len: 8 }])
  const w = guard.popDescriptorChain()!.writer()
  t.is(w.availableBytes(), 0)
  t.throws(() => w.writeU8(0), pastEnd('writable', 0))
  t.is(w.writeSome(Buffer.from('x')), 0)
  t.is(w.bytesWritten(), 0)
})

test('typed fields over a buffer spanning two guest memory regions', (t) => {
  const memory = GuestMemory.fromRanges([
    [0, 0x90000],
    [0x90000, 0x10000],
  ])
  const { guard, driver } = makeRig({ size: 8, memory })
  memory.writeU64(0x8fffc, 0x8877665544332211n)
  driver.addChain([
    { addr: 0x8fffc, len: 8 },
    { addr: 0x8fff0, len: 32, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  t.is(chain.reader().readU64(), 0x8877665544332211n)
  const r = chain.reader()
  t.is(r.readU16(), 0x2211)
  t.is(r.readU32(), 0x66554433, 'straddles the region border')
  const w = chain.writer()
  w.write(Buffer.alloc(14))
  w.writeU32(0xdeadbeef) // 2 bytes in each region
  t.is(memory.readU32(0x8fffe), 0xdeadbeef)
  t.is(memory.regions[1]!.buffer.readUInt16LE(0), 0xdead)
})

test('typed fields over detached memory throw DetachedBuffer and move nothing', (t) => {
  const ab = new ArrayBuffer(0x100000)
  const memory = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }])
  const { guard, driver } = makeRig({ size: 8, memory })
  driver.addChain([
    { addr: DATA_BASE, len: 2 },
    { addr: DATA_BASE + 0x100, len: 8 },
    { addr: DATA_BASE + 0x200, len: 8, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  const r = chain.reader()
  const w = chain.writer()
  structuredClone(ab, { transfer: [ab] })
  t.throws(() => r.readU16(), vqError('DetachedBuffer'))
  t.throws(() => r.readU32(), vqError('DetachedBuffer'), 'straddling')
  t.throws(() => w.writeU64(1n), vqError('DetachedBuffer'))
  t.throws(() => w.writeSome(Buffer.alloc(3)), vqError('DetachedBuffer'))
  t.is(r.bytesRead(), 0)
  t.is(w.bytesWritten(), 0)
})

test('write_full: writeSome writes what fits (48 of 64) and says so; write() stays all-or-nothing', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  driver.addChain([
    { addr: DATA_BASE, len: 16, writable: true },
    { addr: DATA_BASE + 0x100, len: 16, writable: true },
    { addr: DATA_BASE + 0x200, len: 16, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  t.throws(() => chain.writer().write(Buffer.alloc(64, 0xde)), pastEnd('writable', 48))
  t.is(memory.readU8(DATA_BASE), 0, 'write() wrote nothing')
  const w = chain.writer()
  t.is(w.writeSome(Buffer.alloc(0)), 0)
  t.is(w.writeSome(bytes(10)), 10)
  // A source with a byte offset: only its first 38 bytes fit.
  const src = bytes(80, 4).subarray(20)
  t.is(w.writeSome(src), 38)
  t.is(w.writeSome(new Uint8Array([1])), 0, 'full')
  t.is(w.bytesWritten(), 48)
  t.deepEqual(
    Buffer.concat([memory.read(DATA_BASE, 16), memory.read(DATA_BASE + 0x100, 16), memory.read(DATA_BASE + 0x200, 16)]),
    Buffer.concat([bytes(10), src.subarray(0, 38)]),
  )
  t.is(memory.readU8(DATA_BASE + 0x210), 0, 'nothing past the chain')
  t.throws(() => w.writeSome('abc' as never), argTypeError('bytes'))
  t.throws(() => w.writeSome([1] as never), argTypeError('bytes'))
  t.throws(() => w.writeSome(new Uint8ClampedArray(1) as never), argTypeError('bytes'))
  t.throws(() => w.writeSome(new DataView(new ArrayBuffer(1)) as never), argTypeError('bytes'))
})

test('read_full: readInto (io::Read::read) reads 48 of 64 into a target with a byte offset', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  const data = bytes(48, 6)
  for (let i = 0; i < 3; i++) memory.write(DATA_BASE + 0x100 * i, data.subarray(16 * i, 16 * i + 16))
  driver.addChain([0, 1, 2].map((i) => ({ addr: DATA_BASE + 0x100 * i, len: 16 })))
  const r = guard.popDescriptorChain()!.reader()
  const backing = new Uint8Array(80).fill(0xee)
  const target = backing.subarray(8, 72)
  t.is(r.readInto(target), 48)
  t.deepEqual(Buffer.from(target.subarray(0, 48)), data)
  t.is(backing[7], 0xee)
  t.is(backing[56], 0xee, 'the rest of the target is untouched')
  t.is(r.readInto(target), 0)
})
