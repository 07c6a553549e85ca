// Reader/Writer and zero-copy buffer views over a chain's buffers.
import test from 'ava'

import { GuestMemory, Reader, Writer } from '..'
import { argRangeError, argTypeError, DATA_BASE, makeRig, vqError } from './helpers/queue-setup'

const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff))

test('Reader: reads readable buffers in order, across descriptors', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  const data = bytes(100)
  memory.write(DATA_BASE, data.subarray(0, 10))
  memory.write(DATA_BASE + 0x100, data.subarray(10, 40))
  memory.write(DATA_BASE + 0x200, data.subarray(40, 100))
  driver.addChain([
    { addr: DATA_BASE, len: 10 },
    { addr: DATA_BASE + 0x100, len: 30 },
    { addr: DATA_BASE + 0x180, len: 0 },
    { addr: DATA_BASE + 0x200, len: 60 },
    { addr: DATA_BASE + 0x1000, len: 50, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  const r = chain.reader()
  t.true(r instanceof Reader)
  t.is(r.availableBytes(), 100)
  t.is(r.bytesRead(), 0)
  t.deepEqual(r.read(4), data.subarray(0, 4))
  t.deepEqual(r.read(20), data.subarray(4, 24), 'spans descriptors')
  t.is(r.bytesRead(), 24)
  t.is(r.availableBytes(), 76)
  t.is(r.read(0).length, 0)
  const target = new Uint8Array(50)
  t.is(r.readInto(target), 50)
  t.deepEqual(Buffer.from(target), data.subarray(24, 74))
  // readInto takes what is left when the target is larger.
  const big = new Uint8Array(64).fill(0xee)
  t.is(r.readInto(big), 26)
  t.deepEqual(Buffer.from(big.subarray(0, 26)), data.subarray(74))
  t.is(big[26], 0xee, 'the rest of the target is untouched')
  t.is(r.availableBytes(), 0)
  t.is(r.readInto(new Uint8Array(4)), 0)
  t.is(r.bytesRead(), 100)
  // A copy, not a view.
  const again = chain.reader().read(4)
  again[0] = 0
  t.is(memory.readU8(DATA_BASE), data[0])
})

test('Reader: reading past the end throws RangeError and consumes nothing', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  driver.addChain([{ addr: DATA_BASE, len: 8 }])
  const r = guard.popDescriptorChain()!.reader()
  r.read(3)
  t.throws(() => r.read(6), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: /only 5 readable bytes/ })
  t.is(r.bytesRead(), 3)
  t.is(r.availableBytes(), 5)
  t.is(r.read(5).length, 5)
  t.throws(() => r.read(1), { instanceOf: RangeError })
  t.throws(() => r.read(-1), argRangeError('length'))
  t.throws(() => r.read(1.5), argRangeError('length'))
  t.throws(() => r.read('1' as never), argTypeError('length'))
  t.throws(() => r.readInto([0] as never), argTypeError('target'))
})

test('Writer: writes writable buffers in order, across descriptors', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  driver.addChain([
    { addr: DATA_BASE, len: 4 },
    { addr: DATA_BASE + 0x100, len: 3, writable: true },
    { addr: DATA_BASE + 0x200, len: 0, writable: true },
    { addr: DATA_BASE + 0x300, len: 13, writable: true },
  ])
  const w = guard.popDescriptorChain()!.writer()
  t.true(w instanceof Writer)
  t.is(w.availableBytes(), 16)
  t.is(w.write(Buffer.from('ab')), 2)
  t.is(w.write(new Uint8Array([0x63, 0x64, 0x65])), 3)
  t.is(w.write(Buffer.alloc(0)), 0)
  t.is(w.bytesWritten(), 5)
  t.is(w.availableBytes(), 11)
  t.is(memory.read(DATA_BASE + 0x100, 3).toString(), 'abc')
  t.is(memory.read(DATA_BASE + 0x300, 2).toString(), 'de')
  t.is(w.write(Buffer.from('fghijklmnop')), 11)
  t.is(memory.read(DATA_BASE + 0x300, 13).toString(), 'defghijklmnop')
  t.is(w.availableBytes(), 0)
  t.is(memory.readU32(DATA_BASE), 0, 'the readable buffer was not written')
})

test('Writer: writing more than fits throws RangeError and writes nothing', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  driver.addChain([
    { addr: DATA_BASE, len: 4, writable: true },
    { addr: DATA_BASE + 0x100, len: 4, writable: true },
  ])
  const w = guard.popDescriptorChain()!.writer()
  w.write(Buffer.from('x'))
  t.throws(() => w.write(Buffer.alloc(8, 0xff)), {
    instanceOf: RangeError,
    code: 'ERR_OUT_OF_RANGE',
    message: /only 7 writable bytes/,
  })
  t.is(w.bytesWritten(), 1)
  t.is(memory.read(DATA_BASE, 4).toString('hex'), '78000000')
  t.is(memory.readU32(DATA_BASE + 0x100), 0)
  t.throws(() => w.write('abc' as never), argTypeError('bytes'))
  t.throws(() => w.write([1] as never), argTypeError('bytes'))
})

