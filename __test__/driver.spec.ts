import test from 'ava'

import {
  DriverConstants as C,
  DriverError,
  GuestAllocator,
  SplitQueueDriver,
  setUpDeviceQueue,
  splitQueueLayout,
  vringNeedEvent,
  type DriverBuffer,
  type SplitQueueDriverOptions,
  type UsedElement,
} from '../src/driver/index'
import { FakeMemory, type FakeMemoryOptions } from './helpers/fake-memory'

// ---------------------------------------------------------------- helpers

const MEM_BASE = 0x10000
const MEM_SIZE = 0x100000
const QUEUE_BASE = 0x10000
const DATA_BASE = 0x40000

interface Rig<T = unknown> {
  mem: FakeMemory
  q: SplitQueueDriver<T>
  dev: MiniDevice
  alloc: GuestAllocator
}

function rig<T = unknown>(
  size: number,
  opts: Partial<SplitQueueDriverOptions> = {},
  memOpts: FakeMemoryOptions = {},
): Rig<T> {
  const mem = new FakeMemory(MEM_BASE, MEM_SIZE, memOpts)
  const layout = splitQueueLayout(QUEUE_BASE, size)
  const alloc = new GuestAllocator(DATA_BASE, MEM_BASE + MEM_SIZE - DATA_BASE)
  const q = new SplitQueueDriver<T>(mem, { ...layout, allocator: alloc, ...opts })
  return { mem, q, dev: new MiniDevice(mem, q), alloc }
}

interface SeenBuffer {
  addr: number
  len: number
  writable: boolean
}

/** Just enough of a device to drive the driver: read avail, walk chains, write used. */
class MiniDevice {
  nextAvail = 0
  usedIdx = 0
  constructor(
    private readonly mem: FakeMemory,
    private readonly q: SplitQueueDriver<unknown>,
  ) {}

  popAvail(): number | null {
    if (this.mem.loadU16(this.q.availRing + 2) === this.nextAvail) return null
    const head = this.mem.readU16(this.q.availRing + 4 + 2 * (this.nextAvail % this.q.size))
    this.nextAvail = (this.nextAvail + 1) & 0xffff
    return head
  }

  /** Walks a chain (following one level of INDIRECT), as a device would. */
  chain(head: number): SeenBuffer[] {
    let table = this.q.descTable
    let i = head
    const out: SeenBuffer[] = []
    for (;;) {
      const at = table + 16 * i
      const flags = this.mem.readU16(at + 12)
      if (flags & C.VIRTQ_DESC_F_INDIRECT) {
        table = Number(this.mem.readU64(at))
        i = 0
        continue
      }
      out.push({
        addr: Number(this.mem.readU64(at)),
        len: this.mem.readU32(at + 8),
        writable: (flags & C.VIRTQ_DESC_F_WRITE) !== 0,
      })
      if (!(flags & C.VIRTQ_DESC_F_NEXT)) return out
      i = this.mem.readU16(at + 14)
    }
  }

  pushUsed(id: number, len: number, publish = true): void {
    const at = this.q.usedRing + 4 + 8 * (this.usedIdx % this.q.size)
    this.mem.writeU32(at, id)
    this.mem.writeU32(at + 4, len)
    this.usedIdx = (this.usedIdx + 1) & 0xffff
    if (publish) this.mem.storeU16(this.q.usedRing + 2, this.usedIdx)
  }

  setAvailEvent(idx: number): void {
    this.mem.writeU16(this.q.availEventAddr, idx)
  }
}

function bufs(...spec: Array<[number, number, boolean?]>): DriverBuffer[] {
  return spec.map(([addr, len, writable]) => ({ addr, len, writable: writable ?? false }))
}

function isDriverError(code: string) {
  return { instanceOf: DriverError, message: new RegExp(`^${code}: `) }
}

/** Moves a fresh queue's avail/used indices to `n` by add/complete/pop cycles. */
function advance(r: Rig, n: number): void {
  for (let i = 0; i < n; i++) {
    r.q.addChain([{ addr: DATA_BASE, len: 1 }])
    r.q.kick()
    r.dev.pushUsed(r.dev.popAvail()!, 0)
    r.q.popUsed()
  }
}

// ---------------------------------------------------------------- constants

test('DriverConstants match the spec', (t) => {
  t.like(C, {
    VIRTQ_DESC_F_NEXT: 1,
    VIRTQ_DESC_F_WRITE: 2,
    VIRTQ_DESC_F_INDIRECT: 4,
    VRING_AVAIL_F_NO_INTERRUPT: 1,
    VRING_USED_F_NO_NOTIFY: 1,
    VIRTIO_F_INDIRECT_DESC: 28,
    VIRTIO_F_EVENT_IDX: 29,
    DESC_SIZE: 16,
    USED_ELEM_SIZE: 8,
    MAX_QUEUE_SIZE: 32768,
    DESC_TABLE_ALIGN: 16,
    AVAIL_RING_ALIGN: 2,
    USED_RING_ALIGN: 4,
  })
  t.true(Object.isFrozen(C))
})

test('vringNeedEvent at the window boundaries and across u16 wrap', (t) => {
  // Window is [old, new).
  t.true(vringNeedEvent(10, 11, 10))
  t.false(vringNeedEvent(11, 11, 10))
  t.false(vringNeedEvent(9, 11, 10))
  t.true(vringNeedEvent(12, 15, 10))
  t.false(vringNeedEvent(10, 10, 10)) // nothing new
  t.true(vringNeedEvent(0xffff, 2, 0xfffe)) // window wraps: {fffe, ffff, 0, 1}
  t.true(vringNeedEvent(0, 2, 0xfffe))
  t.true(vringNeedEvent(1, 2, 0xfffe))
  t.false(vringNeedEvent(2, 2, 0xfffe))
  t.false(vringNeedEvent(0xfffd, 2, 0xfffe))
})

