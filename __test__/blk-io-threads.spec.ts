// The virtio-blk example's file I/O off the event loop (examples/virtio-blk/device.ts,
// `io: 'threads' | 'auto'`): a pop's I/O runs as one FileIoBatch on libuv's threadpool and
// its requests are answered together when it returns; `auto` stays inline while requests
// come one at a time. Served from a disk image file (DiskImage: it has an fd) over guest
// memory in a SharedArrayBuffer (createVm's `shared`: memory JavaScript cannot detach).
import * as fs from 'node:fs'
import test from 'ava'

import { GuestMemory, Queue } from '..'
import { type DriverBuffer, SplitQueueDriver, splitQueueLayout } from '../driver'
import { BlkDevice, type BlkIoMode } from '../examples/virtio-blk/device'
import { DiskImage } from '../examples/virtio-blk/disk'
import { BlkModel } from '../examples/virtio-blk/model'
import {
  encodeHeader,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from '../examples/virtio-blk/protocol'
import type { Vring } from '../examples/virtio-blk/vhost-user-api'
import { BlkVhostUserDevice } from '../examples/virtio-blk/vhost-user-device'
import { activateQueue, createVm, type Vm } from '../examples/virtio-blk/vm'
import { MemDisk, pattern } from './helpers/blk-mem-disk'

const SECTORS = 256

interface Rig {
  vm: Vm<string>
  disk: DiskImage
  device: BlkDevice
  irqs: { count: number }
  /** Resolves when the device's running FileIoBatch has been answered. */
  idle(): Promise<void>
}

function rig(t: { teardown(f: () => void): void }, io: BlkIoMode, signal?: () => void): Rig {
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 64, eventIdx: true, shared: true })
  const disk = DiskImage.open({ sizeBytes: SECTORS * 512 })
  t.teardown(() => disk.close())
  const irqs = { count: 0 }
  let waiters: Array<() => void> = []
  const device = new BlkDevice(vm.queue, {
    backend: disk,
    io,
    signalUsedQueue: () => {
      irqs.count++
      signal?.()
    },
    onIdle: () => {
      const w = waiters
      waiters = []
      for (const f of w) f()
    },
  })
  const idle = () => (device.busy ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve())
  return { vm, disk, device, irqs, idle }
}

interface Sent {
  head: number
  status: number
  data: number
}

/** Queues one request (data buffer of `len` bytes, writable for IN and GET_ID) without kicking. */
function add(r: Rig, type: number, sector: number, len: number, fill?: Buffer): Sent {
  const { vm } = r
  const hdr = vm.allocator.alloc(17, 16)
  const header = Buffer.alloc(16)
  encodeHeader(header, type, sector)
  vm.memory.write(hdr, header)
  vm.memory.writeU8(hdr + 16, 0xff)
  const buffers: DriverBuffer[] = [{ addr: hdr, len: 16 }]
  let data = -1
  if (len > 0) {
    data = vm.allocator.alloc(len, 8)
    vm.memory.write(data, fill ?? Buffer.alloc(len, 0xee))
    buffers.push({ addr: data, len, writable: type === VIRTIO_BLK_T_IN || type === VIRTIO_BLK_T_GET_ID })
  }
  buffers.push({ addr: hdr + 16, len: 1, writable: true })
  const head = vm.driver.addChain(buffers)
  return { head, status: hdr + 16, data }
}

function used(r: Rig): Map<number, number> {
  const out = new Map<number, number>()
  for (let u = r.vm.driver.popUsed(); u !== null; u = r.vm.driver.popUsed()) out.set(u.head, u.len)
  return out
}

