// The virtio-blk example's DISCARD and WRITE_ZEROES (examples/virtio-blk/requests.ts,
// segments.ts), read-only devices, and the disk image's hole punching (holes.ts).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import test from 'ava'

import type { DriverBuffer } from '../driver'
import { BlkDevice } from '../examples/virtio-blk/device'
import { DiskImage } from '../examples/virtio-blk/disk'
import { PUNCH_HOLE, ZERO_FILL_FALLBACK } from '../examples/virtio-blk/holes'
import { type BlkModelOptions, BlkModel } from '../examples/virtio-blk/model'
import {
  type BlkSegment,
  encodeHeader,
  encodeSegment,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../examples/virtio-blk/protocol'
import { createVm } from '../examples/virtio-blk/vm'
import { SystemError, VirtioQueueError } from '..'
import { DiscardingMemDisk, pattern } from './helpers/blk-mem-disk'
import { mountUnavailable, withMount } from './helpers/scratch-fs'

const withMounts = mountUnavailable === null ? test.serial : test.skip
const onLinux = process.platform === 'linux' ? test.serial : test.skip

const SECTORS = 256

function rig(o: Partial<BlkModelOptions> = {}) {
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx: true })
  const disk = new DiscardingMemDisk(SECTORS)
  pattern(SECTORS * 512, 3).copy(disk.bytes)
  const model = new BlkModel({ backend: disk, ...o })
  const device = new BlkDevice(vm.queue, { model })
  return { vm, disk, model, device }
}

/** Sends one request whose readable data is `data` (segments, or OUT data) and returns its status. */
function request(r: ReturnType<typeof rig>, type: number, data: Buffer, sector = 0n): number {
  const { vm } = r
  const hdr = vm.allocator.alloc(16 + data.length + 1, 16)
  const header = Buffer.alloc(16)
  encodeHeader(header, type, sector)
  vm.memory.write(hdr, Buffer.concat([header, data, Buffer.from([0xff])]))
  const buffers: DriverBuffer[] = [{ addr: hdr, len: 16 }]
  if (data.length > 0) buffers.push({ addr: hdr + 16, len: data.length })
  buffers.push({ addr: hdr + 16 + data.length, len: 1, writable: true })
  const head = vm.driver.addChain(buffers)
  vm.driver.kick()
  r.device.processQueue()
  const used = vm.driver.popUsed()
  if (used?.head !== head) throw new Error('no used element')
  vm.allocator.reset()
  return vm.memory.readU8(hdr + 16 + data.length)
}

function segments(...s: Array<[number, number, number?]>): Buffer {
  const out = Buffer.alloc(16 * s.length)
  s.forEach(([sector, numSectors, flags], i) =>
    encodeSegment(out, i * 16, { sector: BigInt(sector), numSectors, flags: flags ?? 0 } satisfies BlkSegment),
  )
  return out
}

const original = () => pattern(SECTORS * 512, 3)

test('DISCARD deallocates every segment (a hole reads as zeros); the rest of the disk is untouched', (t) => {
  const r = rig()
  t.is(request(r, VIRTIO_BLK_T_DISCARD, segments([8, 8], [100, 3])), VIRTIO_BLK_S_OK)
  t.deepEqual(r.disk.holes, [
    [8 * 512, 8 * 512],
    [100 * 512, 3 * 512],
  ])
  const expected = original()
  expected.fill(0, 8 * 512, 16 * 512)
  expected.fill(0, 100 * 512, 103 * 512)
  t.true(r.disk.bytes.equals(expected))
  t.is(r.device.stats.discards, 1)
  t.is(r.device.stats.bytesDiscarded, 11 * 512)
})

test('WRITE_ZEROES writes zeros; with unmap (and write_zeroes_may_unmap) it deallocates instead', (t) => {
  const r = rig()
  t.is(request(r, VIRTIO_BLK_T_WRITE_ZEROES, segments([0, 4])), VIRTIO_BLK_S_OK)
  t.is(request(r, VIRTIO_BLK_T_WRITE_ZEROES, segments([10, 2, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP])), VIRTIO_BLK_S_OK)
  t.deepEqual(r.disk.zeroed, [[0, 4 * 512]])
  t.deepEqual(r.disk.holes, [[10 * 512, 2 * 512]])
  t.true(r.disk.bytes.subarray(0, 4 * 512).every((b) => b === 0))
  t.true(r.disk.bytes.subarray(10 * 512, 12 * 512).every((b) => b === 0))
  t.true(r.disk.bytes.subarray(4 * 512, 10 * 512).equals(original().subarray(4 * 512, 10 * 512)))
  t.is(r.device.stats.bytesZeroed, 4 * 512)
  t.is(r.device.stats.bytesDiscarded, 2 * 512)
})