// ---------------------------------------------------------------- layout

test('splitQueueLayout: spec sizes and alignments', (t) => {
  t.deepEqual(splitQueueLayout(0x1000, 256), {
    size: 256,
    descTable: 0x1000,
    availRing: 0x2000,
    usedRing: 0x2208,
    end: 0x2208 + 6 + 8 * 256,
  })
  t.is(splitQueueLayout(0x1000, 256, { usedAlign: 4096 }).usedRing, 0x3000)
  t.deepEqual(splitQueueLayout(0, 1, { eventIdx: true }), {
    size: 1,
    descTable: 0,
    availRing: 16,
    usedRing: 24,
    end: 38,
  })
  for (let size = 1; size <= 32768; size *= 2) {
    const l = splitQueueLayout(0x10, size)
    t.is(l.descTable % 16, 0)
    t.is(l.availRing, l.descTable + 16 * size)
    t.is(l.usedRing % 4, 0)
    t.true(l.usedRing >= l.availRing + 6 + 2 * size && l.usedRing < l.availRing + 6 + 2 * size + 4)
    t.is(l.end, l.usedRing + 6 + 8 * size)
  }
})

test('splitQueueLayout: argument errors', (t) => {
  t.throws(() => splitQueueLayout(0x1008, 8), { instanceOf: RangeError, message: /base/ })
  t.throws(() => splitQueueLayout(-16, 8), { instanceOf: RangeError, message: /base/ })
  t.throws(() => splitQueueLayout(0, 0), { instanceOf: RangeError, message: /size/ })
  t.throws(() => splitQueueLayout(0, 3), { instanceOf: RangeError, message: /size.*power of two/ })
  t.throws(() => splitQueueLayout(0, 65536), { instanceOf: RangeError, message: /size/ })
  t.throws(() => splitQueueLayout(0, 8, { usedAlign: 2 }), { instanceOf: RangeError, message: /usedAlign/ })
  t.throws(() => splitQueueLayout(0, 8, { usedAlign: 12 }), { instanceOf: RangeError, message: /usedAlign/ })
  t.throws(() => splitQueueLayout(0.5, 8), { instanceOf: TypeError, message: /base/ })
})

// ---------------------------------------------------------------- construction

test('constructor validates its arguments', (t) => {
  const mem = new FakeMemory(MEM_BASE, MEM_SIZE)
  const l = splitQueueLayout(QUEUE_BASE, 8)
  t.throws(() => new SplitQueueDriver(mem, { ...l, size: 6 }), { instanceOf: RangeError, message: /options\.size/ })
  t.throws(() => new SplitQueueDriver(mem, { ...l, size: 65536 }), { instanceOf: RangeError, message: /options\.size/ })
  t.throws(() => new SplitQueueDriver(mem, { ...l, descTable: l.descTable + 8 }), {
    instanceOf: RangeError,
    message: /descTable.*16/,
  })
  t.throws(() => new SplitQueueDriver(mem, { ...l, availRing: l.availRing + 1 }), {
    instanceOf: RangeError,
    message: /availRing/,
  })
  t.throws(() => new SplitQueueDriver(mem, { ...l, usedRing: l.usedRing + 2 }), {
    instanceOf: RangeError,
    message: /usedRing/,
  })
  t.throws(() => new SplitQueueDriver(mem, { ...l, usedRing: l.availRing }), {
    instanceOf: RangeError,
    message: /overlap/,
  })
  t.throws(() => new SplitQueueDriver({} as never, l), { instanceOf: TypeError, message: /memory\.readU8/ })
  t.throws(() => new SplitQueueDriver(mem, { ...l, eventIdx: 1 as never }), {
    instanceOf: TypeError,
    message: /eventIdx/,
  })
  t.throws(() => new SplitQueueDriver(mem, { ...l, allocator: {} as never }), {
    instanceOf: TypeError,
    message: /allocator/,
  })
  // A queue outside guest memory fails loudly while zeroing it.
  t.throws(() => new SplitQueueDriver(mem, splitQueueLayout(0, 8)), { instanceOf: RangeError })
})

test('constructor zero-initialises the rings and builds a full free list', (t) => {
  const mem = new FakeMemory(MEM_BASE, MEM_SIZE)
  mem.bytes.fill(0xff)
  const l = splitQueueLayout(QUEUE_BASE, 16)
  const q = new SplitQueueDriver(mem, l)
  const zero = (addr: number, len: number) => mem.read(addr, len).every((b) => b === 0)
  t.true(zero(l.descTable, 16 * 16))
  t.true(zero(l.availRing, 6 + 2 * 16))
  t.true(zero(l.usedRing, 6 + 8 * 16))
  t.is(mem.readU16(l.availRing + 6 + 2 * 16), 0xffff) // alignment padding untouched
  t.is(mem.read(l.end, 1)[0], 0xff) // nothing beyond the queue touched
  t.like(q, { size: 16, freeCount: 16, inFlight: 0, availIdx: 0, usedIdx: 0, eventIdx: false })
  t.is(q.usedEventAddr, l.availRing + 4 + 2 * 16)
  t.is(q.availEventAddr, l.usedRing + 4 + 8 * 16)
})

// ---------------------------------------------------------------- direct chains

