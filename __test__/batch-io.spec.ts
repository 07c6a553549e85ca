// ChainBatch.readInto / write / readFromFile / writeToFile: copies and preadv/pwritev on one
// chain of a batch, with no Reader or Writer: their data and byte offsets (`skip`), short
// reads, errno errors, detached memory, bad indices and words a caller tampered with.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import test from 'ava'

import { ChainBatch, GuestMemory, SystemError } from '..'
import { argRangeError, argTypeError, DATA_BASE, makeRig, vqError } from './helpers/queue-setup'
import { bytes, tempFile } from './helpers/scratch-fs'

/** A virtio-blk-like chain: a 16-byte header split 10 + 6, data, and the status byte. */
function blkRig(memory?: GuestMemory) {
  const rig = makeRig({ size: 8, ...(memory ? { memory } : {}) })
  rig.driver.addChain([
    { addr: DATA_BASE, len: 10 },
    { addr: DATA_BASE + 0x100, len: 6 + 20 }, // header end + 20 bytes of OUT data
    { addr: DATA_BASE + 0x200, len: 8, writable: true },
    { addr: DATA_BASE + 0x300, len: 0, writable: true },
    { addr: DATA_BASE + 0x400, len: 9, writable: true }, // 8 data bytes + the status byte
  ])
  rig.driver.addChain([{ addr: DATA_BASE + 0x800, len: 4 }])
  const batch = new ChainBatch(4)
  t0(rig.guard.popChains(batch) === 2)
  return { ...rig, batch }
}

function t0(ok: boolean): void {
  if (!ok) throw new Error('the rig did not pop its chains')
}

test('readInto and write: copies at byte offsets across descriptors, without a Reader or Writer', (t) => {
  const { batch, memory } = blkRig()
  const data = bytes(36, 5)
  memory.write(DATA_BASE, data.subarray(0, 10))
  memory.write(DATA_BASE + 0x100, data.subarray(10, 36))
  const header = new Uint8Array(16)
  t.is(batch.readInto(0, header), 16, 'a header split over two descriptors')
  t.deepEqual(Buffer.from(header), data.subarray(0, 16))
  const some = Buffer.alloc(8)
  t.is(batch.readInto(0, some, 12), 8)
  t.deepEqual(some, data.subarray(12, 20))
  t.is(batch.readInto(0, Buffer.alloc(100), 20), 16, 'what is left')
  t.is(batch.readInto(0, Buffer.alloc(4), 36), 0, 'at the end: 0')
  t.is(batch.readInto(1, header), 4, 'another chain')
  // Writable: 8 bytes, an empty descriptor, 9 bytes.
  t.is(batch.write(0, Uint8Array.of(1, 2, 3), 6), 3, 'across the empty descriptor')
  t.deepEqual(memory.read(DATA_BASE + 0x206, 2), Buffer.of(1, 2))
  t.is(memory.readU8(DATA_BASE + 0x400), 3)
  t.is(batch.write(0, Uint8Array.of(0xee), 16), 1, 'the last writable byte: a status byte')
  t.is(memory.readU8(DATA_BASE + 0x408), 0xee)
  t.is(batch.write(0, new Uint8Array(0), 17), 0)
  t.throws(() => batch.write(0, new Uint8Array(2), 16), {
    instanceOf: RangeError,
    code: 'ERR_OUT_OF_RANGE',
    message: /only 1 writable/,
  })
  t.is(memory.readU8(DATA_BASE + 0x408), 0xee, 'a write that does not fit writes nothing')
  t.throws(() => batch.write(1, Uint8Array.of(1)), { instanceOf: RangeError, message: /only 0 writable/ })
})

