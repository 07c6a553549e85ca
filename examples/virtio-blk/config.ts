// The virtio-blk configuration space (virtio 1.x, 5.2.4 "Device configuration layout")
// and the feature bits that make its fields valid. The device model serves what the
// config says (limits, read-only, queues); the transport shows the encoded bytes to the
// driver (a vhost-user backend answers GET_CONFIG with them).
//
//   offset  field                               valid with
//    0  le64 capacity (512-byte sectors)         always
//    8  le32 size_max                            SIZE_MAX
//   12  le32 seg_max                             SEG_MAX
//   16  le16 geometry.cylinders                  GEOMETRY
//   18  u8   geometry.heads
//   19  u8   geometry.sectors
//   20  le32 blk_size                            BLK_SIZE
//   24  u8   topology.physical_block_exp         TOPOLOGY
//   25  u8   topology.alignment_offset
//   26  le16 topology.min_io_size
//   28  le32 topology.opt_io_size
//   32  u8   writeback                           CONFIG_WCE (not offered: FLUSH means write-back)
//   33  u8   unused0
//   34  le16 num_queues                          MQ
//   36  le32 max_discard_sectors                 DISCARD
//   40  le32 max_discard_seg
//   44  le32 discard_sector_alignment
//   48  le32 max_write_zeroes_sectors            WRITE_ZEROES
//   52  le32 max_write_zeroes_seg
//   56  u8   write_zeroes_may_unmap
//   57  u8   unused1[3]
import {
  featureBit,
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
} from './features'

/** Bytes of the config space encoded here (through write_zeroes_may_unmap and its padding). */
export const CONFIG_SIZE = 60

export interface BlkGeometry {
  cylinders: number
  heads: number
  sectors: number
}

export interface BlkTopology {
  /** log2 of physical blocks per logical block. */
  physicalBlockExp: number
  /** Offset of the first aligned logical block, in logical blocks. */
  alignmentOffset: number
  /** Suggested minimum I/O size, in logical blocks. */
  minIoSize: number
  /** Optimal (suggested maximum) I/O size, in logical blocks. */
  optIoSize: number
}

export interface DiscardLimits {
  /** Most sectors in one segment. */
  maxSectors: number
  /** Most segments in one request. */
  maxSeg: number
  /** The driver aligns discards to this many sectors (the guest's discard granularity). */
  sectorAlignment: number
}

export interface WriteZeroesLimits {
  maxSectors: number
  maxSeg: number
  /** The device may punch holes when a segment has the unmap flag. */
  mayUnmap: boolean
}

/** A virtio-blk device's configuration: each optional part present means its feature is offered. */
export interface BlkConfig {
  /** Capacity in 512-byte sectors. */
  capacity: bigint
  /** Largest data segment in bytes (SIZE_MAX). */
  sizeMax?: number
  /** Most data segments per request (SEG_MAX). */
  segMax?: number
  geometry?: BlkGeometry
  /** Logical block size in bytes (BLK_SIZE), a power of two ≥ 512. */
  blkSize?: number
  topology?: BlkTopology
  /** The writeback byte (only meaningful with CONFIG_WCE, which this device does not offer). */
  writeback?: number
  /** Request queues; above 1 offers MQ. */
  numQueues?: number
  /** VIRTIO_BLK_F_RO. */
  readOnly?: boolean
  /** VIRTIO_BLK_F_FLUSH. */
  flush?: boolean
  discard?: DiscardLimits
  writeZeroes?: WriteZeroesLimits
}

/** A config that cannot be encoded (a field out of its range); `code` is always BAD_CONFIG. */
export class BlkConfigError extends Error {
  readonly code = 'BAD_CONFIG'
  override get name(): string {
    return 'BlkConfigError'
  }
}

/** The virtio-blk feature bits `config` offers (no transport bits). */
export function configFeatures(config: BlkConfig): bigint {
  let f = 0n
  if (config.sizeMax !== undefined) f |= featureBit(VIRTIO_BLK_F_SIZE_MAX)
  if (config.segMax !== undefined) f |= featureBit(VIRTIO_BLK_F_SEG_MAX)
  if (config.geometry !== undefined) f |= featureBit(VIRTIO_BLK_F_GEOMETRY)
  if (config.readOnly === true) f |= featureBit(VIRTIO_BLK_F_RO)
  if (config.blkSize !== undefined) f |= featureBit(VIRTIO_BLK_F_BLK_SIZE)
  if (config.flush === true) f |= featureBit(VIRTIO_BLK_F_FLUSH)
  if (config.topology !== undefined) f |= featureBit(VIRTIO_BLK_F_TOPOLOGY)
  if ((config.numQueues ?? 1) > 1) f |= featureBit(VIRTIO_BLK_F_MQ)
  if (config.discard !== undefined) f |= featureBit(VIRTIO_BLK_F_DISCARD)
  if (config.writeZeroes !== undefined) f |= featureBit(VIRTIO_BLK_F_WRITE_ZEROES)
  return f
}