test('a direct chain is laid out byte-exactly as the spec says', (t) => {
  const { mem, q } = rig(8)
  const head = q.addChain(bufs([0x1_2345_6780, 0x100], [0x50000, 0x20], [0x60000, 0x200, true]))
  t.is(head, 0)
  const d = mem.read(q.descTable, 48)
  const expected = Buffer.alloc(48)
  expected.writeBigUInt64LE(0x1_2345_6780n, 0)
  expected.writeUInt32LE(0x100, 8)
  expected.writeUInt16LE(C.VIRTQ_DESC_F_NEXT, 12)
  expected.writeUInt16LE(1, 14)
  expected.writeBigUInt64LE(0x50000n, 16)
  expected.writeUInt32LE(0x20, 24)
  expected.writeUInt16LE(C.VIRTQ_DESC_F_NEXT, 28)
  expected.writeUInt16LE(2, 30)
  expected.writeBigUInt64LE(0x60000n, 32)
  expected.writeUInt32LE(0x200, 40)
  expected.writeUInt16LE(C.VIRTQ_DESC_F_WRITE, 44)
  expected.writeUInt16LE(0, 46)
  t.deepEqual(d, expected)
  // avail ring: flags 0, idx 1, ring[0] = head.
  t.deepEqual(mem.read(q.availRing, 6), Buffer.from([0, 0, 1, 0, 0, 0]))
  t.like(q, { freeCount: 5, inFlight: 1, availIdx: 1, publishedAvailIdx: 1, pendingCount: 0 })
  // The next chain starts at the next free descriptor and uses avail slot 1.
  t.is(q.addChain(bufs([0x70000, 8, true])), 3)
  t.is(mem.readU16(q.availRing + 4 + 2), 3)
  t.is(mem.readU16(q.availRing + 2), 2)
})

test('the avail idx is published by storeU16 after the ring entry and descriptors', (t) => {
  const stores: Array<[number, number, number, number]> = []
  let q: SplitQueueDriver | undefined
  const mem: FakeMemory = new FakeMemory(MEM_BASE, MEM_SIZE, {
    onStoreU16: (addr, value) => {
      if (q !== undefined && addr === q.availRing + 2) {
        // What a device would see at the moment of the release store.
        stores.push([
          value,
          mem.readU16(q.availRing + 4 + 2 * ((value - 1) % q.size)),
          mem.readU32(q.descTable + 8),
          mem.readU16(q.availRing + 2),
        ])
      }
    },
  })
  q = new SplitQueueDriver(mem, splitQueueLayout(QUEUE_BASE, 4))
  q.addChain(bufs([0x50000, 77]))
  t.deepEqual(stores, [[1, 0, 77, 0]])
})

test('publish: false batches entries until publish() / kick()', (t) => {
  const { mem, q } = rig(8)
  q.addChain(bufs([0x50000, 1]), { publish: false })
  q.addChain(bufs([0x50000, 1]), { publish: false })
  t.is(mem.readU16(q.availRing + 2), 0)
  t.is(mem.readU16(q.availRing + 4 + 2), 1) // entry already written
  t.like(q, { availIdx: 2, publishedAvailIdx: 0, pendingCount: 2, inFlight: 2 })
  t.false(q.notifyNeeded()) // nothing published yet
  t.is(q.publish(), 2)
  t.is(q.publish(), 0)
  t.is(mem.readU16(q.availRing + 2), 2)
  q.addChain(bufs([0x50000, 1]), { publish: false })
  t.true(q.kick())
  t.is(mem.readU16(q.availRing + 2), 3)
  t.like(q, { pendingCount: 0, kicksSent: 1, kicksSuppressed: 0 })
  t.false(q.kick()) // nothing new since the last kick: not counted
  t.is(q.kicksSent, 1)
})

test('argument errors of addChain name the argument and consume nothing', (t) => {
  const { q } = rig(8)
  t.throws(() => q.addChain([]), { instanceOf: RangeError, message: /buffers/ })
  t.throws(() => q.addChain('x' as never), { instanceOf: TypeError, message: /buffers/ })
  t.throws(() => q.addChain([null as never]), { instanceOf: TypeError, message: /buffers\[0\]/ })
  t.throws(() => q.addChain(bufs([1, 1], [-1, 1])), { instanceOf: RangeError, message: /buffers\[1\]\.addr/ })
  t.throws(() => q.addChain(bufs([1.5, 1])), { instanceOf: TypeError, message: /buffers\[0\]\.addr/ })
  t.throws(() => q.addChain(bufs([2 ** 53, 1])), { instanceOf: RangeError, message: /buffers\[0\]\.addr/ })
  t.throws(() => q.addChain(bufs([1, 2 ** 32])), { instanceOf: RangeError, message: /buffers\[0\]\.len/ })
  t.throws(() => q.addChain(bufs([1, 1], [2, 1, true], [3, 1])), {
    instanceOf: TypeError,
    message: /buffers\[2\] is device-readable but follows a device-writable/,
  })
  t.throws(() => q.addChain(bufs([1, 1]), { indirect: 'yes' as never }), { instanceOf: TypeError, message: /indirect/ })
  t.throws(() => q.addChain(bufs([1, 1]), { indirect: { tableAddr: -16 } }), {
    instanceOf: RangeError,
    message: /tableAddr/,
  })
  t.like(q, { freeCount: 8, inFlight: 0, availIdx: 0 })
  // All-writable and all-readable chains are fine.
  q.addChain(bufs([1, 1, true], [2, 2, true]))
  q.addChain(bufs([1, 1], [2, 2]))
  t.is(q.freeCount, 4)
})