test('readFromFile and writeToFile: one preadv/pwritev at byte offsets of the chain', (t) => {
  const { batch, memory } = blkRig()
  const data = bytes(4096, 3)
  const fd = tempFile(t, data)
  t.is(batch.readFromFile(0, fd, 100, 0, 16), 16, 'all but the status byte')
  t.deepEqual(memory.read(DATA_BASE + 0x200, 8), data.subarray(100, 108))
  t.deepEqual(memory.read(DATA_BASE + 0x400, 8), data.subarray(108, 116))
  t.is(memory.readU8(DATA_BASE + 0x408), 0, 'the status byte is untouched')
  t.is(batch.readFromFile(0, fd, 200, 5, 4), 4, 'from inside a descriptor, across the empty one')
  t.deepEqual(memory.read(DATA_BASE + 0x205, 3), data.subarray(200, 203))
  t.is(memory.readU8(DATA_BASE + 0x400), data[203])
  t.is(batch.readFromFile(0, fd, 4090), 6, 'default length: all from skip on; short at the end of the file')
  t.is(batch.readFromFile(0, fd, 5000, 17), 0, 'nothing left')
  // OUT: the readable bytes after the 16-byte header.
  const out = bytes(36, 9)
  memory.write(DATA_BASE, out.subarray(0, 10))
  memory.write(DATA_BASE + 0x100, out.subarray(10, 36))
  t.is(batch.writeToFile(0, fd, 1024, 16), 20)
  t.is(batch.writeToFile(0, fd, 0, 3, 10), 10, 'across the two readable descriptors')
  const file = fs.readFileSync(`/proc/self/fd/${fd}`)
  t.deepEqual(file.subarray(1024, 1044), out.subarray(16, 36))
  t.deepEqual(file.subarray(0, 10), out.subarray(3, 13))
  t.is(file.length, 4096)
})

test('errors: indices, offsets, lengths and arguments, as readFromFile and readInto check them', (t) => {
  const { batch } = blkRig()
  const fd = tempFile(t, bytes(64))
  for (const call of [
    (i: number) => batch.readInto(i, new Uint8Array(1)),
    (i: number) => batch.write(i, new Uint8Array(1)),
    (i: number) => batch.readFromFile(i, fd, 0),
    (i: number) => batch.writeToFile(i, fd, 0),
  ]) {
    t.throws(() => call(2), { ...argRangeError('i'), message: /from 0 to 1 \(the last pop stored 2 chains\)/ })
    t.throws(() => call(-1), argRangeError('i'))
    t.throws(() => call(0.5), argRangeError('i'))
    t.throws(() => call('0' as never), argTypeError('i'))
  }
  t.throws(() => batch.readInto(0, [1, 2] as never), argTypeError('target'))
  t.throws(() => batch.write(0, 'ab' as never), argTypeError('bytes'))
  t.throws(() => batch.readInto(0, new Uint8Array(1), 37), { instanceOf: RangeError, message: /only 36 readable/ })
  t.throws(() => batch.write(0, new Uint8Array(1), 18), { instanceOf: RangeError, message: /only 17 writable/ })
  t.throws(() => batch.readInto(0, new Uint8Array(1), -1), argRangeError('skip'))
  t.throws(() => batch.readFromFile(0, fd, 0, 0, 18), {
    instanceOf: RangeError,
    code: 'ERR_OUT_OF_RANGE',
    message: /only 17 writable bytes are left/,
  })
  t.throws(() => batch.readFromFile(0, fd, 0, 17, 1), { instanceOf: RangeError, message: /only 0 writable/ })
  t.throws(() => batch.writeToFile(0, fd, 0, 16, 21), { instanceOf: RangeError, message: /only 20 readable/ })
  t.throws(() => batch.readFromFile(0, fd, -1), argRangeError('position'))
  t.throws(() => batch.readFromFile(0, fd, 2 ** 53), argRangeError('position'))
  t.throws(() => batch.readFromFile(0, fd, 0, 0, 1.5), argRangeError('length'))
  t.throws(() => batch.writeToFile(0, fd, 0, '1' as never), argTypeError('skip'))
  t.throws(() => batch.readFromFile(0, -1, 0), argRangeError('fd'))
  t.throws(() => batch.readFromFile(0, 2 ** 31, 0), argRangeError('fd'))
  t.throws(() => batch.readFromFile(0, '3' as never, 0), argTypeError('fd'))
  // System call errors: the errno's name as code, errno and syscall as on Node's errors.
  const closed = fs.openSync(__filename, 'r')
  fs.closeSync(closed)
  const bad = t.throws(
    () => batch.readFromFile(0, closed, 0),
    vqError('EBADF', /^EBADF: bad file descriptor, preadv of \d+ bytes at offset 0 of fd \d+$/),
  )
  t.true(bad instanceof SystemError)
  t.is((bad as SystemError).errno, -9)
  t.is((bad as SystemError).syscall, 'preadv')
  const ro = fs.openSync(__filename, 'r')
  t.teardown(() => fs.closeSync(ro))
  t.throws(() => batch.writeToFile(0, ro, 0, 16), vqError('EBADF', /pwritev/))
  const dir = fs.openSync(os.tmpdir(), 'r')
  t.teardown(() => fs.closeSync(dir))
  t.throws(() => batch.readFromFile(0, dir, 0), vqError('EISDIR'))
  t.is(batch.readFromFile(0, fd, 0), 17, 'still usable')
})