test('WRITE_ZEROES with unmap writes zeros when the storage cannot punch holes (may_unmap 0)', (t) => {
  const disk = new DiscardingMemDisk(SECTORS)
  disk.canUnmap = false
  const vm = createVm<string>({ memoryBytes: 1 << 20, queueSize: 16, eventIdx: true })
  const model = new BlkModel({ backend: disk })
  t.false(model.config.writeZeroes?.mayUnmap)
  const r = { vm, disk, model, device: new BlkDevice(vm.queue, { model }) }
  t.is(request(r, VIRTIO_BLK_T_WRITE_ZEROES, segments([10, 2, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP])), VIRTIO_BLK_S_OK)
  t.deepEqual(disk.holes, [])
  t.deepEqual(disk.zeroed, [[10 * 512, 2 * 512]])
})

test('bad segments: UNSUPP for flags the spec forbids, IOERR for broken limits; nothing is changed', (t) => {
  const r = rig({
    config: {
      capacity: BigInt(SECTORS),
      flush: true,
      discard: { maxSectors: 16, maxSeg: 2, sectorAlignment: 1 },
      writeZeroes: { maxSectors: 16, maxSeg: 2, mayUnmap: true },
    },
  })
  const cases: Array<[string, number, Buffer, number]> = [
    ['DISCARD with unmap', VIRTIO_BLK_T_DISCARD, segments([0, 1, 1]), VIRTIO_BLK_S_UNSUPP],
    ['DISCARD with a reserved flag', VIRTIO_BLK_T_DISCARD, segments([0, 1, 2]), VIRTIO_BLK_S_UNSUPP],
    ['WRITE_ZEROES with a reserved flag', VIRTIO_BLK_T_WRITE_ZEROES, segments([0, 1, 3]), VIRTIO_BLK_S_UNSUPP],
    ['no segment', VIRTIO_BLK_T_DISCARD, Buffer.alloc(0), VIRTIO_BLK_S_IOERR],
    ['a partial segment', VIRTIO_BLK_T_DISCARD, Buffer.alloc(24), VIRTIO_BLK_S_IOERR],
    ['more segments than max_discard_seg', VIRTIO_BLK_T_DISCARD, segments([0, 1], [2, 1], [4, 1]), VIRTIO_BLK_S_IOERR],
    ['more than max_write_zeroes_seg', VIRTIO_BLK_T_WRITE_ZEROES, segments([0, 1], [2, 1], [4, 1]), VIRTIO_BLK_S_IOERR],
    ['more sectors than max_discard_sectors', VIRTIO_BLK_T_DISCARD, segments([0, 17]), VIRTIO_BLK_S_IOERR],
    ['more than max_write_zeroes_sectors', VIRTIO_BLK_T_WRITE_ZEROES, segments([0, 17]), VIRTIO_BLK_S_IOERR],
    ['past the capacity', VIRTIO_BLK_T_DISCARD, segments([SECTORS - 1, 2]), VIRTIO_BLK_S_IOERR],
    // The first segment is fine: the request is refused whole, before any segment runs.
    ['a good segment then a bad one', VIRTIO_BLK_T_WRITE_ZEROES, segments([0, 4], [SECTORS, 1]), VIRTIO_BLK_S_IOERR],
  ]
  for (const [what, type, data, status] of cases) {
    t.is(request(r, type, data), status, what)
    t.truthy(r.device.stats.lastError, what)
  }
  // A u64 sector that would overflow a number.
  const huge = Buffer.alloc(16)
  encodeSegment(huge, 0, { sector: 0xffffffffffffffffn, numSectors: 1, flags: 0 })
  t.is(request(r, VIRTIO_BLK_T_DISCARD, huge), VIRTIO_BLK_S_IOERR)
  t.deepEqual(r.disk.holes, [])
  t.deepEqual(r.disk.zeroed, [])
  t.true(r.disk.bytes.equals(original()))
})