test('NO_SPACE when the free list is too short; state unchanged', (t) => {
  const { q, alloc } = rig(4)
  q.addChain(bufs([1, 1], [2, 1], [3, 1]))
  const err = t.throws(() => q.addChain(bufs([1, 1], [2, 1])), isDriverError('NO_SPACE'))
  t.is(err?.code, 'NO_SPACE')
  t.regex(err?.message ?? '', /need 2 free descriptor\(s\), 1 of 4 free/)
  t.like(q, { freeCount: 1, inFlight: 1, availIdx: 1 })
  q.addChain(bufs([1, 1]), { indirect: true })
  t.is(q.freeCount, 0)
  const allocated = alloc.allocationCount
  t.throws(() => q.addChain(bufs([1, 1]), { indirect: true }), isDriverError('NO_SPACE'))
  t.throws(() => q.addChain(bufs([1, 1]), { indirect: { tableAddr: 0x50000 } }), isDriverError('NO_SPACE'))
  t.is(alloc.allocationCount, allocated) // no table leaked
  t.throws(
    () => q.addChain(bufs(...Array.from({ length: 5 }, (): [number, number] => [1, 1]))),
    isDriverError('NO_SPACE'),
  )
})

// ---------------------------------------------------------------- indirect chains

test('indirect chain with a caller table: one INDIRECT ring descriptor, exact table bytes', (t) => {
  const { mem, q, dev } = rig(8)
  const tableAddr = 0x50000
  const head = q.addChain(bufs([0x60000, 16], [0x61000, 512, true], [0x62000, 1, true]), {
    indirect: { tableAddr },
    token: 'io',
  })
  t.is(q.freeCount, 7)
  const ring = q.readDescriptor(head)
  t.deepEqual(ring, { addr: BigInt(tableAddr), len: 48, flags: C.VIRTQ_DESC_F_INDIRECT, next: 0 })
  const table = mem.read(tableAddr, 48)
  const expected = Buffer.alloc(48)
  expected.writeBigUInt64LE(0x60000n, 0)
  expected.writeUInt32LE(16, 8)
  expected.writeUInt16LE(C.VIRTQ_DESC_F_NEXT, 12)
  expected.writeUInt16LE(1, 14)
  expected.writeBigUInt64LE(0x61000n, 16)
  expected.writeUInt32LE(512, 24)
  expected.writeUInt16LE(C.VIRTQ_DESC_F_NEXT | C.VIRTQ_DESC_F_WRITE, 28)
  expected.writeUInt16LE(2, 30)
  expected.writeBigUInt64LE(0x62000n, 32)
  expected.writeUInt32LE(1, 40)
  expected.writeUInt16LE(C.VIRTQ_DESC_F_WRITE, 44)
  expected.writeUInt16LE(0, 46)
  t.deepEqual(table, expected)
  t.deepEqual(dev.chain(dev.popAvail()!), [
    { addr: 0x60000, len: 16, writable: false },
    { addr: 0x61000, len: 512, writable: true },
    { addr: 0x62000, len: 1, writable: true },
  ])
  dev.pushUsed(head, 513)
  t.deepEqual(q.popUsed(), { head, len: 513, token: 'io' })
  t.is(q.freeCount, 8)
})

test('indirect: true allocates the table from the allocator and frees it on pop', (t) => {
  const { q, dev, alloc } = rig(8)
  const head = q.addChain(bufs([0x60000, 4], [0x61000, 4, true]), { indirect: true })
  t.is(alloc.allocationCount, 1)
  const d = q.readDescriptor(head)
  t.is(Number(d.addr) % 16, 0)
  t.is(alloc.sizeOf(Number(d.addr)), 32)
  t.is(d.len, 32)
  t.is(dev.chain(dev.popAvail()!).length, 2)
  dev.pushUsed(head, 4)
  q.popUsed()
  t.is(alloc.allocationCount, 0)
})

test('indirect errors: no allocator, longer than the queue, allocator exhausted', (t) => {
  const mem = new FakeMemory(MEM_BASE, MEM_SIZE)
  const q = new SplitQueueDriver(mem, splitQueueLayout(QUEUE_BASE, 4))
  t.throws(() => q.addChain(bufs([1, 1]), { indirect: true }), { instanceOf: TypeError, message: /allocator/ })
  const five = bufs(...Array.from({ length: 5 }, (): [number, number] => [1, 1]))
  t.throws(() => q.addChain(five, { indirect: { tableAddr: 0x50000 } }), {
    instanceOf: RangeError,
    message: /queue size/,
  })
  const tiny = new GuestAllocator(0x50000, 16)
  const q2 = new SplitQueueDriver(mem, { ...splitQueueLayout(0x20000, 4), allocator: tiny })
  t.throws(() => q2.addChain(bufs([1, 1], [2, 2]), { indirect: true }), isDriverError('NO_MEMORY'))
  t.like(q2, { freeCount: 4, inFlight: 0 })
  t.is(q.freeCount, 4)
})

// ---------------------------------------------------------------- used ring

test('popUsed returns head/len/token, reclaims descriptors, supports out-of-order completion', (t) => {
  const { q, dev } = rig<string>(8)
  t.is(q.popUsed(), null)
  t.false(q.hasUsed())
  const a = q.addChain(bufs([1, 1], [2, 2, true]), { token: 'a' })
  const b = q.addChain(bufs([3, 3], [4, 4], [5, 5, true]), { token: 'b' })
  const c = q.addChain(bufs([6, 6, true]))
  t.is(q.freeCount, 2)
  dev.pushUsed(b, 5)
  dev.pushUsed(c, 6)
  t.true(q.hasUsed())
  t.deepEqual(q.popUsed(), { head: b, len: 5, token: 'b' })
  t.like(q, { freeCount: 5, inFlight: 2, usedIdx: 1 })
  const out: UsedElement<string> = { head: -1, len: -1, token: undefined }
  t.true(q.popUsedInto(out))
  t.deepEqual(out, { head: c, len: 6, token: undefined })
  t.false(q.popUsedInto(out))
  dev.pushUsed(a, 2)
  t.deepEqual(q.popAllUsed(), [{ head: a, len: 2, token: 'a' }])
  t.like(q, { freeCount: 8, inFlight: 0, usedIdx: 3 })
  t.deepEqual(q.popAllUsed(), [])
})

