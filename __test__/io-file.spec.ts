// Writer.readFromFile / Reader.writeToFile: preadv/pwritev between a file and a chain's
// buffers in one native call. Their data and cursors, short reads at the end of the file,
// errno errors (SystemError, as Node's fs errors), off Linux (ENOSYS), detached memory, and callers that tamper with the chain's words.
import * as fs from 'node:fs'
import * as os from 'node:os'
import test, { type ExecutionContext } from 'ava'

import { GuestMemory, SystemError, VirtioQueueError } from '..'
import { native } from '../lib/native'
import { argRangeError, argTypeError, DATA_BASE, makeRig, vqError } from './helpers/queue-setup'
import { bytes, tempFile } from './helpers/scratch-fs'

/**
 * `fn` throws a SystemError for `code` as Node's fs errors have it: also a VirtioQueueError,
 * `errno` the negative number, `syscall`; and the message names the errno first.
 */
function throwsSystemError(
  t: ExecutionContext,
  fn: () => unknown,
  code: keyof typeof os.constants.errno,
  syscall: SystemError['syscall'],
  message?: RegExp,
): SystemError {
  const e = t.throws(fn, { instanceOf: SystemError, code, message: new RegExp(`^${code}: `) })
  t.true(e instanceof VirtioQueueError)
  t.is(e?.errno, -os.constants.errno[code])
  t.is(e?.syscall, syscall)
  if (message) t.regex(e?.message ?? '', message)
  return e!
}