test('DISCARD and WRITE_ZEROES are UNSUPP when not offered', (t) => {
  const r = rig({ discard: false, writeZeroes: false })
  t.is(request(r, VIRTIO_BLK_T_DISCARD, segments([0, 1])), VIRTIO_BLK_S_UNSUPP)
  t.is(request(r, VIRTIO_BLK_T_WRITE_ZEROES, segments([0, 1])), VIRTIO_BLK_S_UNSUPP)
  t.true(r.disk.bytes.equals(original()))
})

test('read-only: OUT, DISCARD and WRITE_ZEROES are IOERR and change nothing; IN, FLUSH and GET_ID work', (t) => {
  const r = rig({ readOnly: true })
  t.true(r.model.readOnly)
  t.is(request(r, VIRTIO_BLK_T_OUT, Buffer.alloc(512, 0xaa), 4n), VIRTIO_BLK_S_IOERR)
  t.is(request(r, VIRTIO_BLK_T_DISCARD, segments([0, 8])), VIRTIO_BLK_S_IOERR)
  t.is(request(r, VIRTIO_BLK_T_WRITE_ZEROES, segments([0, 8])), VIRTIO_BLK_S_IOERR)
  t.regex(r.device.stats.lastError!, /read-only/)
  t.true(r.disk.bytes.equals(original()))
  t.is(request(r, VIRTIO_BLK_T_FLUSH, Buffer.alloc(0)), VIRTIO_BLK_S_OK)
  t.is(r.device.stats.ioerr, 3)
  // IN: a writable data buffer, then the status.
  const { vm } = r
  const hdr = vm.allocator.alloc(16 + 512 + 1, 16)
  const header = Buffer.alloc(16)
  for (const type of [VIRTIO_BLK_T_IN, VIRTIO_BLK_T_GET_ID]) {
    encodeHeader(header, type, 1)
    vm.memory.write(hdr, header)
    const len = type === VIRTIO_BLK_T_IN ? 512 : 20
    vm.driver.addChain([
      { addr: hdr, len: 16 },
      { addr: hdr + 16, len, writable: true },
      { addr: hdr + 16 + 512, len: 1, writable: true },
    ])
    r.device.processQueue()
    t.is(vm.memory.readU8(hdr + 16 + 512), VIRTIO_BLK_S_OK, `type ${type}`)
  }
  t.true(vm.memory.read(hdr + 16, 20).equals(Buffer.from('virtio-queue-blk\0\0\0\0')))
})