test('random add/complete/pop soak: chains arrive intact and no descriptor is handed out twice', (t) => {
  const { q, dev } = rig<number>(16)
  let seed = 12345
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n
  const expected = new Map<number, SeenBuffer[]>() // head -> buffers, until completed
  const tokenOf = new Map<number, number>()
  const owner = new Map<number, number>() // descriptor -> head of the chain using it
  const seen: number[] = [] // heads the device has read and not completed yet
  let serial = 0
  let checked = 0
  for (let step = 0; step < 20000; step++) {
    if (rnd(3) !== 0 && q.freeCount > 0) {
      const indirect = rnd(4) === 0 ? { tableAddr: 0x80000 + 1024 * (serial % 64) } : undefined
      const n = 1 + rnd(indirect ? 6 : Math.min(q.freeCount, 4))
      const nr = rnd(n + 1)
      const b: DriverBuffer[] = []
      for (let i = 0; i < n; i++) b.push({ addr: 0x50000 + 64 * serial + i, len: serial & 0xfff, writable: i >= nr })
      const head = q.addChain(b, { token: serial, publish: rnd(2) === 0, indirect })
      const descs: number[] = []
      for (let i = head, k = 0; k < (indirect ? 1 : n); k++, i = q.readDescriptor(i).next) descs.push(i)
      for (const d of descs) {
        if (owner.has(d)) t.fail(`descriptor ${d} handed out while owned by chain ${owner.get(d)}`)
        owner.set(d, head)
      }
      expected.set(
        head,
        b.map((x) => ({ addr: x.addr, len: x.len, writable: x.writable ?? false })),
      )
      tokenOf.set(head, serial++)
      if (rnd(2) === 0) q.kick()
    } else if (seen.length > 0) {
      const h = seen.splice(rnd(seen.length), 1)[0]
      dev.pushUsed(h, h)
      const u = q.popUsed()
      if (u === null || u.head !== h || u.len !== h || u.token !== tokenOf.get(h)) t.fail(`bad pop for head ${h}`)
      for (const [d, o] of [...owner]) if (o === h) owner.delete(d)
      expected.delete(h)
    }
    for (let h = dev.popAvail(); h !== null; h = dev.popAvail()) {
      t.deepEqual(dev.chain(h), expected.get(h))
      seen.push(h)
      checked++
    }
  }
  t.true(checked > 5000)
  t.is(q.inFlight, expected.size)
  t.is(q.freeCount + owner.size, 16)
})

test('BAD_USED: head out of range, not outstanding, not a head, or used idx running ahead', (t) => {
  const { q, dev } = rig(8)
  const a = q.addChain(bufs([1, 1], [2, 2]))
  dev.pushUsed(8, 0) // out of range
  const e = t.throws(() => q.popUsed(), isDriverError('BAD_USED'))
  t.is(e?.code, 'BAD_USED')
  t.like(q, { usedIdx: 0, inFlight: 1, freeCount: 6 }) // nothing consumed
  t.throws(() => q.popUsed(), isDriverError('BAD_USED')) // still bad, deterministic

  const r2 = rig(8)
  r2.q.addChain(bufs([1, 1], [2, 2]))
  r2.dev.pushUsed(1, 0) // second descriptor of the chain, not its head
  t.throws(() => r2.q.popUsed(), { message: /names descriptor 1/ })

  const r3 = rig(8)
  const h = r3.q.addChain(bufs([1, 1]))
  r3.dev.pushUsed(h, 0)
  r3.q.popUsed()
  r3.dev.pushUsed(h, 0) // completed twice
  t.throws(() => r3.q.popUsed(), isDriverError('BAD_USED'))

  const r4 = rig(8)
  r4.q.addChain(bufs([1, 1]))
  r4.dev.pushUsed(0, 0, false)
  r4.dev.pushUsed(0, 0) // used idx 2 with one chain outstanding
  t.throws(() => r4.q.popUsed(), { message: /jumped from 0 to 2/ })

  const r5 = rig(8)
  r5.q.addChain(bufs([1, 1]), { publish: false })
  r5.dev.pushUsed(0, 0) // device returned a chain that was never published
  t.throws(() => r5.q.popUsed(), isDriverError('BAD_USED'))
  t.is(a, 0)
})

test('strictUsedLen rejects a used len beyond the writable bytes', (t) => {
  const { q, dev } = rig(8, { strictUsedLen: true })
  const h = q.addChain(bufs([1, 100], [2, 10, true], [3, 5, true]))
  dev.pushUsed(h, 16)
  t.throws(() => q.popUsed(), { instanceOf: DriverError, message: /used len 16 .* 15 writable/ })
  const lax = rig(8)
  const h2 = lax.q.addChain(bufs([1, 100]))
  lax.dev.pushUsed(h2, 1000)
  t.is(lax.q.popUsed()?.len, 1000)
})

// ---------------------------------------------------------------- notifications

