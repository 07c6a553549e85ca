// The virtio-blk example's config space and feature bits (examples/virtio-blk/config.ts,
// features.ts, model.ts), and a multiqueue device: N queues of one model, each served
// on its own.
import test from 'ava'

import { Queue } from '..'
import { GuestAllocator, SplitQueueDriver, splitQueueLayout } from '../driver'
import { type BlkConfig, CONFIG_SIZE, configFeatures, defaultConfig, encodeConfig } from '../examples/virtio-blk/config'
import { BlkDevice } from '../examples/virtio-blk/device'
import {
  featureBit,
  featureNames,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_GEOMETRY,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_WRITE_ZEROES,
} from '../examples/virtio-blk/features'
import { BlkModel } from '../examples/virtio-blk/model'
import { encodeHeader, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_OUT } from '../examples/virtio-blk/protocol'
import { activateQueue, createVm } from '../examples/virtio-blk/vm'
import { DiscardingMemDisk, MemDisk, pattern } from './helpers/blk-mem-disk'

const full: BlkConfig = {
  capacity: 0x0102030405060708n,
  sizeMax: 0x11121314,
  segMax: 0x21222324,
  geometry: { cylinders: 0x3132, heads: 0x33, sectors: 0x34 },
  blkSize: 4096,
  topology: { physicalBlockExp: 0x41, alignmentOffset: 0x42, minIoSize: 0x4344, optIoSize: 0x45464748 },
  writeback: 1,
  numQueues: 0x0506,
  readOnly: true,
  flush: true,
  discard: { maxSectors: 0x51525354, maxSeg: 0x61626364, sectorAlignment: 0x71727374 },
  writeZeroes: { maxSectors: 0x81828384, maxSeg: 0x91929394, mayUnmap: true },
}

test('encodeConfig puts every field at its virtio 1.x 5.2.4 offset, little-endian', (t) => {
  const b = encodeConfig(full)
  t.is(b.length, CONFIG_SIZE)
  t.is(CONFIG_SIZE, 60)
  const hex = (at: number, n: number) => b.subarray(at, at + n).toString('hex')
  t.is(hex(0, 8), '0807060504030201', 'capacity @0 le64')
  t.is(hex(8, 4), '14131211', 'size_max @8')
  t.is(hex(12, 4), '24232221', 'seg_max @12')
  t.is(hex(16, 4), '32313334', 'geometry @16: le16 cylinders, u8 heads, u8 sectors')
  t.is(hex(20, 4), '00100000', 'blk_size @20')
  t.is(hex(24, 8), '4142444348474645', 'topology @24: exp, offset, le16 min_io, le32 opt_io')
  t.is(b[32], 1, 'writeback @32')
  t.is(b[33], 0, 'unused0 @33')
  t.is(hex(34, 2), '0605', 'num_queues @34 le16')
  t.is(hex(36, 4), '54535251', 'max_discard_sectors @36')
  t.is(hex(40, 4), '64636261', 'max_discard_seg @40')
  t.is(hex(44, 4), '74737271', 'discard_sector_alignment @44')
  t.is(hex(48, 4), '84838281', 'max_write_zeroes_sectors @48')
  t.is(hex(52, 4), '94939291', 'max_write_zeroes_seg @52')
  t.is(b[56], 1, 'write_zeroes_may_unmap @56')
  t.is(hex(57, 3), '000000', 'unused1 @57')
})

test('the features follow the config: each field offered is valid, nothing else is offered', (t) => {
  const offered = [
    VIRTIO_BLK_F_SIZE_MAX,
    VIRTIO_BLK_F_SEG_MAX,
    VIRTIO_BLK_F_GEOMETRY,
    VIRTIO_BLK_F_RO,
    VIRTIO_BLK_F_BLK_SIZE,
    VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_TOPOLOGY,
    VIRTIO_BLK_F_MQ,
    VIRTIO_BLK_F_DISCARD,
    VIRTIO_BLK_F_WRITE_ZEROES,
  ]
  t.is(
    configFeatures(full),
    offered.reduce((f, bit) => f | featureBit(bit), 0n),
  )
  t.deepEqual([1, 2, 4, 5, 6, 9, 10, 12, 13, 14], offered, 'the spec bit numbers')
  t.is(configFeatures({ capacity: 8n }), 0n)
  t.is(configFeatures({ capacity: 8n, numQueues: 1 }), 0n, 'one queue: no MQ')
  const bare = encodeConfig({ capacity: 8n })
  t.true(
    bare.subarray(8).every((x) => x === 0),
    'absent fields are zero',
  )
  const d = defaultConfig({ sectors: 2048, numQueues: 2, mayUnmap: true })
  t.deepEqual(featureNames(configFeatures(d)), [
    'SIZE_MAX',
    'SEG_MAX',
    'BLK_SIZE',
    'FLUSH',
    'MQ',
    'DISCARD',
    'WRITE_ZEROES',
  ])
  t.is(d.segMax, 126, 'seg_max: queue size 128 minus header and status')
  t.deepEqual(featureNames(configFeatures(defaultConfig({ sectors: 8, readOnly: true, discard: false }))), [
    'SIZE_MAX',
    'SEG_MAX',
    'RO',
    'BLK_SIZE',
    'FLUSH',
    'WRITE_ZEROES',
  ])
})

