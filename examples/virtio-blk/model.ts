// What a virtio-blk device is, apart from its queues: the storage, the config space
// and feature bits it offers, and its serial. One model is shared by all of a
// device's request queues (device.ts serves one queue each), in process or behind a
// vhost-user backend (vhost-user.ts).
import { type BlkConfig, configFeatures, defaultConfig, encodeConfig } from './config'
import type { BlockBackend } from './disk'
import { idBytes, SECTOR_SIZE } from './protocol'

export interface BlkModelOptions {
  /** The storage. */
  backend: BlockBackend
  /** The GET_ID answer (up to 20 bytes of UTF-8). Default "virtio-queue-blk". */
  serial?: string | undefined
  /** Offer VIRTIO_BLK_F_RO and refuse writes. Default false. */
  readOnly?: boolean | undefined
  /** Request queues (VIRTIO_BLK_F_MQ above 1). Default 1. */
  numQueues?: number | undefined
  /** The transport's largest queue size (seg_max follows it). Default 128. */
  queueSize?: number | undefined
  /** Offer DISCARD. Default: when the backend can discard (and is writable). */
  discard?: boolean | undefined
  /** Offer WRITE_ZEROES. Default: when the backend can write zeros (and is writable). */
  writeZeroes?: boolean | undefined
  /** The whole config instead of the defaults above (capacity must match the backend). */
  config?: BlkConfig | undefined
}

export class BlkModel {
  readonly backend: BlockBackend
  readonly config: BlkConfig
  /** The virtio-blk feature bits the config offers (no transport bits). */
  readonly features: bigint
  /** The GET_ID answer, 20 bytes. */
  readonly id: Buffer
  readonly #configSpace: Buffer
  /** The capacity as a number (exact: a disk of 2^53 bytes or more cannot be opened). */
  readonly #sectors: number

  constructor(o: BlkModelOptions) {
    this.backend = o.backend
    const readOnly = o.readOnly === true
    const writable = !readOnly
    this.config =
      o.config ??
      defaultConfig({
        sectors: o.backend.sectors,
        readOnly,
        numQueues: o.numQueues ?? 1,
        queueSize: o.queueSize,
        discard: o.discard ?? (writable && typeof o.backend.discard === 'function'),
        writeZeroes: o.writeZeroes ?? (writable && typeof o.backend.writeZeroes === 'function'),
        mayUnmap: o.backend.canUnmap === true,
      })
    this.features = configFeatures(this.config)
    this.#configSpace = encodeConfig(this.config) // throws BlkConfigError for a bad config
    this.id = idBytes(o.serial ?? 'virtio-queue-blk')
    this.#sectors = Number(this.config.capacity)
  }

  /** Capacity in 512-byte sectors. */
  get sectors(): bigint {
    return this.config.capacity
  }

  get readOnly(): boolean {
    return this.config.readOnly === true
  }

  get numQueues(): number {
    return this.config.numQueues ?? 1
  }

  /** A copy of the encoded config space (what GET_CONFIG / a config read returns). */
  configSpace(): Buffer {
    return Buffer.from(this.#configSpace)
  }

  /**
   * Byte offset of `sector` if `count` sectors from there are on the disk; else -1. Numbers,
   * not bigints, on the request path: a sector number read as two u32 halves is exact below
   * 2^53, and one above is past any capacity whether rounded or not.
   */
  byteOffset(sector: number, count: number): number {
    if (!(sector + count <= this.#sectors)) return -1
    return sector * SECTOR_SIZE
  }
}
