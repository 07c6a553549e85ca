// The rest of virtio-queue 0.14.0's descriptor_utils.rs tests, ported with the crate's
// chains and numbers (the split_* tests are in io-split.spec.ts; read_full, write_full,
// the incompatible-chain and shattered-object tests in io-fields.spec.ts). The crate's
// `read_exact`/`write_all` are read()/write(), `io::Read::read` is readInto(),
// `io::Write::write` is writeSome().
import test from 'ava'

import { DATA_BASE, MEM_SIZE, makeRig, vqError } from './helpers/queue-setup'

/** create_descriptor_chain: buffers of the given sizes back to back from DATA_BASE. */
function chainOf(spec: Array<[len: number, writable: boolean]>) {
  const rig = makeRig({ size: 16 })
  let addr = DATA_BASE
  rig.driver.addChain(
    spec.map(([len, writable]) => {
      const d = { addr, len, writable }
      addr += len
      return d
    }),
  )
  return { ...rig, chain: rig.guard.popDescriptorChain()! }
}

test('reader_test_inv_desc_addr: a buffer outside guest memory makes reader() fail', (t) => {
  const { guard, driver } = makeRig({ size: 16 })
  driver.writeDescriptor(0, { addr: MEM_SIZE + 1, len: 1, flags: 0, next: 1 })
  driver.writeAvailEntry(0, 0)
  driver.setAvailIdx(1)
  const chain = guard.popDescriptorChain()!
  t.throws(() => chain.reader(), vqError('InvalidChain'))
})

test('reader_test_simple_chain: 8 + 16 + 18 + 64 readable bytes', (t) => {
  const { chain } = chainOf([
    [8, false],
    [16, false],
    [18, false],
    [64, false],
  ])
  const reader = chain.reader()
  t.is(reader.availableBytes(), 106)
  t.is(reader.bytesRead(), 0)
  t.is(reader.read(64).length, 64)
  t.is(reader.availableBytes(), 42)
  t.is(reader.bytesRead(), 64)
  t.is(reader.readInto(new Uint8Array(64)), 42)
  t.is(reader.availableBytes(), 0)
  t.is(reader.bytesRead(), 106)
})

test('writer_test_simple_chain: 8 + 16 + 18 + 64 writable bytes', (t) => {
  const { chain } = chainOf([
    [8, true],
    [16, true],
    [18, true],
    [64, true],
  ])
  const writer = chain.writer()
  t.is(writer.availableBytes(), 106)
  t.is(writer.bytesWritten(), 0)
  t.is(writer.write(new Uint8Array(64)), 64)
  t.is(writer.availableBytes(), 42)
  t.is(writer.bytesWritten(), 64)
  t.is(writer.writeSome(new Uint8Array(64)), 42)
  t.is(writer.availableBytes(), 0)
  t.is(writer.bytesWritten(), 106)
})

test('reader_writer_shared_chain: read all 128 readable bytes, write 68 of them back', (t) => {
  const { chain, memory } = chainOf([
    [16, false],
    [16, false],
    [96, false],
    [64, true],
    [1, true],
    [3, true],
  ])
  const data = Buffer.from(Array.from({ length: 128 }, (_, i) => (i * 5 + 1) & 0xff))
  memory.write(DATA_BASE, data)
  const reader = chain.reader()
  const writer = chain.writer()
  t.is(reader.bytesRead(), 0)
  t.is(writer.bytesWritten(), 0)
  // read_to_end: readInto until it returns 0.
  const buffer = Buffer.alloc(200)
  let n = 0
  for (let k = reader.readInto(buffer); k > 0; k = reader.readInto(buffer.subarray(n))) n += k
  t.is(n, 128)
  t.deepEqual(buffer.subarray(0, 128), data)
  // The writable descriptors are only 68 bytes long.
  writer.write(buffer.subarray(0, 68))
  t.is(reader.availableBytes(), 0)
  t.is(reader.bytesRead(), 128)
  t.is(writer.availableBytes(), 0)
  t.is(writer.bytesWritten(), 68)
  t.deepEqual(memory.read(DATA_BASE + 128, 68), data.subarray(0, 68))
})

test('reader_unexpected_eof: read(1024) of 512 bytes fails and reads nothing', (t) => {
  const { chain } = chainOf([
    [256, false],
    [256, false],
  ])
  const reader = chain.reader()
  t.throws(() => reader.read(1024), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: /only 512/ })
  t.is(reader.bytesRead(), 0)
  t.is(reader.availableBytes(), 512)
})
