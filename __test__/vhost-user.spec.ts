// The vhost-user backend (virtio-queue/vhost-user) driven by the package's own frontend
// (testing addon): setup as QEMU does it, chains served through the ordinary Queue API from
// the kick handler, interrupts, event idx, stops that wait for a Promise, config space,
// reconnects, throwing device callbacks, memory views across table changes.
import { constants as bufferConstants } from 'node:buffer'
import * as os from 'node:os'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'

import { VirtioQueueError } from '../src/index'
import { native } from '../src/native'
import { GuestAllocator, SplitQueueDriver, splitQueueLayout } from '../src/driver/index'
import {
  VhostUserBackend,
  type VhostUserDevice,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  type Vring,
} from '../src/vhost-user/index'
import { TestFrontend, until } from './helpers/vhost-frontend'

const linux = process.platform === 'linux'
let seq = 0
const sockPath = (name: string): string => path.join(os.tmpdir(), `vq-${process.pid}-${name}-${seq++}.sock`)

const LAYOUT = splitQueueLayout(0x1000, 16)
const DATA = 0x10000
const ALL = VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX | VIRTIO_RING_F_INDIRECT_DESC | (1n << 30n) | (1n << 9n)

interface Stats {
  kicks: number
  served: number
  notified: number
  suppressed: number
  started: Vring[]
  stopped: number[]
}

/** A device whose kick handler fills each chain's writable bytes with the first readable byte. */
function echoDevice(extra: Partial<VhostUserDevice> = {}): VhostUserDevice & { stats: Stats; cfg: Uint8Array } {
  const stats: Stats = { kicks: 0, served: 0, notified: 0, suppressed: 0, started: [], stopped: [] }
  const cfg = Uint8Array.from({ length: 16 }, (_, i) => i)
  return {
    stats,
    cfg,
    features: 1n << 9n,
    numQueues: 2,
    maxQueueSize: 256,
    config: () => cfg,
    writeConfig(offset, data) {
      if (offset === 0) throw new Error('offset 0 is read-only')
      cfg.set(data, offset)
    },
    queueStarted(vring) {
      stats.started.push(vring)
    },
    queueStopped(vring) {
      stats.stopped.push(vring.index)
    },
    kick(vring) {
      stats.kicks++
      const g = vring.queue.lockWithMemory()
      try {
        do {
          g.disableNotification()
          for (const chain of g.iter()) {
            const r = chain.reader()
            const head = r.read(r.availableBytes())
            const w = chain.writer()
            const n = w.availableBytes()
            w.write(Buffer.alloc(n, head[0] ?? 0))
            g.addUsed(chain.headIndex, n)
            stats.served++
          }
          if (g.needsNotification()) {
            vring.notify()
            stats.notified++
          } else stats.suppressed++
        } while (g.enableNotification())
      } finally {
        g.release()
      }
    },
    ...extra,
  }
}

async function connect(t: ExecutionContext, device: VhostUserDevice, name: string) {
  const socketPath = sockPath(name)
  const backend = new VhostUserBackend({ socketPath, device })
  await backend.listen()
  // A failed assertion must not leave the backend listening (it keeps the process alive).
  t.teardown(() => backend.close())
  const fe = new TestFrontend(socketPath)
  const acked = await fe.setup(ALL)
  const driver = new SplitQueueDriver<number>(fe.memory, {
    ...LAYOUT,
    eventIdx: true,
    allocator: new GuestAllocator(0x80000, 0x10000),
  })
  return { socketPath, backend, fe, acked, driver }
}

/** Publishes one request (16 readable bytes of `fill`, 64 writable) and kicks if the device wants it. */
function request(fe: TestFrontend, driver: SplitQueueDriver<number>, slot: number, fill: number, indirect = false) {
  const rd = DATA + slot * 0x100
  fe.memory.write(rd, Buffer.alloc(16, fill))
  driver.addChain(
    [
      { addr: rd, len: 16 },
      { addr: rd + 0x80, len: 64, writable: true },
    ],
    { token: slot, indirect },
  )
  if (driver.kick()) fe.kick(0)
}

const onLinux = linux ? test.serial : test.serial.skip