test('a batch never popped, or popped empty, has no chain to do I/O on', (t) => {
  const batch = new ChainBatch(2)
  t.throws(() => batch.readInto(0, new Uint8Array(1)), { ...argRangeError('i'), message: /stored no chains/ })
  batch.words[0] = 1 // a count written by hand: still no memory, no chain
  t.throws(() => batch.readFromFile(0, 0, 0), { ...argRangeError('i'), message: /stored no chains/ })
  const { guard } = makeRig({ size: 8 })
  t.is(guard.popChains(batch), 0)
  t.throws(() => batch.write(0, new Uint8Array(1)), { ...argRangeError('i'), message: /stored no chains/ })
})

test('detached guest memory: DetachedBuffer, nothing read or written', (t) => {
  const ab = new ArrayBuffer(0x100000)
  const { batch } = blkRig(GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }]))
  const fd = tempFile(t, bytes(64))
  const moved = structuredClone(ab, { transfer: [ab] })
  t.throws(() => batch.readFromFile(0, fd, 0), vqError('DetachedBuffer'))
  t.throws(() => batch.writeToFile(0, fd, 0), vqError('DetachedBuffer'))
  t.throws(() => batch.readInto(0, new Uint8Array(4)), vqError('DetachedBuffer'))
  t.throws(() => batch.write(0, new Uint8Array(4)), vqError('DetachedBuffer'))
  t.deepEqual(fs.readFileSync(`/proc/self/fd/${fd}`), bytes(64), 'the file is unchanged')
  t.is(new Uint8Array(moved)[DATA_BASE + 0x200], 0, 'the transferred memory is unchanged')
})

test('a guest buffer straddling the end of guest memory: readFromFile/writeToFile refuse the chain as write/readInto do', (t) => {
  const rig = makeRig({ size: 8 })
  const fd = tempFile(t, bytes(4096))
  const end = rig.memory.size
  rig.driver.addChain([
    { addr: DATA_BASE, len: 16 },
    { addr: end - 8, len: 64, writable: true }, // 8 bytes in guest memory, 56 past its end
  ])
  rig.driver.addChain([{ addr: end - 8, len: 64 }])
  const batch = new ChainBatch(4)
  t0(rig.guard.popChains(batch) === 2)
  rig.memory.write(end - 8, Buffer.alloc(8, 0xee))
  const refused = vqError('InvalidChain', /^descriptor 1 of chain 0 \(0x[0-9a-f]+, 64 bytes\) is not in guest memory$/)
  t.throws(() => batch.write(0, Buffer.alloc(4)), refused)
  t.throws(() => batch.readFromFile(0, fd, 0, 0, 4), refused, 'not 4 bytes into the part in memory')
  t.throws(() => batch.readFromFile(0, fd, 0), refused)
  t.deepEqual(rig.memory.read(end - 8, 8), Buffer.alloc(8, 0xee), 'nothing read into guest memory')
  const readable = vqError('InvalidChain', /^descriptor 0 of chain 1 /)
  t.throws(() => batch.readInto(1, new Uint8Array(4)), readable)
  t.throws(() => batch.writeToFile(1, fd, 0, 0, 4), readable)
  const back = Buffer.alloc(4)
  fs.readSync(fd, back, 0, 4, 0)
  t.deepEqual(back, bytes(4), 'nothing written to the file')
})

