// FileIoBatch: preadv/pwritev/fdatasync queued now and run in order on libuv's threadpool.
// Data against temp files (multi-descriptor and indirect chains, skip/length, end of file,
// order within a run, datasync), the ChainBatch popped again right after queueing, which
// guest memory is accepted, Busy, capacity, result(k)'s errors and SystemErrors. What needs
// a process of its own (a blocked threadpool, an exception from done, gc during a run, a
// worker terminated mid-run, exit mid-run) runs fixtures/file-io-batch.js in a child.
import { execFile, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import test from 'ava'

import { ChainBatch, FileIoBatch, GuestMemory, type SystemCall, SystemError } from '..'
import { argRangeError, argTypeError, DATA_BASE, makeRig, MEM_SIZE, vqError } from './helpers/queue-setup'
import { bytes, tempFile } from './helpers/scratch-fs'

const sharedMemory = () => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new SharedArrayBuffer(MEM_SIZE) }])

/** A virtio-blk-like chain (header 10 + 6 bytes and 20 OUT bytes; 8 + 0 + 9 writable), and a 4-byte one. */
function blkRig(memory: GuestMemory = sharedMemory()) {
  const rig = makeRig({ size: 8, memory })
  rig.driver.addChain([
    { addr: DATA_BASE, len: 10 },
    { addr: DATA_BASE + 0x100, len: 6 + 20 },
    { addr: DATA_BASE + 0x200, len: 8, writable: true },
    { addr: DATA_BASE + 0x300, len: 0, writable: true },
    { addr: DATA_BASE + 0x400, len: 9, writable: true },
  ])
  rig.driver.addChain([{ addr: DATA_BASE + 0x800, len: 4 }])
  const batch = new ChainBatch(4)
  if (rig.guard.popChains(batch) !== 2) throw new Error('the rig did not pop its chains')
  return { ...rig, batch }
}

const run = (io: FileIoBatch) => io.runAsync()

test('reads and writes at byte offsets across descriptors, in one threadpool round trip', async (t) => {
  const { batch, memory } = blkRig()
  const data = bytes(4096, 3)
  const fd = tempFile(t, data)
  const io = new FileIoBatch()
  t.is(io.readFromFile(batch, 0, fd, 100, 0, 16), 0, 'all but the status byte')
  t.is(io.readFromFile(batch, 1, fd, 0), 1, 'chain 1 has no writable byte: 0 bytes')
  const out = bytes(36, 9)
  memory.write(DATA_BASE, out.subarray(0, 10))
  memory.write(DATA_BASE + 0x100, out.subarray(10, 36))
  t.is(io.writeToFile(batch, 0, fd, 1024, 16), 2, 'the 20 OUT bytes after the header')
  t.is(io.writeToFile(batch, 0, fd, 2000, 3, 10), 3, 'across the two readable descriptors')
  t.is(io.readFromFile(batch, 0, fd, 4090), 4, 'default length from skip 0: 17 bytes, 6 before the end of the file')
  t.is(io.length, 5)
  t.false(io.busy)
  const p = run(io)
  t.true(io.busy, 'busy from run() on')
  t.is(io.length, 5)
  t.is(await p, io, 'runAsync resolves to the batch')
  t.false(io.busy)
  t.deepEqual(
    [0, 1, 2, 3, 4].map((k) => io.result(k)),
    [16, 0, 20, 10, 6],
  )
  // The last read (4090..4095) overwrote the first 6 bytes of the first one.
  t.deepEqual(memory.read(DATA_BASE + 0x200, 6), data.subarray(4090, 4096))
  t.deepEqual(memory.read(DATA_BASE + 0x206, 2), data.subarray(106, 108))
  t.deepEqual(memory.read(DATA_BASE + 0x400, 8), data.subarray(108, 116))
  t.is(memory.readU8(DATA_BASE + 0x408), 0, 'the status byte is untouched')
  const file = fs.readFileSync(`/proc/self/fd/${fd}`)
  t.deepEqual(file.subarray(1024, 1044), out.subarray(16, 36))
  t.deepEqual(file.subarray(2000, 2010), out.subarray(3, 13))
})