test('event idx: kick decisions follow avail_event, boundary cases and counters', (t) => {
  const { q, dev } = rig(8, { eventIdx: true })
  // avail_event = 0 (initial): publishing entry 0 (window [0, 1)) needs a kick.
  q.addChain(bufs([1, 1]))
  t.true(q.notifyNeeded())
  t.true(q.kick())
  // The device asks to be kicked once entry 2 is available: window [1, 2) does not contain it...
  dev.setAvailEvent(2)
  q.addChain(bufs([1, 1]))
  t.false(q.notifyNeeded())
  t.false(q.kick())
  // ...window [2, 3) does.
  q.addChain(bufs([1, 1]))
  t.true(q.kick())
  // A batch of three entries [old, old + 3) with the event at old+1, old+2 (last) and old+3 (just past).
  for (const [event, expected] of [
    [4, true],
    [5, true],
    [6, false],
  ] as const) {
    while (q.inFlight) {
      dev.pushUsed(dev.popAvail()!, 0)
      q.popUsed()
    }
    const old = q.publishedAvailIdx
    dev.setAvailEvent((old + event - 3) & 0xffff)
    q.addChain(bufs([1, 1]), { publish: false })
    q.addChain(bufs([1, 1]), { publish: false })
    q.addChain(bufs([1, 1]), { publish: false })
    t.false(q.notifyNeeded(), 'only published entries count')
    t.is(q.publish(), 3)
    t.is(q.notifyNeeded(), expected, `event ${event}`)
    t.is(q.kick(), expected, `event ${event}`)
  }
  t.like(q, { kicksSent: 4, kicksSuppressed: 2 })
})

test('event idx: kick suppression across the u16 wrap of the avail idx', (t) => {
  const r = rig(4, { eventIdx: true })
  advance(r, 0xfffe) // avail idx and used idx now 0xfffe
  t.is(r.q.availIdx, 0xfffe)
  const sent = r.q.kicksSent
  r.dev.setAvailEvent(0xffff)
  r.q.addChain(bufs([1, 1]), { publish: false }) // 0xfffe
  r.q.addChain(bufs([1, 1]), { publish: false }) // 0xffff
  r.q.addChain(bufs([1, 1]), { publish: false }) // 0x0000
  t.true(r.q.kick()) // window [0xfffe, 1) contains 0xffff
  t.is(r.q.availIdx, 1)
  t.is(r.mem.readU16(r.q.availRing + 2), 1)
  r.dev.setAvailEvent(0)
  r.q.addChain(bufs([1, 1])) // window [1, 2): 0 is behind
  t.false(r.q.kick())
  t.is(r.q.kicksSent, sent + 1)
})

test('event idx off: VRING_USED_F_NO_NOTIFY is honoured; with event idx it is ignored', (t) => {
  const { mem, q } = rig(8)
  mem.writeU16(q.usedRing, C.VRING_USED_F_NO_NOTIFY)
  q.addChain(bufs([1, 1]))
  t.false(q.notifyNeeded())
  t.false(q.kick())
  mem.writeU16(q.usedRing, 0)
  q.addChain(bufs([1, 1]))
  t.true(q.kick())
  t.like(q, { kicksSent: 1, kicksSuppressed: 1 })

  const ev = rig(8, { eventIdx: true })
  ev.mem.writeU16(ev.q.usedRing, C.VRING_USED_F_NO_NOTIFY)
  ev.q.addChain(bufs([1, 1]))
  t.true(ev.q.kick()) // avail_event 0 is in [0, 1)
})

// ---------------------------------------------------------------- interrupts

test('interrupt suppression without event idx: VRING_AVAIL_F_NO_INTERRUPT', (t) => {
  const { mem, q, dev } = rig(8)
  t.true(q.interruptsEnabled)
  q.addChain(bufs([1, 1]))
  dev.pushUsed(dev.popAvail()!, 0)
  t.true(q.interruptNeeded(0))
  t.false(q.interruptNeeded(1)) // nothing new
  q.disableInterrupts()
  t.is(mem.readU16(q.availRing), C.VRING_AVAIL_F_NO_INTERRUPT)
  t.false(q.interruptsEnabled)
  t.false(q.interruptNeeded(0))
  q.enableInterrupts()
  t.is(mem.readU16(q.availRing), 0)
  t.true(q.interruptNeeded(0, 1))
  t.throws(() => q.setUsedEvent(1), isDriverError('NO_EVENT_IDX'))
  t.throws(() => q.interruptNeeded(65536), { instanceOf: RangeError, message: /oldUsed/ })
})

test('interrupt suppression with event idx: used_event placement and boundaries', (t) => {
  const r = rig(8, { eventIdx: true })
  const { mem, q } = r
  q.setUsedEvent(5)
  t.is(mem.readU16(q.availRing + 4 + 2 * 8), 5) // right after ring[size]
  t.is(mem.readU16(q.availRing), 0) // flags stay 0 with event idx
  t.true(q.interruptNeeded(5, 6))
  t.true(q.interruptNeeded(3, 6))
  t.false(q.interruptNeeded(6, 9))
  t.false(q.interruptNeeded(2, 5))
  q.setUsedEvent(0xffff)
  t.true(q.interruptNeeded(0xfffe, 0))
  t.false(q.interruptNeeded(0, 3))
  t.throws(() => q.setUsedEvent(0x10000), { instanceOf: RangeError, message: /idx/ })

  advance(r, 3)
  q.disableInterrupts()
  t.is(mem.readU16(q.usedEventAddr), 2) // usedIdx - 1: only matches after a full wrap
  t.false(q.interruptNeeded(3, 4))
  t.false(q.interruptNeeded(3, 0xffff))
  q.enableInterrupts()
  t.is(mem.readU16(q.usedEventAddr), 3)
  t.true(q.interruptNeeded(3, 4))
  t.is(mem.readU16(q.availRing), 0)
})

// ---------------------------------------------------------------- wrap-around

