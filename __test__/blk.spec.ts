// The virtio-blk example's device model (examples/virtio-blk/device.ts), request
// by request: every request type, every way a chain can be malformed, and its
// notifications. blk-demo.spec.ts runs the whole demo.
import test from 'ava'

import { VirtioQueueError } from '..'
import { DriverConstants as C, type DriverBuffer } from '../driver'
import { BlkDevice } from '../examples/virtio-blk/device'
import {
  encodeHeader,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from '../examples/virtio-blk/protocol'
import { createVm } from '../examples/virtio-blk/vm'
import { MemDisk, pattern } from './helpers/blk-mem-disk'

// ---------------------------------------------------------------- helpers

const SERIAL = 'test-serial-0001'

function rig(eventIdx = true) {
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx })
  const disk = new MemDisk(64)
  const irq = { count: 0 }
  const device = new BlkDevice(vm.queue, { backend: disk, serial: SERIAL, signalUsedQueue: () => irq.count++ })
  return { vm, disk, device, irq }
}

interface Sent {
  head: number
  status: number // guest address of the status byte (-1: none)
  data: number[] // guest addresses of the data buffers
}

interface ReqOptions {
  data?: number[] // data buffer lengths
  headerLen?: number
  status?: boolean // include the status byte (default true)
  indirect?: boolean
}

/** Submits one request (data writable for IN and GET_ID) and lets the device process it. */
function send(r: ReturnType<typeof rig>, type: number, sector: bigint | number, o: ReqOptions = {}): Sent {
  const { vm } = r
  const hdr = vm.allocator.alloc(32, 16)
  const header = Buffer.alloc(16)
  encodeHeader(header, type, sector)
  vm.memory.write(hdr, header.subarray(0, o.headerLen ?? 16))
  const writable = type === VIRTIO_BLK_T_IN || type === VIRTIO_BLK_T_GET_ID
  const data = (o.data ?? []).map((len) => {
    const a = vm.allocator.alloc(len, 8)
    vm.memory.write(a, Buffer.alloc(len, 0xee))
    return a
  })
  const buffers: DriverBuffer[] = [{ addr: hdr, len: o.headerLen ?? 16 }]
  data.forEach((a, i) => buffers.push({ addr: a, len: o.data![i]!, writable }))
  const status = o.status === false ? -1 : hdr + 16
  if (status >= 0) {
    vm.memory.writeU8(status, 0xff)
    buffers.push({ addr: status, len: 1, writable: true })
  }
  const head = vm.driver.addChain(buffers, { indirect: o.indirect ?? false })
  vm.driver.kick()
  return { head, status, data }
}

/** Runs the device and returns the single used element with the status byte. */
function complete(r: ReturnType<typeof rig>, sent: Sent): { len: number; status: number } {
  r.device.processQueue()
  const used = r.vm.driver.popUsed()
  if (used === null || used.head !== sent.head) throw new Error(`expected a used element for head ${sent.head}`)
  return { len: used.len, status: sent.status >= 0 ? r.vm.memory.readU8(sent.status) : -1 }
}

// ---------------------------------------------------------------- requests

test('OUT writes the data buffers to the disk: status OK, used len 1', (t) => {
  const r = rig()
  const s = send(r, VIRTIO_BLK_T_OUT, 3, { data: [700, 324] })
  const bytes = pattern(1024, 7)
  r.vm.memory.write(s.data[0]!, bytes.subarray(0, 700))
  r.vm.memory.write(s.data[1]!, bytes.subarray(700))
  t.deepEqual(complete(r, s), { len: 1, status: VIRTIO_BLK_S_OK })
  t.true(r.disk.bytes.subarray(3 * 512, 5 * 512).equals(bytes))
  t.is(
    r.disk.bytes.subarray(0, 3 * 512).some((b) => b !== 0),
    false,
  )
  t.is(r.device.stats.bytesWritten, 1024)
})