/** A chain of 8 readable and 32 writable bytes, its writer and reader, and a 64-byte file. */
function smallChain(t: { teardown(fn: () => void): void }) {
  const { guard, driver } = makeRig({ size: 8 })
  const fd = tempFile(t, bytes(64))
  driver.addChain([
    { addr: DATA_BASE, len: 8 },
    { addr: DATA_BASE + 0x100, len: 32, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  return { fd, w: chain.writer(), r: chain.reader() }
}

test('readFromFile: fills the writable buffers in order from a file position, across descriptors and regions', (t) => {
  // Two adjacent regions: the second writable buffer spans them.
  const memory = GuestMemory.fromRanges([
    [0, 0x90000],
    [0x90000, 0x10000],
  ])
  const { guard, driver } = makeRig({ size: 8, memory })
  const data = bytes(8192, 3)
  const fd = tempFile(t, data)
  driver.addChain([
    { addr: DATA_BASE, len: 16 }, // a readable header, skipped
    { addr: DATA_BASE + 0x100, len: 10, writable: true },
    { addr: 0x8fff0, len: 0x20, writable: true }, // 16 bytes in each region
    { addr: DATA_BASE + 0x300, len: 0, writable: true },
    { addr: DATA_BASE + 0x400, len: 100, writable: true },
  ])
  const w = guard.popDescriptorChain()!.writer()
  t.is(w.readFromFile(fd, 1000, 4), 4)
  t.is(w.bytesWritten(), 4)
  t.is(w.readFromFile(fd, 2000, 40), 40, 'from inside a descriptor, across three')
  t.is(w.bytesWritten(), 44)
  t.is(w.availableBytes(), 98)
  t.is(w.readFromFile(fd, 3000), 98, 'default length: all that is left')
  t.is(w.availableBytes(), 0)
  t.deepEqual(memory.read(DATA_BASE + 0x100, 4), data.subarray(1000, 1004))
  t.deepEqual(memory.read(DATA_BASE + 0x104, 6), data.subarray(2000, 2006))
  t.deepEqual(memory.read(0x8fff0, 0x20), data.subarray(2006, 2038))
  t.deepEqual(memory.read(DATA_BASE + 0x400, 2), data.subarray(2038, 2040))
  t.deepEqual(memory.read(DATA_BASE + 0x402, 98), data.subarray(3000, 3098))
  t.is(memory.readU8(DATA_BASE), 0, 'the readable buffer is untouched')
  t.is(fs.fstatSync(fd).size, 8192)
  t.is(w.readFromFile(fd, 0), 0, 'nothing left: 0')
})

test('readFromFile: stops at the end of the file and says how much it read; the cursor follows', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  const fd = tempFile(t, bytes(100))
  driver.addChain([
    { addr: DATA_BASE, len: 64, writable: true },
    { addr: DATA_BASE + 0x100, len: 64, writable: true },
  ])
  const w = guard.popDescriptorChain()!.writer()
  t.is(w.readFromFile(fd, 30, 120), 70, 'short: the file ends at 100')
  t.is(w.bytesWritten(), 70)
  t.deepEqual(memory.read(DATA_BASE + 0x100, 6), bytes(100).subarray(94, 100))
  t.is(w.readFromFile(fd, 100), 0, 'at the end: 0')
  t.is(w.readFromFile(fd, 5000), 0, 'past the end: 0')
  w.writeU8(0xab) // the cursor stands right after the bytes read
  t.is(memory.readU8(DATA_BASE + 0x100 + 6), 0xab)
})

test('writeToFile: writes the readable buffers to a file position, across descriptors; the reader moves on', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  const data = bytes(300, 9)
  memory.write(DATA_BASE, data.subarray(0, 16))
  memory.write(DATA_BASE + 0x100, data.subarray(16, 116))
  memory.write(DATA_BASE + 0x200, data.subarray(116, 300))
  const fd = tempFile(t, Buffer.alloc(0))
  driver.addChain([
    { addr: DATA_BASE, len: 16 },
    { addr: DATA_BASE + 0x100, len: 100 },
    { addr: DATA_BASE + 0x200, len: 184 },
    { addr: DATA_BASE + 0x1000, len: 8, writable: true }, // not the reader's
  ])
  const r = guard.popDescriptorChain()!.reader()
  t.deepEqual(r.read(16), data.subarray(0, 16))
  t.is(r.writeToFile(fd, 512, 150), 150)
  t.is(r.bytesRead(), 166)
  t.is(r.writeToFile(fd, 0), 134)
  t.is(r.availableBytes(), 0)
  const file = fs.readFileSync(`/proc/self/fd/${fd}`)
  t.is(file.length, 662)
  t.deepEqual(file.subarray(512), data.subarray(16, 166))
  t.deepEqual(file.subarray(0, 134), data.subarray(166))
  const head = Buffer.alloc(4)
  t.is(fs.readSync(fd, head, 0, 4, null), 4, "the file's own offset was not moved (still 0)")
  t.deepEqual(head, data.subarray(166, 170))
})

test('errors: errno names as code, argument errors, and nothing moves', (t) => {
  const { fd, w, r } = smallChain(t)
  // A closed descriptor.
  const closed = fs.openSync(__filename, 'r')
  fs.closeSync(closed)
  const bad = throwsSystemError(t, () => w.readFromFile(closed, 0), 'EBADF', 'preadv')
  t.is(bad.message, `EBADF: bad file descriptor, preadv of 32 bytes at offset 0 of fd ${closed}`)
  t.is(bad.name, 'SystemError')
  // What Node's own fs errors carry for the same errno (-9 on Linux).
  const node = t.throws(() => fs.readSync(closed, Buffer.alloc(1))) as NodeJS.ErrnoException
  t.is(node.code, bad.code)
  t.is(node.errno, bad.errno)
  throwsSystemError(t, () => r.writeToFile(closed, 7, 5), 'EBADF', 'pwritev', /, pwritev of 5 bytes at offset 7 of fd/)
  // A directory cannot be read; a read-only fd cannot be written.
  const dir = fs.openSync(os.tmpdir(), 'r')
  t.teardown(() => fs.closeSync(dir))
  throwsSystemError(t, () => w.readFromFile(dir, 0), 'EISDIR', 'preadv')
  const ro = fs.openSync(__filename, 'r')
  t.teardown(() => fs.closeSync(ro))
  throwsSystemError(t, () => r.writeToFile(ro, 0), 'EBADF', 'pwritev')
  t.is(w.bytesWritten(), 0)
  t.is(r.bytesRead(), 0)
  // Arguments.
  t.throws(() => w.readFromFile(fd, 0, 33), {
    instanceOf: RangeError,
    code: 'ERR_OUT_OF_RANGE',
    message: /32 writable/,
  })
  t.throws(() => r.writeToFile(fd, 0, 9), { instanceOf: RangeError, message: /8 readable/ })
  t.throws(() => w.readFromFile(fd, -1), argRangeError('position'))
  t.throws(() => w.readFromFile(fd, 2 ** 53), argRangeError('position'))
  t.throws(() => w.readFromFile(fd, 0, 1.5), argRangeError('length'))
  t.throws(() => w.readFromFile(fd, '0' as never), argTypeError('position'))
  t.throws(() => w.readFromFile(-1, 0), argRangeError('fd'))
  t.throws(() => w.readFromFile(2 ** 31, 0), argRangeError('fd'))
  t.throws(() => w.readFromFile(1.5, 0), argRangeError('fd'))
  t.throws(() => w.readFromFile('3' as never, 0), argTypeError('fd'))
  t.is(w.bytesWritten(), 0)
  t.is(w.readFromFile(fd, 0), 32, 'still usable')
})

test.serial('without the native export (off Linux): a SystemError ENOSYS saying it needs Linux; nothing moves', (t) => {
  const { fd, w, r } = smallChain(t)
  const binding = native as unknown as { chainFileIo?: unknown }
  const saved = binding.chainFileIo
  delete binding.chainFileIo
  try {
    throwsSystemError(
      t,
      () => w.readFromFile(fd, 0),
      'ENOSYS',
      'preadv',
      /^ENOSYS: preadv\(2\) .*needs Linux; this is \w+$/,
    )
    throwsSystemError(t, () => r.writeToFile(fd, 0), 'ENOSYS', 'pwritev', /needs Linux/)
  } finally {
    if (saved !== undefined) binding.chainFileIo = saved
  }
  t.is(w.bytesWritten(), 0)
  t.is(r.bytesRead(), 0)
  if (process.platform === 'linux') t.is(typeof native.chainFileIo, 'function')
  else t.is(native.chainFileIo, undefined, 'the addon has no chainFileIo off Linux')
  t.is(w.readFromFile(fd, 0), 32, 'usable again')
})

test('detached guest memory: DetachedBuffer, nothing read or written', (t) => {
  const ab = new ArrayBuffer(0x100000)
  const memory = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }])
  const { guard, driver } = makeRig({ size: 8, memory })
  const fd = tempFile(t, bytes(64))
  driver.addChain([
    { addr: DATA_BASE, len: 8 },
    { addr: DATA_BASE + 0x100, len: 32, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  const w = chain.writer()
  const r = chain.reader()
  const moved = structuredClone(ab, { transfer: [ab] })
  t.throws(() => w.readFromFile(fd, 0), vqError('DetachedBuffer'))
  t.throws(() => r.writeToFile(fd, 0), vqError('DetachedBuffer'))
  t.is(w.bytesWritten(), 0)
  t.deepEqual(fs.readFileSync(`/proc/self/fd/${fd}`), bytes(64), 'the file is unchanged')
  t.is(new Uint8Array(moved)[DATA_BASE + 0x100], 0, 'the transferred memory is unchanged')
})

test('a tampered cursor or chain words never reach outside guest memory', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  const fd = tempFile(t, bytes(4096))
  driver.addChain([
    { addr: DATA_BASE, len: 8 },
    { addr: DATA_BASE + 0x100, len: 32, writable: true },
  ])
  const w = guard.popDescriptorChain()!.writer()
  // The words are a Uint32Array JavaScript can write: point the writable descriptor past
  // the end of guest memory (and at a huge length), as a careless or hostile caller could.
  const words = (w as unknown as { words: Uint32Array }).words
  const at = (w as unknown as { at: number }).at
  const saved = words.slice(at, at + 3)
  words[at] = memory.size - 16
  t.throws(() => w.readFromFile(fd, 0), vqError('InvalidChain', /not in guest memory/))
  words[at] = 0xfffffff0
  words[at + 1] = 0xffffffff // wraps around 2^64
  t.throws(() => w.readFromFile(fd, 0), vqError('InvalidChain'))
  words.set(saved, at)
  words[at + 2] = 8 // shorter than the writer's budget
  t.throws(() => w.readFromFile(fd, 0), { instanceOf: RangeError, message: /fewer bytes/ })
  words.set(saved, at)
  t.is(w.bytesWritten(), 0)
  t.is(w.readFromFile(fd, 0), 32)
  // The native call itself, with spans that do not fit the words.
  const io = native.chainFileIo!
  const h = (memory as unknown as { handle: Parameters<typeof io>[0] }).handle
  const span = (...s: number[]) => Uint32Array.from(s)
  t.throws(() => io(h, words, fd, 0, span(0, 0, words.length + 4, 2, 1, 0)), {
    instanceOf: RangeError,
    message: /not within/,
  })
  t.throws(() => io(h, words, fd, 0, span(1, 0, 4, 2, 1, 0)), { instanceOf: RangeError })
  t.throws(() => io(h, words, fd, 0, span(0, 0, 4)), { instanceOf: RangeError, message: /6 words/ })
  t.throws(() => io(h, new Uint32Array(0), fd, 0, span(0, 0, 0, 2, 1, 0)), {
    instanceOf: RangeError,
  })
  // Through the call area: slots a call did not write are refused (poisoned once read).
  t.throws(() => io(h, words, fd, 0), argRangeError('at'))
  t.throws(() => io({} as never, words, fd, 0, span(0, 0, 4, 2, 1, 0)), {
    instanceOf: TypeError,
  })
})
