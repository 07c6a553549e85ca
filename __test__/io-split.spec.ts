// Reader.splitAt / Writer.splitAt: the crate's split_at (descriptor_utils.rs), its five
// split_* tests ported with the same chain and numbers, then splits the crate has no
// test for: their data, composition, region boundaries, indirect tables, detached
// memory, and a chain whose guard was released.
import test from 'ava'

import { GuestMemory, Reader, VirtioQueueError, Writer } from '..'
import { argRangeError, argTypeError, DATA_BASE, makeRig, vqError } from './helpers/queue-setup'

const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff))

/**
 * The crate's test chain: readable 16 + 16 + 96, writable 64 + 1 + 3, laid out back to back
 * (create_descriptor_chain with no space between buffers). `data` fills the readable bytes.
 */
function crateChain(memory?: GuestMemory) {
  const rig = makeRig({ size: 16, ...(memory ? { memory } : {}) })
  const data = bytes(128, 5)
  rig.memory.write(DATA_BASE, data)
  const sizes: Array<[number, boolean]> = [
    [16, false],
    [16, false],
    [96, false],
    [64, true],
    [1, true],
    [3, true],
  ]
  let addr = DATA_BASE
  const descs = sizes.map(([len, writable]) => {
    const d = { addr, len, writable }
    addr += len
    return d
  })
  rig.driver.addChain(descs)
  const chain = rig.guard.popDescriptorChain()!
  return { ...rig, chain, data }
}

test('split_border: split at 32 (reader) and 64 (writer), both on a descriptor border', (t) => {
  const { chain } = crateChain()
  const reader = chain.reader()
  const other = reader.splitAt(32)
  t.true(other instanceof Reader)
  t.is(reader.availableBytes(), 32)
  t.is(other.availableBytes(), 96)
  const writer = chain.writer()
  const rest = writer.splitAt(64)
  t.true(rest instanceof Writer)
  t.is(writer.availableBytes(), 64)
  t.is(rest.availableBytes(), 4)
})

test('split_middle: split at 24, inside the second descriptor', (t) => {
  const { chain } = crateChain()
  const reader = chain.reader()
  const other = reader.splitAt(24)
  t.is(reader.availableBytes(), 24)
  t.is(other.availableBytes(), 104)
})

test('split_end: split at 128, the end', (t) => {
  const { chain } = crateChain()
  const reader = chain.reader()
  const other = reader.splitAt(128)
  t.is(reader.availableBytes(), 128)
  t.is(other.availableBytes(), 0)
  t.is(other.readInto(new Uint8Array(8)), 0)
})

test('split_beginning: split at 0', (t) => {
  const { chain } = crateChain()
  const reader = chain.reader()
  const other = reader.splitAt(0)
  t.is(reader.availableBytes(), 0)
  t.is(other.availableBytes(), 128)
})

test('split_outofbounds: split at 256 throws SplitOutOfBounds and changes nothing', (t) => {
  const { chain } = crateChain()
  const reader = chain.reader()
  t.throws(() => reader.splitAt(256), vqError('SplitOutOfBounds', /256/))
  t.throws(() => reader.splitAt(129), vqError('SplitOutOfBounds'))
  t.is(reader.availableBytes(), 128)
  const writer = chain.writer()
  t.throws(() => writer.splitAt(69), vqError('SplitOutOfBounds', /69.*68/))
  t.is(writer.availableBytes(), 68)
  t.is(writer.splitAt(68).availableBytes(), 0, 'availableBytes() itself is valid')
})

test('splitAt: offsets that are not non-negative integers are argument errors', (t) => {
  const { chain } = crateChain()
  const reader = chain.reader()
  const writer = chain.writer()
  for (const s of [reader, writer] as Array<Reader | Writer>) {
    t.throws(() => s.splitAt(-1), argRangeError('offset'))
    t.throws(() => s.splitAt(1.5), argRangeError('offset'))
    t.throws(() => s.splitAt(Number.NaN), argRangeError('offset'))
    t.throws(() => s.splitAt('1' as never), argTypeError('offset'))
    t.throws(() => s.splitAt(1n as never), argTypeError('offset'))
  }
  t.is(reader.availableBytes(), 128)
  t.is(writer.availableBytes(), 68)
})