test('IN reads the disk into the data buffers: status OK, used len = data + status byte', (t) => {
  const r = rig()
  const bytes = pattern(3 * 512, 9)
  bytes.copy(r.disk.bytes, 10 * 512)
  for (const indirect of [false, true]) {
    const s = send(r, VIRTIO_BLK_T_IN, 10, { data: [512, 1000, 24], indirect })
    t.deepEqual(complete(r, s), { len: 3 * 512 + 1, status: VIRTIO_BLK_S_OK })
    const got = Buffer.concat([
      r.vm.memory.read(s.data[0]!, 512),
      r.vm.memory.read(s.data[1]!, 1000),
      r.vm.memory.read(s.data[2]!, 24),
    ])
    t.true(got.equals(bytes), `indirect ${indirect}`)
  }
  t.is(r.device.stats.reads, 2)
})

test('any layout: a header split across descriptors, and the status byte sharing the data buffer', (t) => {
  const r = rig()
  const { memory, allocator, driver } = r.vm
  const data = pattern(512, 5)
  // OUT: [10 header bytes] [6 header bytes + 512 data bytes] [status]
  const out = allocator.alloc(16 + 512 + 1, 8)
  const header = Buffer.alloc(16)
  encodeHeader(header, VIRTIO_BLK_T_OUT, 2)
  memory.write(out, Buffer.concat([header, data, Buffer.from([0xff])]))
  let head = driver.addChain([
    { addr: out, len: 10 },
    { addr: out + 10, len: 6 + 512 },
    { addr: out + 528, len: 1, writable: true },
  ])
  t.deepEqual(complete(r, { head, status: out + 528, data: [] }), { len: 1, status: VIRTIO_BLK_S_OK })
  t.true(r.disk.bytes.subarray(1024, 1536).equals(data))
  // IN: [header] [512 data bytes + status byte in one writable buffer]
  const inn = allocator.alloc(16 + 513, 8)
  encodeHeader(header, VIRTIO_BLK_T_IN, 2)
  memory.write(inn, header)
  head = driver.addChain([
    { addr: inn, len: 16 },
    { addr: inn + 16, len: 513, writable: true },
  ])
  t.deepEqual(complete(r, { head, status: inn + 16 + 512, data: [] }), { len: 513, status: VIRTIO_BLK_S_OK })
  t.true(memory.read(inn + 16, 512).equals(data))
})

test('FLUSH flushes the backend: status OK, used len 1', (t) => {
  const r = rig()
  t.deepEqual(complete(r, send(r, VIRTIO_BLK_T_FLUSH, 0)), { len: 1, status: VIRTIO_BLK_S_OK })
  t.is(r.disk.flushes, 1)
})

test('GET_ID writes the 20-byte NUL-padded serial, or as much as fits', (t) => {
  const r = rig()
  const s = send(r, VIRTIO_BLK_T_GET_ID, 0, { data: [20] })
  t.deepEqual(complete(r, s), { len: 21, status: VIRTIO_BLK_S_OK })
  t.deepEqual(r.vm.memory.read(s.data[0]!, 20), Buffer.concat([Buffer.from(SERIAL), Buffer.alloc(20 - SERIAL.length)]))
  const short = send(r, VIRTIO_BLK_T_GET_ID, 0, { data: [6] })
  t.deepEqual(complete(r, short), { len: 7, status: VIRTIO_BLK_S_OK })
  t.is(r.vm.memory.read(short.data[0]!, 6).toString(), SERIAL.slice(0, 6))
})

test('unknown and unnegotiated request types are answered UNSUPP without touching the disk', (t) => {
  const r = rig()
  for (const type of [VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, 2, 0xffffffff]) {
    t.deepEqual(complete(r, send(r, type, 0, { data: [16] })), { len: 1, status: VIRTIO_BLK_S_UNSUPP }, `type ${type}`)
  }
  t.is(r.device.stats.unsupp, 4)
  t.is(
    r.disk.bytes.some((b) => b !== 0),
    false,
  )
})

