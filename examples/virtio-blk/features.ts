// virtio-blk feature bits (virtio 1.x, 5.2.3 "Feature bits"): what the device offers
// the driver. Each config-space field is valid only when its feature is offered, so the
// feature set is derived from the config (config.ts) rather than chosen apart from it.
// Transport bits (VIRTIO_F_VERSION_1, EVENT_IDX, INDIRECT_DESC) are the transport's or
// the vhost-user backend's to add.

/** size_max is valid: the largest single data segment, in bytes. */
export const VIRTIO_BLK_F_SIZE_MAX = 1
/** seg_max is valid: the most data segments in one request. */
export const VIRTIO_BLK_F_SEG_MAX = 2
/** geometry is valid (legacy CHS). */
export const VIRTIO_BLK_F_GEOMETRY = 4
/** The device is read-only: OUT, DISCARD and WRITE_ZEROES are answered IOERR. */
export const VIRTIO_BLK_F_RO = 5
/** blk_size is valid: the optimal (logical) block size. */
export const VIRTIO_BLK_F_BLK_SIZE = 6
/** FLUSH requests are served (and the device has a write-back cache). */
export const VIRTIO_BLK_F_FLUSH = 9
/** topology is valid. */
export const VIRTIO_BLK_F_TOPOLOGY = 10
/** num_queues is valid: more than one request queue. */
export const VIRTIO_BLK_F_MQ = 12
/** DISCARD requests are served; max_discard_sectors, max_discard_seg, discard_sector_alignment are valid. */
export const VIRTIO_BLK_F_DISCARD = 13
/** WRITE_ZEROES requests are served; max_write_zeroes_sectors, max_write_zeroes_seg, write_zeroes_may_unmap are valid. */
export const VIRTIO_BLK_F_WRITE_ZEROES = 14

/** The bit mask of feature `bit`. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit)
}

/** Whether `features` has `bit` set. */
export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n
}

const NAMES: Record<number, string> = {
  [VIRTIO_BLK_F_SIZE_MAX]: 'SIZE_MAX',
  [VIRTIO_BLK_F_SEG_MAX]: 'SEG_MAX',
  [VIRTIO_BLK_F_GEOMETRY]: 'GEOMETRY',
  [VIRTIO_BLK_F_RO]: 'RO',
  [VIRTIO_BLK_F_BLK_SIZE]: 'BLK_SIZE',
  [VIRTIO_BLK_F_FLUSH]: 'FLUSH',
  [VIRTIO_BLK_F_TOPOLOGY]: 'TOPOLOGY',
  [VIRTIO_BLK_F_MQ]: 'MQ',
  [VIRTIO_BLK_F_DISCARD]: 'DISCARD',
  [VIRTIO_BLK_F_WRITE_ZEROES]: 'WRITE_ZEROES',
}

/** The names of the virtio-blk bits in `features` (for logs), e.g. ["SEG_MAX", "FLUSH"]. */
export function featureNames(features: bigint): string[] {
  const out: string[] = []
  for (const [bit, name] of Object.entries(NAMES)) if (hasFeature(features, Number(bit))) out.push(name)
  return out
}