test('a buffer spanning two adjacent guest memory regions works (the crate refuses it)', (t) => {
  const memory = GuestMemory.fromRanges([
    [0, 0x90000],
    [0x90000, 0x10000],
  ])
  const { guard, driver } = makeRig({ size: 8, memory })
  const data = bytes(64, 3)
  memory.write(0x8fff0, data)
  t.deepEqual(memory.regions[0]!.buffer.subarray(0x8fff0), data.subarray(0, 16))
  driver.addChain([
    { addr: 0x8fff0, len: 64 },
    { addr: 0x8ffe0, len: 48, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  const r = chain.reader()
  t.deepEqual(r.read(10), data.subarray(0, 10))
  t.deepEqual(r.read(54), data.subarray(10))
  const w = chain.writer()
  w.write(bytes(48, 9))
  t.deepEqual(memory.read(0x8ffe0, 48), bytes(48, 9))
  t.deepEqual(memory.regions[1]!.buffer.subarray(0, 16), bytes(48, 9).subarray(32))
  // buffers(): one view per region piece.
  t.deepEqual(
    chain.readableBuffers().map((b) => b.length),
    [16, 48],
  )
  t.deepEqual(
    chain.writableBuffers().map((b) => b.length),
    [32, 16],
  )
  t.deepEqual(
    chain.buffers().map((b) => b.length),
    [16, 48, 32, 16],
  )
})

test('buffers()/readableBuffers()/writableBuffers() are zero-copy views in chain order', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  driver.addChain([
    { addr: DATA_BASE, len: 8 },
    { addr: DATA_BASE + 0x10, len: 0 },
    { addr: DATA_BASE + 0x20, len: 4, writable: true },
    { addr: DATA_BASE + 0x40, len: 2, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  const all = chain.buffers()
  t.deepEqual(
    all.map((b) => b.length),
    [8, 4, 2],
    'empty buffers give no view',
  )
  t.true(all.every((b) => Buffer.isBuffer(b)))
  const [readable] = chain.readableBuffers()
  const writable = chain.writableBuffers()
  t.is(chain.readableBuffers().length, 1)
  t.deepEqual(
    writable.map((b) => b.length),
    [4, 2],
  )
  memory.writeU32(DATA_BASE + 4, 0xa1b2c3d4)
  t.is(readable!.readUInt32LE(4), 0xa1b2c3d4, 'guest writes show in the view')
  writable[0]!.writeUInt32LE(0x01020304)
  writable[1]!.writeUInt16LE(0xbeef)
  t.is(memory.readU32(DATA_BASE + 0x20), 0x01020304, 'view writes are guest writes')
  t.is(memory.readU16(DATA_BASE + 0x40), 0xbeef)
  all[0]![0] = 0x77
  t.is(memory.readU8(DATA_BASE), 0x77)
})

test('reader()/writer()/buffers() on a buffer outside guest memory: InvalidChain', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  driver.writeDescriptor(0, { addr: DATA_BASE, len: 8, flags: 1, next: 1 })
  driver.writeDescriptor(1, { addr: 0x200000, len: 8, flags: 1, next: 2 })
  driver.writeDescriptor(2, { addr: 0xffff8, len: 16, flags: 2, next: 0 })
  driver.writeAvailEntry(0, 0)
  driver.setAvailIdx(1)
  const chain = guard.popDescriptorChain()!
  t.true(chain.isComplete)
  t.throws(() => chain.reader(), vqError('InvalidChain', /0x200000/))
  t.throws(() => chain.readableBuffers(), vqError('InvalidChain'))
  t.throws(() => chain.writer(), vqError('InvalidChain', /0xffff8/), 'partly outside memory')
  t.throws(() => chain.writableBuffers(), vqError('InvalidChain'))
  t.throws(() => chain.buffers(), vqError('InvalidChain'))
})

test('indirect end to end: the device reads and writes through the table, the driver sees len', (t) => {
  const { guard, driver, memory, allocator } = makeRig({ size: 4, eventIdx: true })
  const request = Buffer.from('GET /virtio HTTP/1.1\r\n')
  memory.write(DATA_BASE, request)
  const head = driver.addChain(
    [
      { addr: DATA_BASE, len: request.length },
      { addr: DATA_BASE + 0x100, len: 8, writable: true },
      { addr: DATA_BASE + 0x200, len: 64, writable: true },
    ],
    { indirect: true, token: 'req' },
  )
  t.true(driver.kick())
  const chain = guard.popDescriptorChain()!
  t.is(chain.headIndex, head)
  t.is(chain.length, 3)
  const got = chain.reader().read(request.length)
  t.deepEqual(got, request)
  const w = chain.writer()
  const reply = Buffer.from('HTTP/1.1 200 OK\r\n')
  w.write(reply)
  guard.addUsed(chain.headIndex, w.bytesWritten())
  t.true(guard.needsNotification())
  t.deepEqual(driver.popUsed(), { head, len: reply.length, token: 'req' })
  t.is(memory.read(DATA_BASE + 0x100, 8).toString(), reply.subarray(0, 8).toString())
  t.is(memory.read(DATA_BASE + 0x200, reply.length - 8).toString(), reply.subarray(8).toString())
  t.is(allocator.allocationCount, 0, 'the driver freed the table when the chain came back')
})