test('out-of-range sectors and partial sectors are IOERR; nothing is read or written', (t) => {
  const r = rig() // 64 sectors
  const cases: Array<[number, bigint, number]> = [
    [VIRTIO_BLK_T_IN, 64n, 512], // starts at the end
    [VIRTIO_BLK_T_OUT, 63n, 1024], // runs past the end
    [VIRTIO_BLK_T_IN, 0xffffffffffffffffn, 512], // sector + count overflows u64
    [VIRTIO_BLK_T_OUT, 1n << 62n, 512],
    [VIRTIO_BLK_T_IN, 0n, 100], // not whole sectors
  ]
  for (const [type, sector, len] of cases) {
    const s = send(r, type, sector, { data: [len] })
    t.deepEqual(complete(r, s), { len: 1, status: VIRTIO_BLK_S_IOERR }, `type ${type} sector ${sector}`)
    if (type === VIRTIO_BLK_T_IN)
      t.is(
        r.vm.memory.read(s.data[0]!, len).every((b) => b === 0xee),
        true,
      )
  }
  t.is(
    r.disk.bytes.some((b) => b !== 0),
    false,
  )
  t.is(r.device.stats.ioerr, 5)
  t.is(r.device.stats.bytesRead + r.device.stats.bytesWritten, 0)
})

test('a backend I/O error is IOERR, and the next request works again', (t) => {
  const r = rig()
  r.disk.failNext = true
  t.deepEqual(complete(r, send(r, VIRTIO_BLK_T_IN, 0, { data: [512] })), { len: 1, status: VIRTIO_BLK_S_IOERR })
  t.regex(r.device.stats.lastError!, /EIO/)
  t.deepEqual(complete(r, send(r, VIRTIO_BLK_T_IN, 0, { data: [512] })), { len: 513, status: VIRTIO_BLK_S_OK })
})

// ---------------------------------------------------------------- malformed chains

test('a header shorter than 16 bytes, or in a writable buffer, is IOERR', (t) => {
  const r = rig()
  t.deepEqual(complete(r, send(r, VIRTIO_BLK_T_OUT, 0, { headerLen: 8 })), { len: 1, status: VIRTIO_BLK_S_IOERR })
  // Header and status both device-writable: no readable header at all.
  const hdr = r.vm.allocator.alloc(32, 16)
  r.vm.memory.writeU8(hdr + 16, 0xff)
  const head = r.vm.driver.addChain([
    { addr: hdr, len: 16, writable: true },
    { addr: hdr + 16, len: 1, writable: true },
  ])
  t.deepEqual(complete(r, { head, status: hdr + 16, data: [] }), { len: 1, status: VIRTIO_BLK_S_IOERR })
})

test('a chain without a writable status byte completes with used len 0 and writes nothing', (t) => {
  const r = rig()
  const s = send(r, VIRTIO_BLK_T_OUT, 0, { data: [512], status: false })
  r.vm.memory.write(s.data[0]!, pattern(512, 1))
  t.deepEqual(complete(r, s), { len: 0, status: -1 })
  // A zero-length last descriptor has no status byte either.
  const hdr = r.vm.allocator.alloc(32, 16)
  const head = r.vm.driver.addChain([
    { addr: hdr, len: 16 },
    { addr: hdr + 16, len: 0, writable: true },
  ])
  t.deepEqual(complete(r, { head, status: -1, data: [] }), { len: 0, status: -1 })
  t.is(r.device.stats.noStatus, 2)
  t.is(
    r.disk.bytes.some((b) => b !== 0),
    false,
  )
})

test('buffers outside guest memory: IOERR when the status byte is reachable, else used len 0', (t) => {
  const r = rig()
  const hdr = r.vm.allocator.alloc(32, 16)
  const header = Buffer.alloc(16)
  encodeHeader(header, VIRTIO_BLK_T_IN, 0)
  r.vm.memory.write(hdr, header)
  r.vm.memory.writeU8(hdr + 16, 0xff)
  const outside = 1 << 24
  let head = r.vm.driver.addChain([
    { addr: hdr, len: 16 },
    { addr: outside, len: 512, writable: true },
    { addr: hdr + 16, len: 1, writable: true },
  ])
  t.deepEqual(complete(r, { head, status: hdr + 16, data: [] }), { len: 1, status: VIRTIO_BLK_S_IOERR })
  t.regex(r.device.stats.lastError!, /not in guest memory/)
  head = r.vm.driver.addChain([
    { addr: hdr, len: 16 },
    { addr: outside, len: 1, writable: true },
  ])
  t.deepEqual(complete(r, { head, status: -1, data: [] }), { len: 0, status: -1 })
})