test('tampered words: typed errors, never a hang or an access outside guest memory', (t) => {
  const { batch, memory } = blkRig()
  const fd = tempFile(t, bytes(4096))
  const w = batch.words
  const { HEADER_WORDS, CHAIN_WORDS, DESC_WORDS } = ChainBatch
  const c = HEADER_WORDS + CHAIN_WORDS * 0
  const saved = w.slice()
  const restore = () => w.set(saved)
  // The chain's descriptors outside those the pop stored.
  w[c + 2] = 100
  t.throws(() => batch.readFromFile(0, fd, 0), vqError('InvalidChain', /not among the 6/))
  t.throws(() => batch.readInto(0, new Uint8Array(4)), vqError('InvalidChain'))
  restore()
  w[c + 1] = 0xffffffff
  t.throws(() => batch.write(0, new Uint8Array(1)), vqError('InvalidChain'))
  restore()
  // A count above maxChains: chain records end at maxChains.
  w[0] = 1000
  t.throws(() => batch.readInto(5, new Uint8Array(1)), argRangeError('i'))
  restore()
  // A writable buffer moved past the end of guest memory, or to an address of 2^64 - 16.
  const d = batch.descriptorBase + DESC_WORDS * 4 // the 9-byte writable descriptor
  w[d] = memory.size - 4
  t.throws(() => batch.readFromFile(0, fd, 0), vqError('InvalidChain', /not in guest memory/))
  t.throws(() => batch.write(0, new Uint8Array(1), 16), vqError('InvalidChain', /descriptor 4 of chain 0/))
  w[d] = 0xfffffff0
  w[d + 1] = 0xffffffff
  t.throws(() => batch.readFromFile(0, fd, 0), vqError('InvalidChain'))
  t.throws(() => batch.write(0, new Uint8Array(1)), vqError('InvalidChain'))
  restore()
  // Byte totals in the chain record are not used: a lie there changes nothing.
  w[c + 5] = 1000
  t.throws(() => batch.readFromFile(0, fd, 0, 0, 100), { instanceOf: RangeError, message: /only 17 writable/ })
  t.is(batch.readFromFile(0, fd, 0), 17)
  restore()
  t.is(batch.write(0, Uint8Array.of(7), 16), 1, 'usable again once restored')
  t.is(memory.readU8(DATA_BASE + 0x408), 7)
})

test('a batch reused across queues works on the memory of the queue it was last popped from', (t) => {
  const a = makeRig({ size: 8 })
  const b = makeRig({ size: 8 })
  a.memory.write(DATA_BASE, Buffer.from('from a'))
  b.memory.write(DATA_BASE, Buffer.from('from b'))
  a.driver.addChain([{ addr: DATA_BASE, len: 6 }])
  b.driver.addChain([{ addr: DATA_BASE, len: 6 }])
  const batch = new ChainBatch(4)
  const got = Buffer.alloc(6)
  t.is(a.guard.popChains(batch), 1)
  batch.readInto(0, got)
  t.is(got.toString(), 'from a')
  t.is(b.guard.popChains(batch), 1)
  batch.readInto(0, got)
  t.is(got.toString(), 'from b')
})

test('without a call area (the span as a Uint32Array): a length of 2^32 or more is refused, not wrapped', (t) => {
  const fixture = path.join(__dirname, 'fixtures', 'no-call-area.js')
  const r = spawnSync(process.execPath, [fixture], { encoding: 'utf8', timeout: 60_000 })
  t.is(r.status, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    callArea: true,
    ordinary: 32,
    huge: 'ERR_OUT_OF_RANGE: The "length" argument is out of range: it must be an integer from 0 to 4294967295; received 4294967312',
    untouched: true,
  })
})