onLinux(
  'a frontend sets the device up as QEMU does; the kick handler serves chains through the Queue API',
  async (t) => {
    const device = echoDevice()
    const { backend, fe, acked, driver } = await connect(t, device, 'setup')
    t.is(acked, ALL, 'the transport bits and the device bits are offered')
    await until(() => backend.connected, 'connect')
    await fe.startVring(0, LAYOUT)
    t.is(device.stats.started.length, 1)
    const vring = device.stats.started[0]!
    t.is(vring.index, 0)
    t.is(vring.ackedFeatures, ALL)
    const st = vring.queue.state()
    t.like(st, { size: 16, ready: true, eventIdxEnabled: true, nextAvail: 0, descTable: LAYOUT.descTable })
    t.is(vring.memory.regions[0]!.size, 0x100000)

    request(fe, driver, 0, 0xab)
    request(fe, driver, 1, 0xcd, true)
    t.is(await fe.waitCall(0), 1)
    const used = driver.popAllUsed()
    t.deepEqual(
      used.map((u) => [u.token, u.len]),
      [
        [0, 64],
        [1, 64],
      ],
    )
    t.deepEqual(fe.memory.read(DATA + 0x80, 64), Buffer.alloc(64, 0xab))
    t.deepEqual(fe.memory.read(DATA + 0x180, 64), Buffer.alloc(64, 0xcd))
    t.is(device.stats.served, 2)
    await fe.disconnect()
    await backend.close()
  },
)

onLinux('event idx: no interrupt while used_event holds it back, one once the driver asks', async (t) => {
  const device = echoDevice()
  const { backend, fe, driver } = await connect(t, device, 'eventidx')
  await fe.startVring(0, LAYOUT)
  driver.disableInterrupts()
  request(fe, driver, 0, 1)
  await until(() => device.stats.served === 1, 'the chain served')
  t.is(fe.calls(0), 0, 'suppressed: used_event is behind')
  t.true(device.stats.suppressed >= 1)
  t.is(driver.popAllUsed().length, 1)
  driver.enableInterrupts()
  request(fe, driver, 1, 2)
  t.is(await fe.waitCall(0), 1)
  t.is(driver.popAllUsed().length, 1)
  await fe.disconnect()
  await backend.close()
})

onLinux('GET_VRING_BASE waits for queueStopped’s Promise and returns where the ring stopped', async (t) => {
  let release!: () => void
  const held = new Promise<void>((r) => {
    release = r
  })
  let stopCalled = false
  const device = echoDevice({
    queueStopped: () => {
      stopCalled = true
      return held
    },
  })
  const { backend, fe, driver } = await connect(t, device, 'stop')
  await fe.startVring(0, LAYOUT, 5)
  t.is(device.stats.started[0]!.queue.state().nextAvail, 5)
  // The driver's ring starts at 5 too: publish 5 empty slots' worth by moving its index.
  for (let i = 0; i < 5; i++) {
    driver.addChain([{ addr: DATA, len: 1, writable: true }])
  }
  driver.publish()
  request(fe, driver, 0, 7)
  await until(() => device.stats.served === 1, 'the chain served')
  let answered: number | null = null
  const base = fe.getVringBase(0).then((b) => {
    answered = b
    return b
  })
  await until(() => stopCalled, 'queueStopped')
  await new Promise((r) => setTimeout(r, 50))
  t.is(answered, null, 'the reply waits for the Promise')
  release()
  t.is(await base, 6, 'where the queue stopped: its nextAvail (5, plus the chain it served)')
  // No more kicks reach the device after the stop.
  const kicks = device.stats.kicks
  fe.kick(0)
  await new Promise((r) => setTimeout(r, 30))
  t.is(device.stats.kicks, kicks)
  await fe.disconnect()
  await backend.close()
})

onLinux('GET_CONFIG reads the device config; SET_CONFIG writes it, a throwing writeConfig refuses', async (t) => {
  const device = echoDevice()
  const { backend, fe } = await connect(t, device, 'config')
  t.deepEqual([...(await fe.getConfig(4, 8))], [4, 5, 6, 7, 8, 9, 10, 11])
  await fe.setConfig(8, Uint8Array.of(0xee, 0xff))
  t.deepEqual([...device.cfg.subarray(8, 10)], [0xee, 0xff])
  const refused: VirtioQueueError[] = []
  backend.on('refused', (e: VirtioQueueError) => refused.push(e))
  await t.throwsAsync(fe.setConfig(0, Uint8Array.of(1)))
  await until(() => refused.length === 1, 'the refusal event')
  t.is(refused[0]!.code, 'VhostUserRefused')
  t.regex(refused[0]!.message, /offset 0 is read-only/)
  t.is(device.cfg[0], 0, 'unchanged')
  await fe.disconnect()
  await backend.close()
})