test('an indirect chain, and a chain popped over again right after queueing: the run uses what was resolved then', async (t) => {
  const rig = makeRig({ size: 8, memory: sharedMemory() })
  const data = bytes(8192, 5)
  const fd = tempFile(t, data)
  rig.driver.addChain(
    [
      { addr: DATA_BASE, len: 100, writable: true },
      { addr: DATA_BASE + 0x1000, len: 3000, writable: true },
      { addr: DATA_BASE + 0x2000, len: 1, writable: true },
    ],
    { indirect: true },
  )
  const batch = new ChainBatch(1)
  t.is(rig.guard.popChains(batch), 1)
  const io = new FileIoBatch(4)
  io.readFromFile(batch, 0, fd, 10, 50, 3000)
  // The same ChainBatch now holds another chain: the queued read is not affected.
  rig.driver.addChain([{ addr: DATA_BASE + 0x3000, len: 64, writable: true }])
  t.is(rig.guard.popChains(batch), 1)
  batch.words.fill(0xffffffff, ChainBatch.HEADER_WORDS)
  await run(io)
  t.is(io.result(0), 3000)
  t.deepEqual(rig.memory.read(DATA_BASE + 50, 50), data.subarray(10, 60))
  t.deepEqual(rig.memory.read(DATA_BASE + 0x1000, 2950), data.subarray(60, 3010))
  t.is(rig.memory.readU8(DATA_BASE + 0x1000 + 2950), 0, 'not past the length asked for')
  t.deepEqual(rig.memory.read(DATA_BASE + 0x3000, 4), Buffer.alloc(4), 'the chain popped later is untouched')
})

test('in order within a run: a write, then a read of the same range sees the new bytes; datasync gives 0', async (t) => {
  const { batch, memory } = blkRig()
  const fd = tempFile(t, Buffer.alloc(64))
  const out = bytes(36, 1)
  memory.write(DATA_BASE, out.subarray(0, 10))
  memory.write(DATA_BASE + 0x100, out.subarray(10, 36))
  const io = new FileIoBatch()
  io.writeToFile(batch, 0, fd, 0)
  t.is(io.datasync(fd), 1)
  io.readFromFile(batch, 0, fd, 0, 0, 17)
  await run(io)
  t.deepEqual([io.result(0), io.result(1), io.result(2)], [36, 0, 17])
  t.deepEqual(memory.read(DATA_BASE + 0x200, 8), out.subarray(0, 8))
  t.deepEqual(memory.read(DATA_BASE + 0x400, 9), out.subarray(8, 17))
})

// Serial: a test running beside it could open a file between the close below and the run,
// and be given the closed number.
test.serial(
  'each outcome is its own: failures as SystemErrors (EBADF, ESPIPE, EINVAL), the next operation still runs',
  async (t) => {
    const { batch } = blkRig()
    const fd = tempFile(t, bytes(64))
    const [rd, wr] = pipe()
    t.teardown(() => {
      fs.closeSync(rd)
      fs.closeSync(wr)
    })
    // Closed last, so that nothing opened meanwhile reuses the number.
    const closed = fs.openSync(__filename, 'r')
    fs.closeSync(closed)
    const io = new FileIoBatch()
    io.readFromFile(batch, 0, closed, 0)
    io.readFromFile(batch, 0, fd, 0, 0, 4)
    io.writeToFile(batch, 0, wr, 8, 16)
    io.datasync(rd)
    io.datasync(closed)
    await run(io)
    const ebadf = t.throws(
      () => io.result(0),
      vqError('EBADF', /^EBADF: bad file descriptor, preadv of 17 bytes at offset 0 of fd \d+$/),
    ) as SystemError
    t.true(ebadf instanceof SystemError)
    t.is(ebadf.errno, -os.constants.errno.EBADF)
    t.is(ebadf.syscall, 'preadv')
    t.is(io.result(1), 4, 'the operation after a failed one ran')
    const espipe = t.throws(() => io.result(2), vqError('ESPIPE', /pwritev of 20 bytes at offset 8/)) as SystemError
    t.is(espipe.syscall, 'pwritev')
    t.is(espipe.errno, -os.constants.errno.ESPIPE)
    const einval = t.throws(() => io.result(3), vqError('EINVAL', /^EINVAL: .*, fdatasync of fd \d+$/)) as SystemError
    t.is(einval.syscall, 'fdatasync')
    t.is((t.throws(() => io.result(4), vqError('EBADF')) as SystemError).syscall, 'fdatasync')
  },
)