test("io 'threads': a pop's requests are answered together when its batch returns: data, statuses, used lengths, one interrupt", async (t) => {
  const r = rig(t, 'threads')
  const data = pattern(4096, 7)
  const w = add(r, VIRTIO_BLK_T_OUT, 8, 4096, data)
  const f = add(r, VIRTIO_BLK_T_FLUSH, 0, 0)
  const id = add(r, VIRTIO_BLK_T_GET_ID, 0, 20)
  // Read back in the same pop: the batch runs its operations in order.
  const rd = add(r, VIRTIO_BLK_T_IN, 8, 4096)
  t.is(r.device.processQueue(), 0, 'nothing is answered before the batch returns')
  t.true(r.device.busy)
  t.is(r.vm.driver.popUsed(), null)
  t.is(r.vm.memory.readU8(w.status), 0xff, 'no status byte written yet')
  t.is(r.device.processQueue(), 0, 'a kick while the batch runs does nothing')
  await r.idle()
  t.false(r.device.busy)
  const u = used(r)
  t.deepEqual(
    [...u.entries()],
    [
      [w.head, 1],
      [f.head, 1],
      [id.head, 21],
      [rd.head, 4097],
    ],
  )
  for (const s of [w, f, id, rd]) t.is(r.vm.memory.readU8(s.status), VIRTIO_BLK_S_OK)
  t.deepEqual(Buffer.from(r.vm.memory.read(rd.data, 4096)), data, 'IN saw the OUT before it')
  t.deepEqual(r.disk.readRange(8 * 512, 4096), data, 'the image has it')
  t.is(r.irqs.count, 1, 'one interrupt for the batch')
  t.like(r.device.stats, { requests: 4, reads: 1, writes: 1, flushes: 1, getIds: 1, ok: 4, ioerr: 0 })
})

test("io 'threads': the pop after a batch serves what the driver queued meanwhile, and a read past the image's end is IOERR", async (t) => {
  const r = rig(t, 'threads')
  add(r, VIRTIO_BLK_T_IN, 0, 512)
  r.device.processQueue()
  // Queued while the batch runs, with no kick: the batch's completion pops it.
  const late = add(r, VIRTIO_BLK_T_OUT, 1, 512, pattern(512, 3))
  // The image shrinks under the device: the capacity check passes, the preadv comes back short.
  fs.ftruncateSync(r.disk.fd, 16 * 512)
  // Resolves once no batch runs: the late request went out as a second batch, unkicked.
  await r.idle()
  t.is(r.vm.memory.readU8(late.status), VIRTIO_BLK_S_OK)
  const short = add(r, VIRTIO_BLK_T_IN, 100, 512)
  r.device.processQueue()
  await r.idle()
  const u = used(r)
  t.is(u.size, 3)
  t.is(r.vm.memory.readU8(late.status), VIRTIO_BLK_S_OK)
  t.is(r.vm.memory.readU8(short.status), VIRTIO_BLK_S_IOERR)
  t.is(u.get(short.head), 1, 'no data counted as written')
  t.regex(r.device.stats.lastError ?? '', /moved 0 of 512 bytes/)
})

test("io 'auto': inline while requests come one at a time, the threadpool once several are queued, inline again when they stop overlapping", async (t) => {
  const r = rig(t, 'auto')
  for (let i = 0; i < 3; i++) {
    const s = add(r, VIRTIO_BLK_T_IN, i, 512)
    t.is(r.device.processQueue(), 1, 'served inline')
    t.is(r.vm.memory.readU8(s.status), VIRTIO_BLK_S_OK)
  }
  add(r, VIRTIO_BLK_T_IN, 0, 512)
  add(r, VIRTIO_BLK_T_IN, 1, 512)
  t.is(r.device.processQueue(), 0, 'two at once: off to the threadpool')
  t.true(r.device.busy)
  await r.idle()
  // One at a time again: each batch's following pop finds nothing, and after enough of
  // those the queue is served inline again.
  let batches = 0
  for (;;) {
    add(r, VIRTIO_BLK_T_IN, 2, 512)
    if (r.device.processQueue() === 1) break
    batches++
    t.true(batches < 20, 'auto never went back inline')
    await r.idle()
  }
  t.true(batches >= 5, `went back inline only after several quiet batches (${batches})`)
  t.is(used(r).size, 3 + 2 + batches + 1)
  t.is(r.device.ioMode, 'auto')
})