onLinux('a frontend leaving mid-flight, then a new one on the same backend', async (t) => {
  const device = echoDevice()
  const disconnects: Array<Error | undefined> = []
  const { backend, fe, driver, socketPath } = await connect(t, device, 'reconnect')
  backend.on('disconnect', (e?: Error) => disconnects.push(e))
  await fe.startVring(0, LAYOUT)
  request(fe, driver, 0, 3)
  await until(() => device.stats.served === 1, 'served')
  // Published but never kicked: in flight when the frontend goes.
  driver.addChain([{ addr: DATA, len: 8, writable: true }])
  driver.publish()
  await fe.disconnect()
  await until(() => disconnects.length === 1, 'disconnect')
  t.false(backend.connected)
  t.deepEqual(device.stats.stopped, [0], 'the running ring was stopped')

  const fe2 = new TestFrontend(socketPath)
  await fe2.setup(ALL)
  await until(() => backend.connected, 'the second frontend')
  await fe2.startVring(0, LAYOUT)
  const d2 = new SplitQueueDriver<number>(fe2.memory, { ...LAYOUT, eventIdx: true })
  request(fe2, d2, 0, 9)
  t.is(await fe2.waitCall(0), 1)
  t.deepEqual(fe2.memory.read(DATA + 0x80, 4), Buffer.alloc(4, 9))
  await fe2.disconnect()
  await backend.close()
})

onLinux('device callbacks that throw: refused or reported, and the backend keeps serving', async (t) => {
  let failKick = true
  let failStart = true
  const device = echoDevice()
  const kickOk = device.kick
  device.kick = (v) => {
    if (failKick) {
      failKick = false
      throw new Error('kick broke')
    }
    kickOk.call(device, v)
  }
  device.queueStarted = () => {
    if (failStart) {
      failStart = false
      throw new Error('start broke')
    }
  }
  const { backend, fe, driver } = await connect(t, device, 'throws')
  const errors: Error[] = []
  const refused: Error[] = []
  backend.on('error', (e: Error) => errors.push(e))
  backend.on('refused', (e: Error) => refused.push(e))
  await t.throwsAsync(fe.startVring(0, LAYOUT))
  await until(() => refused.length === 1, 'refusal')
  t.regex(refused[0]!.message, /start broke/)
  await fe.enableVring(0, false)
  await fe.enableVring(0, true)
  request(fe, driver, 0, 4)
  await until(() => errors.length === 1, 'the kick error')
  t.regex(errors[0]!.message, /kick broke/)
  t.is((errors[0] as VirtioQueueError).code, 'VhostUserDevice')
  // Still serving: the next kick goes through.
  fe.kick(0)
  t.is(await fe.waitCall(0), 1)
  t.is(driver.popAllUsed().length, 1)
  await fe.disconnect()
  await backend.close()
})

onLinux(
  'memory views are detached when their region leaves the table; the queue moves to the new memory',
  async (t) => {
    const device = echoDevice()
    const { backend, fe, driver } = await connect(t, device, 'memtable')
    await fe.startVring(0, LAYOUT)
    const vring = device.stats.started[0]!
    const oldMemory = vring.memory
    const oldView = oldMemory.regions[0]!.buffer
    t.is(oldView.length, 0x100000)
    // The same guest RAM sent again (a new mapping of the memfd): the old one left the table.
    await fe.setMemTable([0, 0x100000, 0])
    t.not(vring.memory, oldMemory, 'the queue reads the new memory')
    t.is(oldView.length, 0, 'the old view is detached')
    t.throws(() => oldMemory.readU8(0), { code: 'DetachedBuffer' })
    request(fe, driver, 0, 5)
    t.is(await fe.waitCall(0), 1)
    t.deepEqual(vring.memory.read(DATA + 0x80, 4), Buffer.alloc(4, 5))
    await fe.disconnect()
    await until(() => !backend.connected, 'disconnect')
    t.is(vring.memory.regions[0]!.buffer.length, 0, 'disconnecting detaches the views too')
    await backend.close()
  },
)

onLinux('listen() on a path a live backend serves rejects with VhostUserListen; close() frees it', async (t) => {
  const socketPath = sockPath('busy')
  const a = new VhostUserBackend({ socketPath, device: echoDevice() })
  await a.listen()
  const b = new VhostUserBackend({ socketPath, device: echoDevice() })
  await t.throwsAsync(b.listen(), { instanceOf: VirtioQueueError, code: 'VhostUserListen' })
  await a.close()
  t.false(a.listening)
  await b.listen()
  await b.close()
  await t.throwsAsync(b.listen(), { code: 'VhostUserState' })
})