test('avail and used idx wrap past 65535 over a long add/pop run', (t) => {
  const { mem, q, dev } = rig<number>(8)
  const cycles = 70000
  let popped = 0
  for (let i = 0; i < cycles; i++) {
    const n = 1 + (i % 3)
    q.addChain(
      bufs(...Array.from({ length: n }, (_, k): [number, number, boolean] => [0x50000 + k, i & 0xffff, k === n - 1])),
      { token: i, publish: i % 2 === 0 },
    )
    if (i % 2 === 1) q.kick()
    if (i % 2 === 1) {
      for (let h = dev.popAvail(); h !== null; h = dev.popAvail()) dev.pushUsed(h, i & 0xffff)
      for (let u = q.popUsed(); u !== null; u = q.popUsed()) {
        t.is(u.token, popped++)
      }
    }
  }
  t.is(popped, cycles)
  t.is(q.availIdx, cycles & 0xffff)
  t.is(q.usedIdx, cycles & 0xffff)
  t.is(mem.readU16(q.availRing + 2), cycles & 0xffff)
  t.like(q, { freeCount: 8, inFlight: 0 })
})

// ---------------------------------------------------------------- memory access paths

for (const [name, memOpts] of [
  ['SharedArrayBuffer', { shared: true }],
  ['no slice() (per-call fallback)', { noSlice: true }],
] as const) {
  test(`works over ${name}`, (t) => {
    const { mem, q, dev } = rig(8, { eventIdx: true }, memOpts)
    const h = q.addChain(bufs([0x1_0000_0000, 3], [0x60000, 9, true]))
    t.true(q.kick())
    t.is(mem.readU64(q.descTable), 0x1_0000_0000n)
    t.deepEqual(dev.chain(dev.popAvail()!), [
      { addr: 0x1_0000_0000, len: 3, writable: false },
      { addr: 0x60000, len: 9, writable: true },
    ])
    dev.pushUsed(h, 9)
    t.deepEqual(q.popUsed(), { head: h, len: 9, token: undefined })
  })
}

// ---------------------------------------------------------------- raw helpers / reset

test('raw helpers write exactly what they are told and leave shadow state alone', (t) => {
  const { mem, q } = rig(8)
  q.writeDescriptor(3, { addr: (1n << 64n) - 1n, len: 0xffffffff, flags: 0xffff, next: 0xffff })
  t.deepEqual(q.readDescriptor(3), { addr: (1n << 64n) - 1n, len: 0xffffffff, flags: 0xffff, next: 0xffff })
  q.writeDescriptor(4, { addr: 2 ** 53 - 1, len: 0, flags: 0, next: 9 })
  t.is(mem.readU64(q.descTable + 64), 2n ** 53n - 1n)
  t.throws(() => q.writeDescriptor(0, { addr: 1n << 64n, len: 0, flags: 0, next: 0 }), {
    instanceOf: RangeError,
    message: /desc\.addr/,
  })
  t.throws(() => q.writeDescriptor(8, { addr: 0, len: 0, flags: 0, next: 0 }), {
    instanceOf: RangeError,
    message: /index/,
  })
  t.throws(() => q.writeDescriptor(0, { addr: 0, len: 0, flags: 0x10000, next: 0 }), {
    instanceOf: RangeError,
    message: /desc\.flags/,
  })
  q.writeAvailEntry(7, 0xbeef)
  t.is(mem.readU16(q.availRing + 4 + 14), 0xbeef)
  t.throws(() => q.writeAvailEntry(8, 0), { instanceOf: RangeError, message: /slot/ })
  q.setAvailIdx(0x1234)
  t.is(q.readAvailIdx(), 0x1234)
  t.like(q, { availIdx: 0, freeCount: 8, inFlight: 0 })
  mem.writeU32(q.usedRing + 4 + 8 * 2, 0xdeadbeef)
  mem.writeU32(q.usedRing + 8 + 8 * 2, 42)
  t.deepEqual(q.readUsedElem(2), { id: 0xdeadbeef, len: 42 })
  mem.writeU16(q.usedRing + 2, 9)
  t.is(q.readUsedIdx(), 9)
})

test('reset() zeroes the rings, frees driver-owned tables and restores the free list', (t) => {
  const { mem, q, alloc } = rig(8, { eventIdx: true })
  q.addChain(bufs([1, 1], [2, 2]), { indirect: true })
  q.addChain(bufs([1, 1], [2, 2]))
  q.disableInterrupts()
  t.is(alloc.allocationCount, 1)
  q.reset()
  t.is(alloc.allocationCount, 0)
  t.like(q, { freeCount: 8, inFlight: 0, availIdx: 0, usedIdx: 0, interruptsEnabled: true, kicksSent: 0 })
  t.true(mem.read(q.descTable, splitQueueLayout(QUEUE_BASE, 8).end - q.descTable).every((b) => b === 0))
  t.is(q.addChain(bufs([1, 1])), 0)
})

// ---------------------------------------------------------------- allocator

test('GuestAllocator: alignment, first fit, exhaustion, free/reuse, coalescing', (t) => {
  const a = new GuestAllocator(0x1003, 0x1000 - 3) // [0x1003, 0x2000)
  t.is(a.alloc(1, 1), 0x1003)
  t.is(a.alloc(10), 0x1008) // default align 8
  const p = a.alloc(0x100, 0x100)
  t.is(p, 0x1100)
  t.is(a.alloc(4, 4), 0x1004) // first fit: the alignment gap left before 0x1008
  t.like(a, { bytesAllocated: 1 + 10 + 0x100 + 4, allocationCount: 4, length: 0xffd })
  const e = t.throws(() => a.alloc(0x1000), isDriverError('NO_MEMORY'))
  t.is(e?.code, 'NO_MEMORY')
  a.free(p)
  t.is(a.alloc(0x100, 0x100), p) // reused
  t.throws(() => a.free(0x1234), isDriverError('BAD_FREE'))
  a.free(p)
  t.throws(() => a.free(p), isDriverError('BAD_FREE'))
  for (const addr of [0x1008, 0x1003, 0x1004]) a.free(addr)
  t.like(a, { bytesAllocated: 0, allocationCount: 0, bytesFree: 0xffd })
  t.is(a.alloc(0xffd, 1), 0x1003) // everything coalesced back into one hole
  t.throws(() => a.alloc(1), isDriverError('NO_MEMORY'))
  a.reset()
  t.throws(() => a.alloc(8, 0x1000), isDriverError('NO_MEMORY')) // no 4 KiB boundary inside
  t.is(a.alloc(8, 0x800), 0x1800)
})