test("io 'auto': a driver that queues its requests in bursts is served inline (a round trip would only add latency)", async (t) => {
  const r = rig(t, 'auto')
  let bursts = 0
  for (;;) {
    for (let i = 0; i < 8; i++) add(r, VIRTIO_BLK_T_IN, i, 512)
    if (r.device.processQueue() === 8) break
    bursts++
    t.true(bursts < 10, 'auto never went inline')
    await r.idle()
    t.is(used(r).size, 8)
  }
  t.true(bursts >= 2, `bursts went to the threadpool before the average caught up (${bursts})`)
  t.is(used(r).size, 8)
  for (let i = 0; i < 8; i++) add(r, VIRTIO_BLK_T_IN, i, 512)
  t.is(r.device.processQueue(), 8, 'and stays inline')
})

test("io 'threads' falls back to inline for a disk with no fd and for guest memory JavaScript can detach", (t) => {
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx: true })
  const mem = new BlkDevice(vm.queue, { backend: new MemDisk(64), io: 'threads' })
  add({ vm } as unknown as Rig, VIRTIO_BLK_T_FLUSH, 0, 0)
  t.is(mem.processQueue(), 1)
  t.is(mem.ioMode, 'sync')
  t.regex(mem.stats.lastError ?? '', /no file descriptor/)

  // Guest memory over a plain Buffer (detachable): the batch refuses it, the device serves inline.
  const layout = splitQueueLayout(0x1000, 16)
  const memory = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: Buffer.alloc(1 << 20) }])
  const driver = new SplitQueueDriver<string>(memory, { ...layout, eventIdx: true })
  const queue = new Queue(memory, 16)
  activateQueue(queue, layout, true)
  const disk = DiskImage.open({ sizeBytes: 64 * 512 })
  t.teardown(() => disk.close())
  const dev = new BlkDevice(queue, { backend: disk, io: 'threads' })
  const h = Buffer.alloc(16)
  encodeHeader(h, VIRTIO_BLK_T_FLUSH, 0)
  // A FLUSH touches no guest memory but its status byte: that could go off the loop too,
  // but the device asks about the memory before its first batch.
  memory.write(0x8000, h)
  driver.addChain([
    { addr: 0x8000, len: 16 },
    { addr: 0x8010, len: 1, writable: true },
  ])
  encodeHeader(h, VIRTIO_BLK_T_IN, 0)
  memory.write(0x9000, h)
  driver.addChain([
    { addr: 0x9000, len: 16 },
    { addr: 0xa000, len: 512, writable: true },
    { addr: 0x9010, len: 1, writable: true },
  ])
  t.is(dev.processQueue(), 2, 'served inline')
  t.is(memory.readU8(0x8010), VIRTIO_BLK_S_OK)
  t.is(memory.readU8(0x9010), VIRTIO_BLK_S_OK)
  t.is(dev.ioMode, 'sync')
  t.regex(dev.stats.lastError ?? '', /event loop/)
  t.like(dev.stats, { requests: 2, flushes: 1, reads: 1, ok: 2 })
})

test("io 'threads': stop() while a batch runs answers its requests but pops nothing more; a throwing interrupt stops the queue, not the process", async (t) => {
  const r = rig(t, 'threads')
  const a = add(r, VIRTIO_BLK_T_IN, 0, 512)
  r.device.processQueue()
  const b = add(r, VIRTIO_BLK_T_IN, 1, 512)
  r.device.stop()
  await r.idle()
  t.false(r.device.busy)
  t.is(r.vm.memory.readU8(a.status), VIRTIO_BLK_S_OK)
  t.is(r.vm.memory.readU8(b.status), 0xff, 'not popped after stop()')
  t.is(r.device.processQueue(), 0)

  let throwIt = true
  const s = rig(t, 'threads', () => {
    if (throwIt) throw new Error('call eventfd gone')
  })
  add(s, VIRTIO_BLK_T_IN, 0, 512)
  s.device.processQueue()
  await s.idle()
  throwIt = false
  t.regex(String(s.device.needsReset), /call eventfd gone/)
  t.is(s.device.processQueue(), 0, 'a broken queue serves nothing')
})