test('an empty run still goes through the threadpool and calls back; the next queueing call starts a new list', async (t) => {
  const { batch } = blkRig()
  const fd = tempFile(t, bytes(64))
  const io = new FileIoBatch(2)
  let called = 0
  await new Promise<void>((resolve) => {
    io.run((b) => {
      t.is(b, io)
      t.false(b.busy, 'not busy in the callback')
      called++
      resolve()
    })
    t.is(called, 0, 'not called synchronously')
  })
  t.is(io.length, 0)
  io.readFromFile(batch, 0, fd, 0)
  await run(io)
  t.is(io.result(0), 17)
  t.is(io.length, 1, 'the last run')
  t.throws(() => io.readFromFile(batch, 5, fd, 0), argRangeError('i'))
  t.throws(() => io.writeToFile(batch, 0, fd, -1), argRangeError('position'))
  t.is(io.result(0), 17, 'a refused queueing call keeps the last run and its results')
  t.is(io.length, 1)
  t.is(io.datasync(fd), 0, 'a new list: index 0 again')
  t.is(io.length, 1)
  t.throws(() => io.result(0), { ...argRangeError('k'), message: /have not run yet/ })
  io.datasync(fd)
  t.throws(() => io.datasync(fd), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: /holds 2 operations/ })
  await run(io)
  t.is(io.result(1), 0)
})

test('Busy: queueing, run, result and clear while a run is in flight', async (t) => {
  const { batch } = blkRig()
  const fd = tempFile(t, bytes(64))
  const io = new FileIoBatch()
  io.readFromFile(batch, 0, fd, 0)
  const p = run(io)
  t.throws(() => io.readFromFile(batch, 0, fd, 0), vqError('Busy', /while it runs/))
  t.throws(() => io.writeToFile(batch, 0, fd, 0), vqError('Busy'))
  t.throws(() => io.datasync(fd), vqError('Busy'))
  t.throws(() => io.run(() => {}), vqError('Busy'))
  await t.throwsAsync(io.runAsync(), vqError('Busy'))
  t.throws(() => io.result(0), vqError('Busy'))
  t.throws(() => io.clear(), vqError('Busy'))
  await p
  t.is(io.result(0), 17, 'the refused calls changed nothing')
  t.is(io.length, 1)
})