test('encodeConfig refuses fields out of their range with BAD_CONFIG', (t) => {
  const bad: Array<[string, Partial<BlkConfig>]> = [
    ['capacity', { capacity: -1n }],
    ['capacity', { capacity: 1n << 64n }],
    ['segMax', { segMax: 0 }],
    ['sizeMax', { sizeMax: 2 ** 32 }],
    ['blkSize', { blkSize: 1000 }],
    ['numQueues', { numQueues: 0x10000 }],
    ['geometry.heads', { geometry: { cylinders: 1, heads: 256, sectors: 1 } }],
    ['discard.maxSeg', { discard: { maxSectors: 1, maxSeg: 0, sectorAlignment: 1 } }],
    ['writeZeroes.maxSectors', { writeZeroes: { maxSectors: 1.5, maxSeg: 1, mayUnmap: false } }],
  ]
  for (const [field, c] of bad) {
    const e = t.throws(() => encodeConfig({ capacity: 8n, ...c }), { code: 'BAD_CONFIG' }, field)
    t.true(e?.message.includes(field.split('.')[0]!), `${field}: ${e?.message}`)
  }
  t.throws(() => new BlkModel({ backend: new MemDisk(8), numQueues: 0 }), { code: 'BAD_CONFIG' })
})

test('BlkModel: the config space of a disk, what it offers by default, and a copy per read', (t) => {
  const m = new BlkModel({ backend: new DiscardingMemDisk(2048), numQueues: 4 })
  const c = m.configSpace()
  t.is(c.readBigUInt64LE(0), 2048n)
  t.is(c.readUInt16LE(34), 4)
  t.is(c.readUInt32LE(20), 512)
  t.is(c[56], 1, 'the disk can punch holes: write_zeroes_may_unmap')
  c.fill(0)
  t.is(m.configSpace().readBigUInt64LE(0), 2048n, 'callers cannot change the device config')
  t.deepEqual(featureNames(new BlkModel({ backend: new MemDisk(8) }).features), [
    'SIZE_MAX',
    'SEG_MAX',
    'BLK_SIZE',
    'FLUSH',
  ])
})

test('multiqueue: two queues of one model over one guest memory, each served on its own kick', (t) => {
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx: true })
  // A second queue's rings, allocated from the guest heap, set up like the first.
  const layout1 = splitQueueLayout(vm.allocator.alloc(splitQueueLayout(0, 16).end, 4096), 16)
  const allocator = new GuestAllocator(vm.allocator.alloc(0x40000, 4096), 0x40000)
  const driver1 = new SplitQueueDriver<string>(vm.memory, { ...layout1, eventIdx: true, allocator })
  const queue1 = new Queue(vm.memory, 1024)
  activateQueue(queue1, layout1, true)
  const disk = new MemDisk(64)
  const model = new BlkModel({ backend: disk, numQueues: 2 })
  t.true((model.features & featureBit(VIRTIO_BLK_F_MQ)) !== 0n)
  const irqs = [0, 0]
  const q0 = new BlkDevice(vm.queue, { model, signalUsedQueue: () => irqs[0]!++ })
  const q1 = new BlkDevice(queue1, { model, signalUsedQueue: () => irqs[1]!++ })

  const write = (driver: SplitQueueDriver<string>, alloc: GuestAllocator, sector: number, seed: number) => {
    const a = alloc.alloc(16 + 512 + 1, 16)
    const h = Buffer.alloc(16)
    encodeHeader(h, VIRTIO_BLK_T_OUT, sector)
    vm.memory.write(a, Buffer.concat([h, pattern(512, seed), Buffer.from([0xff])]))
    driver.addChain([
      { addr: a, len: 16 },
      { addr: a + 16, len: 512 },
      { addr: a + 528, len: 1, writable: true },
    ])
    driver.kick()
    return a + 528
  }
  const s0 = write(vm.driver, vm.allocator, 1, 1)
  const s1 = write(driver1, allocator, 2, 2)
  const s1b = write(driver1, allocator, 3, 3)
  t.is(q0.processQueue(), 1, 'queue 0 serves only its own chain')
  t.is(vm.memory.readU8(s1), 0xff, "queue 1's chain is untouched until queue 1 runs")
  t.deepEqual(irqs, [1, 0])
  t.is(q1.processQueue(), 2)
  t.deepEqual(irqs, [1, 1])
  for (const s of [s0, s1, s1b]) t.is(vm.memory.readU8(s), VIRTIO_BLK_S_OK)
  t.deepEqual([q0.stats.writes, q1.stats.writes], [1, 2], 'stats are per queue')
  t.is(vm.driver.popUsed()?.len, 1)
  t.is(driver1.popUsed()?.len, 1)
  for (const [sector, seed] of [
    [1, 1],
    [2, 2],
    [3, 3],
  ])
    t.true(disk.bytes.subarray(sector! * 512, (sector! + 1) * 512).equals(pattern(512, seed!)), `sector ${sector}`)
})