/** Encodes `config` as the driver reads it (CONFIG_SIZE bytes, little-endian; absent fields are 0). */
export function encodeConfig(config: BlkConfig): Buffer {
  const out = Buffer.alloc(CONFIG_SIZE)
  if (typeof config.capacity !== 'bigint' || config.capacity < 0n || config.capacity >= 1n << 64n)
    throw new BlkConfigError(`capacity must be a u64 bigint of sectors, got ${String(config.capacity)}`)
  out.writeBigUInt64LE(config.capacity, 0)
  const u = (name: string, v: number | undefined, bits: 8 | 16 | 32, at: number, min = 0) => {
    if (v === undefined) return
    if (!Number.isInteger(v) || v < min || v >= 2 ** bits)
      throw new BlkConfigError(`${name} must be an integer in [${min}, 2^${bits}), got ${v}`)
    if (bits === 8) out.writeUInt8(v, at)
    else if (bits === 16) out.writeUInt16LE(v, at)
    else out.writeUInt32LE(v, at)
  }
  u('sizeMax', config.sizeMax, 32, 8, 1)
  u('segMax', config.segMax, 32, 12, 1)
  u('geometry.cylinders', config.geometry?.cylinders, 16, 16)
  u('geometry.heads', config.geometry?.heads, 8, 18)
  u('geometry.sectors', config.geometry?.sectors, 8, 19)
  if (config.blkSize !== undefined && (config.blkSize < 512 || (config.blkSize & (config.blkSize - 1)) !== 0))
    throw new BlkConfigError(`blkSize must be a power of two of at least 512, got ${config.blkSize}`)
  u('blkSize', config.blkSize, 32, 20)
  u('topology.physicalBlockExp', config.topology?.physicalBlockExp, 8, 24)
  u('topology.alignmentOffset', config.topology?.alignmentOffset, 8, 25)
  u('topology.minIoSize', config.topology?.minIoSize, 16, 26)
  u('topology.optIoSize', config.topology?.optIoSize, 32, 28)
  u('writeback', config.writeback, 8, 32)
  u('numQueues', config.numQueues, 16, 34, 1)
  u('discard.maxSectors', config.discard?.maxSectors, 32, 36, 1)
  u('discard.maxSeg', config.discard?.maxSeg, 32, 40, 1)
  u('discard.sectorAlignment', config.discard?.sectorAlignment, 32, 44, 1)
  u('writeZeroes.maxSectors', config.writeZeroes?.maxSectors, 32, 48, 1)
  u('writeZeroes.maxSeg', config.writeZeroes?.maxSeg, 32, 52, 1)
  if (config.writeZeroes !== undefined) out.writeUInt8(config.writeZeroes.mayUnmap ? 1 : 0, 56)
  return out
}

export interface DefaultConfigOptions {
  /** Capacity in 512-byte sectors. */
  sectors: number | bigint
  readOnly?: boolean
  /** Request queues (default 1). */
  numQueues?: number
  /** The queue size the transport offers: seg_max is two less (header and status). Default 128. */
  queueSize?: number
  /** Offer DISCARD (default true). */
  discard?: boolean
  /** Offer WRITE_ZEROES (default true); mayUnmap when the storage can punch holes. */
  writeZeroes?: boolean
  mayUnmap?: boolean
}

/** Sectors per DISCARD / WRITE_ZEROES segment: 2 GiB - 512, as QEMU's block layer caps a request. */
export const MAX_ZERO_OR_DISCARD_SECTORS = 0x3fffff
/** Segments per DISCARD / WRITE_ZEROES request. */
export const MAX_ZERO_OR_DISCARD_SEGS = 16

/** The config this package's virtio-blk offers for a disk: 512-byte blocks, FLUSH, and the limits below. */
export function defaultConfig(o: DefaultConfigOptions): BlkConfig {
  const queueSize = o.queueSize ?? 128
  return {
    capacity: BigInt(o.sectors),
    sizeMax: 1 << 20,
    segMax: Math.max(1, queueSize - 2),
    blkSize: 512,
    numQueues: o.numQueues ?? 1,
    readOnly: o.readOnly === true,
    flush: true,
    ...(o.discard === false
      ? {}
      : {
          discard: {
            maxSectors: MAX_ZERO_OR_DISCARD_SECTORS,
            maxSeg: MAX_ZERO_OR_DISCARD_SEGS,
            sectorAlignment: 8, // 4 KiB: the host file system's block, so holes are whole blocks
          },
        }),
    ...(o.writeZeroes === false
      ? {}
      : {
          writeZeroes: {
            maxSectors: MAX_ZERO_OR_DISCARD_SECTORS,
            maxSeg: MAX_ZERO_OR_DISCARD_SEGS,
            mayUnmap: o.mayUnmap === true,
          },
        }),
  }
}