test('capacity, indices and arguments', async (t) => {
  for (const bad of [0, 65537, 1.5, -1, Number.NaN])
    t.throws(() => new FileIoBatch(bad), { ...argRangeError('capacity'), message: /from 1 to 65536/ })
  t.throws(() => new FileIoBatch('8' as never), argTypeError('capacity'))
  t.is(new FileIoBatch(65536).capacity, 65536)
  t.is(new FileIoBatch().capacity, 128)
  const { batch } = blkRig()
  const fd = tempFile(t, bytes(64))
  const io = new FileIoBatch(1)
  t.throws(() => io.readFromFile({} as never, 0, fd, 0), argTypeError('batch'))
  t.throws(() => io.readFromFile(batch, 2, fd, 0), argRangeError('i'))
  t.throws(() => io.readFromFile(batch, 0, fd, 0, 18), { instanceOf: RangeError, message: /only 17 writable/ })
  t.throws(() => io.readFromFile(batch, 0, fd, 0, 0, 18), { instanceOf: RangeError, message: /only 17 writable/ })
  t.throws(() => io.writeToFile(batch, 0, fd, -1), argRangeError('position'))
  t.throws(() => io.readFromFile(batch, 0, -1, 0), argRangeError('fd'))
  t.throws(() => io.datasync(2 ** 31), argRangeError('fd'))
  t.throws(() => io.datasync('1' as never), argTypeError('fd'))
  t.throws(() => io.run(undefined as never), argTypeError('done'))
  t.is(io.length, 0, 'nothing was queued by the refused calls')
  t.is(io.readFromFile(batch, 0, fd, 0), 0)
  t.throws(() => io.writeToFile(batch, 0, fd, 0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  for (const k of [0, -1, 1.5]) t.throws(() => io.result(k), { ...argRangeError('k'), message: /have not run yet/ })
  await run(io)
  t.throws(() => io.result(1), { ...argRangeError('k'), message: /from 0 to 0 \(the last run had 1 operations\)/ })
  t.throws(() => io.result('0' as never), argTypeError('k'))
  io.clear()
  t.is(io.length, 0)
  t.throws(() => io.result(0), argRangeError('k'))
})

test('guest memory: SharedArrayBuffers accepted; ArrayBuffers (fromRanges, Buffers) refused with DetachableMemory', async (t) => {
  const fd = tempFile(t, bytes(64))
  const io = new FileIoBatch()
  const refused = vqError('DetachableMemory', /region 0 is over an ArrayBuffer.*SharedArrayBuffers/)
  for (const memory of [
    GuestMemory.fromRanges([[0, MEM_SIZE]]),
    GuestMemory.fromBuffers([{ guestAddress: 0, buffer: Buffer.alloc(MEM_SIZE) }]),
    GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new ArrayBuffer(MEM_SIZE) }]),
  ]) {
    const { batch } = blkRig(memory)
    t.throws(() => FileIoBatch.checkMemory(memory), refused, 'checkMemory says so without an operation')
    t.throws(() => io.readFromFile(batch, 0, fd, 0), refused)
    t.throws(() => io.writeToFile(batch, 0, fd, 0), refused)
    t.is(batch.readFromFile(0, fd, 0), 17, 'the synchronous form serves it')
  }
  t.is(io.length, 0)
  // Two regions: one shared, one not: refused for the second (index 1).
  const mixed = GuestMemory.fromBuffers([
    { guestAddress: 0, buffer: new SharedArrayBuffer(MEM_SIZE) },
    { guestAddress: MEM_SIZE, buffer: new ArrayBuffer(0x1000) },
  ])
  t.throws(() => io.readFromFile(blkRig(mixed).batch, 0, fd, 0), vqError('DetachableMemory', /region 1 /))
  t.throws(() => FileIoBatch.checkMemory(mixed), vqError('DetachableMemory', /region 1 /))
  // Not a GuestMemory (a look-alike with a handle property is not one).
  for (const bad of [undefined, {}, { handle: {} }])
    t.throws(() => FileIoBatch.checkMemory(bad as unknown as GuestMemory), {
      instanceOf: TypeError,
      code: 'ERR_INVALID_ARG_TYPE',
    })
  const shared = blkRig()
  t.is(FileIoBatch.checkMemory(shared.memory), undefined)
  io.readFromFile(shared.batch, 0, fd, 0)
  await run(io)
  t.is(io.result(0), 17)
})

test('a queued operation keeps its guest memory: a transfer of the chain is checked when queued, not when run', async (t) => {
  const rig = makeRig({ size: 8, memory: sharedMemory() })
  const fd = tempFile(t, bytes(64))
  const end = rig.memory.size
  rig.driver.addChain([{ addr: end - 8, len: 64, writable: true }])
  const batch = new ChainBatch(1)
  t.is(rig.guard.popChains(batch), 1)
  const io = new FileIoBatch()
  t.throws(() => io.readFromFile(batch, 0, fd, 0), vqError('InvalidChain', /not in guest memory/))
  t.is(io.length, 0)
  await run(io)
  t.is(io.length, 0)
})

/** A pipe's two ends (read, write), made by the shell: Node has no pipe(2). */
function pipe(): [number, number] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-fifo-'))
  const fifo = path.join(dir, 'p')
  const r = spawnSync('mkfifo', [fifo])
  if (r.status !== 0) throw new Error('mkfifo failed')
  const rd = fs.openSync(fifo, fs.constants.O_RDWR)
  const wr = fs.openSync(fifo, 'w')
  fs.rmSync(dir, { recursive: true })
  return [rd, wr]
}

const fixture = path.join(__dirname, 'fixtures', 'file-io-batch.js')

/** What the fixture printed: the fields its modes report. */
interface Seen {
  busyWhileBlocked?: boolean
  turnsWhileBlocked?: number
  result?: number
  data?: boolean
  doneAfterRelease?: boolean
  caught?: string
  busyInHandler?: boolean
  second?: number
  collected?: boolean
  file?: boolean
  queued?: boolean
  terminated?: number
}