test('DiskImage: discard punches a hole in the file (fewer blocks, zeros, same size); writeZeroes zeroes', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-holes-'))
  const file = path.join(dir, 'disk.img')
  const MiB = 1 << 20
  try {
    const disk = DiskImage.open({ path: file, sizeBytes: 4 * MiB })
    const data = pattern(4 * MiB, 8)
    disk.write([data], 0)
    disk.flush()
    const before = fs.statSync(file).blocks
    t.is(disk.holeMethod.method, PUNCH_HOLE, `fallocate here: ${disk.holeMethod.fallbackReason}`)
    t.true(disk.canUnmap)
    disk.discard(MiB, MiB)
    const after = fs.statSync(file).blocks
    t.true(after <= before - (MiB / 512) * 0.9, `blocks ${before} -> ${after}`)
    t.is(fs.statSync(file).size, 4 * MiB, 'KEEP_SIZE')
    t.true(disk.readRange(MiB, MiB).equals(Buffer.alloc(MiB)))
    disk.writeZeroes(3 * MiB, 4096)
    t.true(disk.readRange(3 * MiB, 4096).equals(Buffer.alloc(4096)))
    t.true(disk.readRange(0, MiB).equals(data.subarray(0, MiB)))
    t.true(disk.readRange(2 * MiB, MiB).equals(data.subarray(2 * MiB, 3 * MiB)))
    t.true(disk.readRange(3 * MiB + 4096, MiB - 4096).equals(data.subarray(3 * MiB + 4096)))
    disk.close()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test.serial(
  'DiskImage: without a native fallocate (off Linux), discard and writeZeroes write zeros, and say so',
  (t) => {
    const { native } = require('../lib/native') as { native: { fileFallocate?: unknown } }
    const saved = native.fileFallocate
    delete native.fileFallocate
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-holes-'))
    try {
      const disk = DiskImage.open({ path: path.join(dir, 'disk.img'), sizeBytes: 1 << 20 })
      disk.write([Buffer.alloc(16384, 0x55)], 0)
      disk.discard(0, 4096)
      t.is(disk.holeMethod.method, ZERO_FILL_FALLBACK)
      t.regex(disk.holeMethod.fallbackReason!, /^ENOSYS: fallocate\(2\) .*needs Linux/)
      t.false(disk.canUnmap, 'write_zeroes_may_unmap is then 0')
      disk.writeZeroes(8192, 4096)
      t.true(disk.readRange(0, 4096).equals(Buffer.alloc(4096)))
      t.true(disk.readRange(4096, 4096).equals(Buffer.alloc(4096, 0x55)))
      t.true(disk.readRange(8192, 4096).equals(Buffer.alloc(4096)))
      t.true(disk.readRange(12288, 4096).equals(Buffer.alloc(4096, 0x55)))
      disk.close()
    } finally {
      if (saved !== undefined) native.fileFallocate = saved
      fs.rmSync(dir, { recursive: true, force: true })
    }
  },
)

withMounts(
  'DiskImage: on a file system that cannot punch holes (ramfs), discard falls back to zero-filling with the EOPNOTSUPP',
  async (t) => {
    await withMount('ramfs', '', (dir) => {
      const disk = DiskImage.open({ path: path.join(dir, 'disk.img'), sizeBytes: 1 << 20 })
      try {
        disk.write([Buffer.alloc(8192, 0x55)], 0)
        t.is(disk.holeMethod.method, ZERO_FILL_FALLBACK)
        t.regex(disk.holeMethod.fallbackReason!, /^EOPNOTSUPP: .*PUNCH_HOLE/)
        t.false(disk.canUnmap)
        disk.discard(0, 4096)
        disk.writeZeroes(4096, 512) // no ZERO_RANGE, no PUNCH_HOLE: zeros written natively
        t.true(disk.readRange(0, 4096 + 512).equals(Buffer.alloc(4096 + 512)))
        t.true(disk.readRange(4096 + 512, 8192 - 4096 - 512).equals(Buffer.alloc(8192 - 4096 - 512, 0x55)))
      } finally {
        disk.close()
      }
    })
  },
)

onLinux('DiskImage: an I/O error other than EOPNOTSUPP fails the discard and keeps punching', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-holes-'))
  try {
    const file = path.join(dir, 'disk.img')
    const disk = DiskImage.open({ path: file, sizeBytes: 1 << 20 })
    t.true(disk.canUnmap)
    // Swap the image's fd for a read-only one on the same number (open takes the lowest
    // free number, and nothing else runs in between): fallocate then fails with EBADF.
    const fd = fs
      .readdirSync('/proc/self/fd')
      .map(Number)
      .find((n) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${n}`) === file
        } catch {
          return false
        }
      })!
    fs.closeSync(fd)
    t.is(fs.openSync(file, 'r'), fd)
    const e = t.throws(() => disk.discard(0, 4096))
    t.true(e instanceof SystemError && e instanceof VirtioQueueError, String(e))
    t.like(e, { code: 'EBADF', errno: -os.constants.errno.EBADF, syscall: 'fallocate' })
    t.is(disk.holeMethod.method, PUNCH_HOLE)
    disk.close()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('DiskImage: a read-only image refuses writes and offers no DISCARD / WRITE_ZEROES', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-ro-'))
  const file = path.join(dir, 'disk.img')
  try {
    fs.writeFileSync(file, Buffer.alloc(4096, 7))
    const disk = DiskImage.open({ path: file, sizeBytes: 512, readOnly: true })
    t.true(disk.readOnly)
    t.is(disk.sectors, 8)
    t.throws(() => disk.write([Buffer.alloc(512)], 0), { code: 'EBADF' })
    const model = new BlkModel({ backend: disk, readOnly: true })
    t.is(model.config.discard, undefined)
    t.is(model.config.writeZeroes, undefined)
    disk.close()
    t.throws(() => DiskImage.open({ path: path.join(dir, 'none.img'), sizeBytes: 512, readOnly: true }), {
      code: 'NOT_FOUND',
    })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