/** A BlkVhostUserDevice (`io: 'threads'`) on one ring whose Queue the test can swap. */
function vhostRig(t: { teardown(f: () => void): void }) {
  const disk = DiskImage.open({ sizeBytes: SECTORS * 512 })
  t.teardown(() => disk.close())
  const model = new BlkModel({ backend: disk })
  const logged: string[] = []
  const dev = new BlkVhostUserDevice({ model, io: 'threads', log: (line) => logged.push(line) })
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 64, eventIdx: true, shared: true })
  const state = { queue: vm.queue, notified: 0, notifyThrows: false }
  const ring: Vring = {
    index: 0,
    get queue() {
      return state.queue
    },
    get memory() {
      return state.queue.memory
    },
    ackedFeatures: model.features,
    notify: () => {
      if (state.notifyThrows) throw new Error('call eventfd gone')
      state.notified++
    },
  }
  const r = { vm, disk } as unknown as Rig
  return { disk, dev, vm, ring, state, r, logged }
}

test("vhost-user, io 'threads': queueStopped and drain wait for a running batch, whose requests count in the ring's used index", async (t) => {
  const { dev, vm, ring, r } = vhostRig(t)
  dev.queueStarted(ring)
  const a = add(r, VIRTIO_BLK_T_OUT, 0, 512, pattern(512, 1))
  dev.kick(ring)
  t.is(dev.inFlight, 1, 'the batch is in flight')
  let stopped = false
  const stopping = dev.queueStopped(ring).then(() => {
    stopped = true
  })
  await new Promise((resolve) => setImmediate(resolve))
  await stopping
  t.true(stopped)
  t.is(vm.memory.readU8(a.status), VIRTIO_BLK_S_OK)
  t.is(vm.queue.state().nextUsed, 1, 'GET_VRING_BASE would count it')
  t.is(dev.inFlight, 0)
  t.is(dev.stats().writes, 1)

  // The frontend leaves while a batch runs: drain() waits for it before it flushes.
  dev.queueStarted(ring)
  add(r, VIRTIO_BLK_T_IN, 0, 512)
  dev.kick(ring)
  dev.disconnected()
  t.is(dev.queues.size, 0)
  t.is(dev.inFlight, 1, 'still counted after its queue was forgotten')
  await dev.drain()
  t.is(dev.inFlight, 0)
})

test("vhost-user, io 'threads': a batch running when the memory table changes is answered on the ring's new Queue", async (t) => {
  const { dev, vm, ring, state, r } = vhostRig(t)
  dev.queueStarted(ring)
  const a = add(r, VIRTIO_BLK_T_IN, 0, 512)
  dev.kick(ring)
  t.is(dev.inFlight, 1)
  // What the backend does on SET_MEM_TABLE: the same state, a new Queue (here over the same memory).
  const old = state.queue
  state.queue = Queue.fromState(vm.memory, old.state())
  await dev.drain()
  t.is(vm.memory.readU8(a.status), VIRTIO_BLK_S_OK)
  t.is(state.queue.state().nextUsed, 1, 'used on the new Queue')
  t.is(old.state().nextUsed, 0, 'not on the old one')
  t.is(state.notified, 1)
})

test("vhost-user, io 'threads': a queue a batch's completion broke is logged once, and the others waiting are woken", async (t) => {
  const { dev, ring, state, r, logged } = vhostRig(t)
  dev.queueStarted(ring)
  add(r, VIRTIO_BLK_T_IN, 0, 512)
  state.notifyThrows = true
  dev.kick(ring)
  t.is(dev.inFlight, 1)
  await dev.drain()
  t.deepEqual(logged, ['queue 0 stopped (the driver broke it): call eventfd gone'])
  add(r, VIRTIO_BLK_T_IN, 1, 512)
  dev.kick(ring)
  t.is(dev.inFlight, 0, 'a broken queue serves nothing')
  t.is(logged.length, 1, 'logged once')
})