test('an incomplete chain (next index out of range) gets used len 0, and the queue keeps working', (t) => {
  const r = rig()
  const { driver, memory } = r.vm
  const hdr = r.vm.allocator.alloc(32, 16)
  // Raw: descriptor 5 says NEXT → 200 in a 16-entry table; publish it by hand.
  driver.writeDescriptor(5, { addr: hdr, len: 16, flags: C.VIRTQ_DESC_F_NEXT, next: 200 })
  driver.writeAvailEntry(0, 5)
  driver.setAvailIdx(1)
  memory.writeU8(hdr + 16, 0xff)
  t.is(r.device.processQueue(), 1)
  t.is(driver.readUsedIdx(), 1)
  t.deepEqual(driver.readUsedElem(0), { id: 5, len: 0 })
  t.is(r.device.stats.noStatus, 1)
  t.regex(r.device.stats.lastError!, /InvalidDescriptorIndex/)
  t.is(r.device.needsReset, null)
})

test('an avail idx more than a queue size ahead stops the queue (needsReset) instead of throwing', (t) => {
  const r = rig()
  r.vm.driver.setAvailIdx(100) // queue size 16
  t.is(r.device.processQueue(), 0)
  t.true(r.device.needsReset instanceof VirtioQueueError)
  t.is((r.device.needsReset as VirtioQueueError).code, 'InvalidAvailRingIndex')
  t.is(r.device.processQueue(), 0)
})

// ---------------------------------------------------------------- notifications

test('event idx: the device interrupts only when the driver asked (used_event)', (t) => {
  const r = rig(true)
  complete(r, send(r, VIRTIO_BLK_T_FLUSH, 0))
  t.is(r.irq.count, 1)
  r.vm.driver.disableInterrupts() // used_event = usedIdx - 1: nothing wanted
  complete(r, send(r, VIRTIO_BLK_T_FLUSH, 0))
  t.is(r.irq.count, 1)
  t.is(r.device.stats.notificationsSuppressed, 1)
  r.vm.driver.enableInterrupts()
  complete(r, send(r, VIRTIO_BLK_T_FLUSH, 0))
  t.is(r.irq.count, 2)
  t.is(r.device.stats.notifications, 2)
})

test('event idx: the device interrupts after each pass, before re-arming, and serves what the woken driver adds', (t) => {
  // A driver woken by the interrupt queues its next request before the device has re-armed
  // kicks (as a vhost-user frontend on another CPU does): the same processQueue() call
  // serves it, so the driver need not kick for it.
  const r = rig(true)
  let more = 1
  let second: Sent | null = null
  const device = new BlkDevice(r.vm.queue, {
    model: r.device.model,
    signalUsedQueue: () => {
      r.irq.count++
      if (more-- > 0) second = send(r, VIRTIO_BLK_T_FLUSH, 0)
    },
  })
  const first = send(r, VIRTIO_BLK_T_FLUSH, 0)
  t.is(device.processQueue(), 2, 'both requests, in one call')
  // The driver did not re-arm used_event after the first: the second pass is not signalled.
  t.is(r.irq.count, 1)
  t.is(device.stats.notificationsSuppressed, 1)
  t.is(device.stats.wakeups, 1)
  t.is(r.vm.driver.popUsed()?.head, first.head)
  t.is(r.vm.driver.popUsed()?.head, (second as Sent | null)?.head)
  t.is(device.processQueue(), 0)
})

test('without event idx the device interrupts after every batch', (t) => {
  const r = rig(false)
  r.vm.driver.disableInterrupts() // VRING_AVAIL_F_NO_INTERRUPT: the crate does not honour it
  complete(r, send(r, VIRTIO_BLK_T_FLUSH, 0))
  complete(r, send(r, VIRTIO_BLK_T_FLUSH, 0))
  t.is(r.irq.count, 2)
  t.is(r.device.processQueue(), 0) // nothing new: no interrupt
  t.is(r.irq.count, 2)
})