/** Runs the fixture in `mode` in a child whose libuv threadpool has one thread. */
function child(mode: string, nodeArgs: string[] = []) {
  return new Promise<{ status: number | null; signal: string | null; stderr: string; out: Seen | null }>((resolve) => {
    execFile(
      process.execPath,
      [...nodeArgs, fixture, mode],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, UV_THREADPOOL_SIZE: '1' } },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: number; signal?: string }) | null
        resolve({
          status: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
          signal: e?.signal ?? null,
          stderr,
          out: stdout ? JSON.parse(stdout) : null,
        })
      },
    )
  })
}

test('the event loop keeps running while the run waits for the threadpool; then the run completes', async (t) => {
  const { status, stderr, out } = await child('loop')
  t.is(status, 0, stderr)
  t.deepEqual(out, { busyWhileBlocked: true, turnsWhileBlocked: 20, result: 4096, data: true, doneAfterRelease: true })
})

test('an exception thrown by done is uncaught (process uncaughtException); the batch is reusable', async (t) => {
  const { status, stderr, out } = await child('throws')
  t.is(status, 0, stderr)
  t.deepEqual(out, { caught: 'from done', busyInHandler: false, second: 4096 })
  const unhandled = await child('throws-unhandled')
  t.is(unhandled.status, 1, 'the exit code of an uncaught exception')
  t.regex(unhandled.stderr, /Error: from done/)
})

test('everything dropped and collected during a run: the run keeps its memory and batch alive and completes', async (t) => {
  const { status, stderr, out } = await child('gc', ['--expose-gc'])
  t.is(status, 0, stderr)
  t.deepEqual(out, { collected: true, result: 4096, file: true })
})

test('a worker terminated with a run in flight: no crash, the run completes during its teardown', async (t) => {
  const { status, signal, stderr, out } = await child('worker')
  t.is(signal, null, stderr)
  t.is(status, 0, stderr)
  t.is(out?.terminated, 1, 'worker.terminate() resolved with exit code 1')
  t.true(out?.queued)
})

test('the process exiting with a run in flight: no crash', async (t) => {
  const { status, signal, stderr } = await child('exit')
  t.is(signal, null, stderr)
  t.is(status, 0, stderr)
})

test.serial('without the native exports (off Linux): queueing and run throw a SystemError ENOSYS', (t) => {
  const { native } = require('../lib/native') as { native: { fileIoBatchNew?: unknown } }
  const saved = native.fileIoBatchNew
  delete native.fileIoBatchNew
  try {
    const io = new FileIoBatch()
    const { batch } = blkRig()
    const enosys = (call: () => unknown, syscall: SystemCall) => {
      const e = t.throws(call, { instanceOf: SystemError, code: 'ENOSYS', message: /^ENOSYS: .*needs Linux/ })
      t.is(e?.syscall, syscall)
    }
    enosys(() => io.readFromFile(batch, 0, 0, 0), 'preadv')
    enosys(() => io.writeToFile(batch, 0, 0, 0), 'pwritev')
    enosys(() => io.datasync(0), 'fdatasync')
    enosys(() => io.run(() => {}), 'preadv')
    t.false(io.busy)
  } finally {
    if (saved !== undefined) native.fileIoBatchNew = saved
  }
  const nativeCheck = native as { fileIoBatchCheckMemory?: unknown }
  const savedCheck = nativeCheck.fileIoBatchCheckMemory
  delete nativeCheck.fileIoBatchCheckMemory
  try {
    const e = t.throws(() => FileIoBatch.checkMemory(blkRig().memory), { instanceOf: SystemError, code: 'ENOSYS' })
    t.is(e?.syscall, 'preadv')
  } finally {
    if (savedCheck !== undefined) nativeCheck.fileIoBatchCheckMemory = savedCheck
  }
  t.is(typeof native.fileIoBatchNew, process.platform === 'linux' ? 'function' : 'undefined')
})

test('vhost-user memory: accepted, and kept mapped by a run while the frontend replaces its memory table', async (t) => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'fixtures', 'file-io-batch-vhost-user.ts')],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, UV_THREADPOOL_SIZE: '1' } },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr }),
    )
  })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    before: 1,
    whileRunning: 2, // the backend's new mapping, and the old one the run keeps
    untouched: true,
    result: 4096,
    data: true,
    after: 1,
  })
})