test('split parts read their own bytes, with their own counters', (t) => {
  const { chain, data } = crateChain()
  const reader = chain.reader()
  t.deepEqual(reader.read(8), data.subarray(0, 8))
  // The offset counts from what is left (byte 8 of the chain), as in the crate.
  const body = reader.splitAt(20)
  t.is(reader.bytesRead(), 8, 'the kept part keeps its count')
  t.is(reader.availableBytes(), 20)
  t.is(body.bytesRead(), 0, 'the split-off part starts at 0, as the crate does')
  t.is(body.availableBytes(), 100)
  t.deepEqual(body.read(10), data.subarray(28, 38))
  t.deepEqual(reader.read(20), data.subarray(8, 28), 'across the 16-byte border, up to the split')
  t.throws(() => reader.read(1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.is(reader.readInto(new Uint8Array(4)), 0, 'the kept part ends at the split')
  t.deepEqual(body.read(90), data.subarray(38, 128))
  t.is(body.bytesRead(), 100)
  t.is(reader.bytesRead(), 28)
})

test('splits compose: split a split, at every offset of the crate chain', (t) => {
  const { chain, data } = crateChain()
  for (let a = 0; a <= 128; a += 3) {
    for (const b of [0, 1, 15, 16, 17, 50]) {
      if (a + b > 128) continue
      const head = chain.reader()
      const tail = head.splitAt(a)
      const middle = tail.splitAt(b) // tail keeps b bytes, middle gets the rest
      t.is(head.availableBytes(), a)
      t.is(tail.availableBytes(), b)
      t.is(middle.availableBytes(), 128 - a - b)
      const got = Buffer.concat([head.read(a), tail.read(b), middle.read(128 - a - b)])
      if (!got.equals(data)) t.fail(`split at ${a} then ${b}: data differs`)
    }
  }
  // A split of the kept part: the parts partition it.
  const r = chain.reader()
  const rest = r.splitAt(100)
  const second = r.splitAt(40)
  t.deepEqual([r.availableBytes(), second.availableBytes(), rest.availableBytes()], [40, 60, 28])
  t.deepEqual(second.read(60), data.subarray(40, 100))
  t.deepEqual(rest.read(28), data.subarray(100))
  t.deepEqual(r.read(40), data.subarray(0, 40))
})

test('a split writer: each part writes its own bytes; the used length is the sum of the parts', (t) => {
  const { chain, memory } = crateChain()
  const header = chain.writer()
  const payload = header.splitAt(10)
  t.is(payload.writeSome(Buffer.alloc(100, 0xbb)), 58)
  t.is(payload.writeSome(Buffer.alloc(1)), 0, 'full')
  t.throws(() => header.write(Buffer.alloc(11)), { instanceOf: RangeError, message: /only 10 writable/ })
  t.is(header.write(Buffer.alloc(10, 0xaa)), 10)
  t.is(header.bytesWritten() + payload.bytesWritten(), 68)
  t.deepEqual(memory.read(DATA_BASE + 128, 68), Buffer.concat([Buffer.alloc(10, 0xaa), Buffer.alloc(58, 0xbb)]))
  t.is(memory.readU8(DATA_BASE + 128 + 68), 0, 'nothing past the chain')
})

test('splits across two adjacent guest memory regions', (t) => {
  const memory = GuestMemory.fromRanges([
    [0, 0x90000],
    [0x90000, 0x10000],
  ])
  const { guard, driver } = makeRig({ size: 8, memory })
  const data = bytes(64, 3)
  memory.write(0x8fff0, data)
  driver.addChain([
    { addr: 0x8fff0, len: 64 },
    { addr: 0x8ffe0, len: 48, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  for (const at of [0, 8, 16, 24, 64]) {
    const r = chain.reader()
    const rest = r.splitAt(at)
    t.deepEqual(rest.read(64 - at), data.subarray(at), `rest after ${at}`)
    t.deepEqual(r.read(at), data.subarray(0, at), `kept ${at}`)
  }
  const w = chain.writer()
  const rest = w.splitAt(20) // the second part starts 4 bytes before the region border
  rest.write(bytes(28, 9))
  w.write(bytes(20, 4))
  t.deepEqual(memory.read(0x8ffe0, 48), Buffer.concat([bytes(20, 4), bytes(28, 9)]))
})

test('splits inside an indirect table', (t) => {
  const { guard, driver, memory } = makeRig({ size: 4 })
  const data = bytes(40, 11)
  memory.write(DATA_BASE, data.subarray(0, 12))
  memory.write(DATA_BASE + 0x100, data.subarray(12, 40))
  driver.addChain(
    [
      { addr: DATA_BASE, len: 12 },
      { addr: DATA_BASE + 0x100, len: 28 },
      { addr: DATA_BASE + 0x200, len: 8, writable: true },
      { addr: DATA_BASE + 0x300, len: 8, writable: true },
    ],
    { indirect: true },
  )
  const chain = guard.popDescriptorChain()!
  t.true(
    chain.descriptors().every((d) => !d.refersToIndirectTable()),
    'the table was expanded',
  )
  const r = chain.reader()
  const rest = r.splitAt(10)
  t.deepEqual(rest.read(30), data.subarray(10))
  t.deepEqual(r.read(10), data.subarray(0, 10))
  const w = chain.writer()
  const tail = w.splitAt(6)
  tail.writeU64(0x1122334455667788n) // straddles the two writable descriptors
  w.write(Buffer.from('abcdef'))
  t.is(memory.read(DATA_BASE + 0x200, 8).toString('hex'), '616263646566' + '8877')
  t.is(memory.read(DATA_BASE + 0x300, 8).toString('hex'), '665544332211' + '0000')
})

test('splitAt over detached guest memory throws DetachedBuffer', (t) => {
  const ab = new ArrayBuffer(0x100000)
  const memory = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }])
  const { guard, driver } = makeRig({ size: 8, memory })
  driver.addChain([
    { addr: DATA_BASE, len: 32 },
    { addr: DATA_BASE + 0x100, len: 32, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  const r = chain.reader()
  const w = chain.writer()
  const part = r.splitAt(16)
  structuredClone(ab, { transfer: [ab] })
  t.throws(() => r.splitAt(4), vqError('DetachedBuffer'))
  t.throws(() => w.splitAt(0), vqError('DetachedBuffer'))
  t.throws(() => part.read(1), vqError('DetachedBuffer'))
  t.throws(() => part.readU8(), vqError('DetachedBuffer'))
  t.is(part.bytesRead(), 0, 'a failed read moves nothing')
  t.is(r.availableBytes(), 16, 'a failed split changes nothing')
})

test('a reader and writer from a chain whose guard was released split and work', (t) => {
  const { queue, guard, driver, memory } = makeRig({ size: 8 })
  const data = bytes(48, 2)
  memory.write(DATA_BASE, data)
  driver.addChain([
    { addr: DATA_BASE, len: 48 },
    { addr: DATA_BASE + 0x100, len: 16, writable: true },
  ])
  driver.addChain([{ addr: DATA_BASE + 0x200, len: 48 }])
  const chain = guard.popDescriptorChain()!
  const r = chain.reader()
  guard.release()
  // A new guard pops the next chain (into the same read-ahead storage).
  const again = queue.lockWithMemory()
  t.truthy(again.popDescriptorChain())
  again.release()
  const rest = r.splitAt(16)
  t.deepEqual(rest.read(32), data.subarray(16))
  t.deepEqual(r.read(16), data.subarray(0, 16))
  const w = chain.writer()
  const tail = w.splitAt(8)
  tail.writeU64(7n)
  w.writeU64(9n)
  t.is(memory.readU64(DATA_BASE + 0x100), 9n)
  t.is(memory.readU64(DATA_BASE + 0x108), 7n)
})

test('SplitOutOfBounds is a VirtioQueueError naming the offset and what is left', (t) => {
  const { chain } = crateChain()
  const r = chain.reader()
  r.read(100)
  const e = t.throws(() => r.splitAt(29), { instanceOf: VirtioQueueError })
  t.is(e?.code, 'SplitOutOfBounds')
  t.regex(e?.message ?? '', /29.*28/)
})

test("the README's example: a virtio-blk request split at its header", (t) => {
  const { guard: q, driver, memory } = makeRig({ size: 8 })
  // Header (type 1 = write, reserved, sector 0x1_0000_0002) and 512 data bytes in one buffer,
  // as some drivers lay them out; then 512 writable bytes and the status byte.
  const header = Buffer.alloc(16)
  header.writeUInt32LE(1, 0)
  header.writeUInt32LE(0xdead, 4)
  header.writeBigUInt64LE(0x1_0000_0002n, 8)
  memory.write(DATA_BASE, Buffer.concat([header, bytes(512, 8)]))
  memory.writeU8(DATA_BASE + 0x800, 0xff)
  driver.addChain([
    { addr: DATA_BASE, len: 528 },
    { addr: DATA_BASE + 0x400, len: 512, writable: true },
    { addr: DATA_BASE + 0x800, len: 1, writable: true },
  ])
  const chain = q.popDescriptorChain()!
  const head = chain.reader()
  const data = head.splitAt(16)
  t.is(head.readU32(), 1)
  t.is(head.readU32(), 0xdead)
  t.is(head.readU64(), 0x1_0000_0002n)
  t.is(head.availableBytes(), 0)
  t.deepEqual(data.read(data.availableBytes()), bytes(512, 8))
  const out = chain.writer()
  const status = out.splitAt(out.availableBytes() - 1)
  t.is(out.availableBytes(), 512)
  status.writeU8(0)
  t.is(memory.readU8(DATA_BASE + 0x800), 0, 'the status byte is the last writable byte')
  t.is(memory.readU8(DATA_BASE + 0x400), 0, 'the data part was not written')
  q.addUsed(chain.headIndex, out.bytesWritten() + status.bytesWritten())
  t.deepEqual(driver.popUsed(), { head: chain.headIndex, len: 1, token: undefined })
})
