// worker_threads: the addon in several workers at once and in the main thread
// (instance data per environment: each thread's errors are its own
// VirtioQueueError), workers terminated in the middle of queue work, and a
// split queue over a SharedArrayBuffer with the driver in one worker and the
// device in another. Worker scripts are fixtures/worker-*.js, which require
// the built package; they run with execArgv [] (no tsx) to start fast.
import test from 'ava'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import { GuestMemory, Queue, VirtioQueueError } from '..'
import { CANARY_BYTES, CanaryMemory } from './helpers/fuzz-mem'
import { checkErrorClass } from './helpers/fuzz-ref'
import { offer, smallRig } from './helpers/fuzz-rig'

const fixture = (name: string) => path.join(__dirname, 'fixtures', name)

/** The worker's first message, or an error after `ms` (the worker is then terminated). */
function message<T>(worker: Worker, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate()
      reject(new Error(`no message from the worker within ${ms} ms`))
    }, ms)
    worker.once('message', (m: T) => {
      clearTimeout(timer)
      resolve(m)
    })
    worker.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}

/** What the main thread still does after the workers: a device round trip and an error of its own class. */
function mainStillWorks(t: import('ava').ExecutionContext): void {
  const r = smallRig()
  const [head] = offer(r, 1)
  const c = r.guard.popDescriptorChain()!
  t.is(c.headIndex, head)
  r.guard.addUsed(c.headIndex, c.writer().write(c.reader().read(16)))
  t.deepEqual(r.driver.popUsed(), { head, len: 16, token: undefined })
  t.throws(() => new Queue(r.memory, 3), { instanceOf: VirtioQueueError, code: 'InvalidMaxSize' })
}

test('the addon in four workers and the main thread at once: each thread gets its own error class', async (t) => {
  const { observe } = require('./fixtures/worker-errors.js') as { observe(id: string): Record<string, unknown> }
  const workers = [0, 1, 2, 3].map(
    (id) => new Worker(fixture('worker-errors.js'), { workerData: { id }, execArgv: [] }),
  )
  const pending = workers.map((w) => message<Record<string, unknown>>(w, 30_000))
  const main = observe('main') // meanwhile, in the main thread
  const results = await Promise.all(pending)
  const expected = {
    invalidMaxSize: { own: true, code: 'InvalidMaxSize', ctor: true },
    panic: { own: true, code: 'Panic' },
    invalidRegion: { own: true, code: 'InvalidRegion' },
    typeError: { own: true, code: 'ERR_INVALID_ARG_TYPE' },
    roundTrips: 200,
  }
  t.deepEqual(main, expected, 'main thread')
  results.forEach((r, i) => t.deepEqual(r, expected, `worker ${i}`))
  await Promise.all(workers.map((w) => w.terminate()))
  mainStillWorks(t)
})

test('workers terminated in the middle of queue work: no crash, the main thread keeps working', async (t) => {
  for (let round = 0; round < 4; round++) {
    const workers = [0, 1, 2].map(() => new Worker(fixture('worker-loop.js'), { execArgv: [] }))
    t.deepEqual(await Promise.all(workers.map((w) => message<string>(w, 30_000))), ['running', 'running', 'running'])
    // Let them loop a little further, working in the main thread meanwhile, then stop them mid-loop.
    const memory = GuestMemory.fromRanges([[0, 1 << 20]])
    await new Promise((resolve) => setTimeout(resolve, 20 + 15 * round))
    const codes = await Promise.all(workers.map((w) => w.terminate()))
    t.deepEqual(codes, [1, 1, 1], 'terminated, not exited on their own')
    memory.writeU32(0x100, round)
    t.is(memory.readU32(0x100), round)
  }
  mainStillWorks(t)
})

test('SharedArrayBuffer guest memory: driver in one worker, device in another, data and used entries in order', async (t) => {
  const guest = new SharedArrayBuffer(0x20000)
  const bells = new SharedArrayBuffer(16)
  const common = { guest, bells, total: 20_000, size: 64, timeoutMs: 20_000 }
  const device = new Worker(fixture('worker-sab.js'), { workerData: { ...common, role: 'device' }, execArgv: [] })
  const driver = new Worker(fixture('worker-sab.js'), { workerData: { ...common, role: 'driver' }, execArgv: [] })
  const [d, q] = await Promise.all([
    message<{ sent: number; done: number; bad: number; timedOut: boolean }>(driver, 40_000),
    message<{ served: number; bad: number }>(device, 40_000),
  ])
  t.deepEqual(d, { sent: 20_000, done: 20_000, bad: 0, timedOut: false }, 'driver: every response seen with its data')
  t.deepEqual(q, { served: 20_000, bad: 0 }, 'device: every request seen with the data written before it was published')
  await Promise.all([driver.terminate(), device.terminate()])
  // The main thread sees the final state through its own GuestMemory over the same SAB.
  const memory = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: guest }])
  t.is(memory.loadU16(0x1000 + 16 * 64 + 2), 20_000 & 0xffff, 'avail idx')
})

test('a guest thread scribbling over the rings while the device serves them: package errors only, canaries intact', async (t) => {
  const m = new CanaryMemory([{ guestAddress: 0, size: 0x10000 }], { shared: true })
  const r = smallRig(m.mem, 64)
  offer(r, 16)
  const region = m.regions[0]!
  const scribbler = new Worker(fixture('worker-scribbler.js'), {
    execArgv: [],
    workerData: {
      sab: region.bytes.buffer,
      offset: CANARY_BYTES,
      length: 0x10000,
      hot: 0x2000,
      idx: r.layout.availRing + 2,
      ms: 1500,
    },
  })
  const done = message<number>(scribbler, 30_000)
  let finished = false
  void done.then(
    () => (finished = true),
    () => (finished = true),
  )
  const codes = new Map<string, number>()
  let chains = 0
  const start = Date.now()
  while (!finished && Date.now() - start < 20_000) {
    for (let k = 0; k < 50; k++) {
      try {
        const c = r.guard.popDescriptorChain()
        if (c) {
          chains++
          if (k % 3 === 0) c.reader().read(Math.min(64, c.reader().availableBytes()))
          if (k % 3 === 1) c.writer().write(new Uint8Array(Math.min(64, c.writer().availableBytes())))
          r.guard.addUsed(c.headIndex, 1)
        } else if (k % 7 === 0) {
          r.guard.enableNotification()
          r.guard.needsNotification()
        }
      } catch (e) {
        checkErrorClass(e, 'device under a scribbling guest')
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1)
        if (e.code === 'InvalidAvailRingIndex') r.guard.setNextAvail((r.guard.availIdx() - 32) & 0xffff)
      }
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  const writes = await done
  t.true(writes > 10_000, `${writes} guest writes`)
  t.true(chains > 0, `${chains} chains served; errors ${JSON.stringify([...codes])}`)
  t.log(`${writes} guest writes, ${chains} chains served, errors ${JSON.stringify([...codes])}`)
  t.is(m.checkCanaries(), null)
})