onLinux('unusable device parameters reject listen() with VhostUserDevice', async (t) => {
  const socketPath = sockPath('params')
  const b = new VhostUserBackend({ socketPath, device: { ...echoDevice(), maxQueueSize: 100 } })
  await t.throwsAsync(b.listen(), { code: 'VhostUserDevice' })
})

onLinux(
  'a region above 4 GiB, larger than one Buffer can hold, is seen in windows; a chain across them is served',
  async (t) => {
    const GiB = 2 ** 30
    const big = 4 * GiB + 0x100000
    const device = echoDevice()
    const socketPath = sockPath('windows')
    const backend = new VhostUserBackend({ socketPath, device })
    await backend.listen()
    t.teardown(() => backend.close())
    // Sparse guest RAM: 1 MiB at 0 (the rings; the only part mapped into this test's view),
    // and 4 GiB + 1 MiB at 4 GiB.
    const fe = new TestFrontend(socketPath, 0x100000 + big, 1, 0x100000)
    await fe.setup(ALL, [0, 0x100000, 0, 4 * GiB, big, 0x100000])
    await fe.startVring(0, LAYOUT)
    const mem = device.stats.started[0]!.memory
    const max = Math.floor(Math.min(bufferConstants.MAX_LENGTH, 2 ** 52) / 4096) * 4096
    const windows: Array<[number, number]> = [[0, 0x100000]]
    for (let off = 0; off < big; off += max) windows.push([4 * GiB + off, Math.min(max, big - off)])
    t.deepEqual(
      mem.regions.map((r) => [r.guestAddress, r.size]),
      windows,
    )
    t.is(mem.size, 0x100000 + big)
    // A chain whose buffers straddle the first window's end (8 GiB on Node 20; one window on
    // Node 22 and later, whose Buffers may be larger).
    const edge = 4 * GiB + Math.min(max, 4 * GiB) - 8
    mem.write(edge, Buffer.alloc(16, 0x5a))
    const driver = new SplitQueueDriver<number>(fe.memory, { ...LAYOUT, eventIdx: true })
    driver.addChain([
      { addr: edge, len: 16 },
      { addr: edge + 0x1000, len: 64, writable: true },
    ])
    if (driver.kick()) fe.kick(0)
    t.is(await fe.waitCall(0), 1)
    t.deepEqual(driver.popAllUsed()[0]?.len, 64)
    t.deepEqual(mem.read(edge + 0x1000, 64), Buffer.alloc(64, 0x5a))
    mem.writeU64(edge + 4, 0x1122334455667788n)
    t.is(mem.readU64(edge + 4), 0x1122334455667788n, 'an access across two windows')
    await fe.disconnect()
  },
)

onLinux('close() while a GET_VRING_BASE waits for queueStopped: it ends once the Promise settles', async (t) => {
  let release!: () => void
  const held = new Promise<void>((r) => {
    release = r
  })
  const device = echoDevice({ queueStopped: () => held })
  const { backend, fe } = await connect(t, device, 'closewait')
  await fe.startVring(0, LAYOUT)
  const base = fe.getVringBase(0)
  await new Promise((r) => setTimeout(r, 20))
  let closed = false
  const closing = backend.close().then(() => {
    closed = true
  })
  await new Promise((r) => setTimeout(r, 50))
  t.false(closed, 'the stop in progress is finished first')
  release()
  await closing
  t.false(backend.listening)
  // close() dropped the connection: the frontend's request fails rather than hanging.
  await t.throwsAsync(base)
})

test('listen() off Linux (no native vhost-user exports) rejects with VhostUserUnsupported', async (t) => {
  const saved = native.vhostUserStart
  delete native.vhostUserStart
  try {
    const b = new VhostUserBackend({ socketPath: sockPath('nolinux'), device: echoDevice() })
    await t.throwsAsync(b.listen(), { instanceOf: VirtioQueueError, code: 'VhostUserUnsupported' })
  } finally {
    native.vhostUserStart = saved
  }
})

test('bad options are TypeErrors naming the option', (t) => {
  const device = echoDevice()
  // @ts-expect-error a missing options object
  t.throws(() => new VhostUserBackend(undefined), { instanceOf: TypeError, message: /"options"/ })
  // @ts-expect-error a socket path that is not a string
  t.throws(() => new VhostUserBackend({ socketPath: 1, device }), { message: /options\.socketPath/ })
  t.throws(() => new VhostUserBackend({ socketPath: 'x', device: { ...device, kick: undefined as never } }), {
    message: /options\.device\.kick/,
  })
})