test('GuestAllocator: argument errors', (t) => {
  t.throws(() => new GuestAllocator(-1, 10), { instanceOf: RangeError, message: /base/ })
  t.throws(() => new GuestAllocator(0, 0), { instanceOf: RangeError, message: /length/ })
  const a = new GuestAllocator(0, 64)
  t.throws(() => a.alloc(0), { instanceOf: RangeError, message: /size/ })
  t.throws(() => a.alloc(8, 3), { instanceOf: RangeError, message: /align/ })
  t.throws(() => a.alloc(1.5), { instanceOf: TypeError, message: /size/ })
  t.is(a.alloc(8, 64), 0)
  t.throws(() => a.alloc(8, 64), isDriverError('NO_MEMORY'))
})

// ---------------------------------------------------------------- interop with the real device side

// The package's own GuestMemory + native Queue (the addon is always built before the tests).
test('interop: chains from the driver pop intact from the rust-vmm device queue', (t) => {
  const { GuestMemory, Queue } = require('..') as typeof import('..')
  const mem = GuestMemory.fromRanges([[0, 0x100000]])
  const layout = splitQueueLayout(0x1000, 16)
  const allocator = new GuestAllocator(0x80000, 0x80000)
  const q = new SplitQueueDriver<string>(mem, { ...layout, eventIdx: true, allocator })
  const device = new Queue(mem, 16)
  const g = device.lockWithMemory()
  try {
    g.setSize(16)
    g.setDescTableAddress(layout.descTable, 0)
    g.setAvailRingAddress(layout.availRing, 0)
    g.setUsedRingAddress(layout.usedRing, 0)
    g.setEventIdx(true)
    g.setReady(true)
    t.true(g.isValid())

    const a = q.addChain(bufs([0x20000, 16], [0x21000, 512, true], [0x22000, 1, true]), { token: 'direct' })
    const b = q.addChain(bufs([0x23000, 8], [0x24000, 64, true]), { indirect: true, token: 'indirect' })
    t.true(q.kick())

    const seen: Array<{ head: number; descs: SeenBuffer[] }> = []
    for (let c = g.popDescriptorChain(); c !== null; c = g.popDescriptorChain()) {
      t.is(c.stopReason, null, JSON.stringify(c.descriptors()))
      seen.push({
        head: c.headIndex,
        descs: c
          .descriptors()
          .map((d) => ({ addr: d.addr, len: d.len, writable: (d.flags & C.VIRTQ_DESC_F_WRITE) !== 0 })),
      })
    }
    t.deepEqual(seen, [
      {
        head: a,
        descs: [
          { addr: 0x20000, len: 16, writable: false },
          { addr: 0x21000, len: 512, writable: true },
          { addr: 0x22000, len: 1, writable: true },
        ],
      },
      {
        head: b,
        descs: [
          { addr: 0x23000, len: 8, writable: false },
          { addr: 0x24000, len: 64, writable: true },
        ],
      },
    ])

    // The device's interrupt decisions agree with what the driver asked for.
    q.setUsedEvent(1) // interrupt once the used idx moves past 1
    g.addUsed(b, 64)
    t.is(g.needsNotification(), q.interruptNeeded(0, 1))
    t.false(q.interruptNeeded(0, 1))
    g.addUsed(a, 513)
    t.is(g.needsNotification(), q.interruptNeeded(1, 2))
    t.true(q.interruptNeeded(1, 2))

    t.deepEqual(q.popAllUsed(), [
      { head: b, len: 64, token: 'indirect' },
      { head: a, len: 513, token: 'direct' },
    ])
    t.like(q, { freeCount: 16, inFlight: 0 })
    t.is(allocator.allocationCount, 0)

    // The device asks not to be kicked until it has seen entry 3 (avail_event via enableNotification semantics).
    mem.writeU16(q.availEventAddr, 3)
    q.addChain(bufs([0x20000, 1]))
    t.false(q.kick())
  } finally {
    g.release()
  }
})

test('setUpDeviceQueue programs a device queue as a transport does', (t) => {
  const { GuestMemory, Queue, VirtioQueueError } = require('..') as typeof import('..')
  const mem = GuestMemory.fromRanges([
    [0, 0x10000],
    [0x1_0000_0000, 0x10000],
  ])
  const layout = splitQueueLayout(0x1_0000_1000, 64)
  const driver = new SplitQueueDriver(mem, { ...layout, eventIdx: true })
  const guard = new Queue(mem, 256).lockWithMemory()
  setUpDeviceQueue(guard, driver)
  t.is(guard.size(), 64)
  t.true(guard.ready())
  t.true(guard.eventIdxEnabled(), 'event idx taken from the driver')
  t.true(guard.isValid())
  const q2 = new Queue(mem, 256)
  const g2 = q2.lockWithMemory()
  setUpDeviceQueue(g2, layout, { ready: false })
  t.like(q2.state(), {
    size: 64,
    ready: false,
    eventIdxEnabled: false,
    descTable: layout.descTable,
    availRing: layout.availRing,
    usedRing: layout.usedRing,
  })
  t.throws(() => setUpDeviceQueue(g2, { ...layout, size: 512 }), { instanceOf: VirtioQueueError, code: 'InvalidSize' })
})
