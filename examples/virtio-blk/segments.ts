// The data of DISCARD and WRITE_ZEROES requests: a list of {sector, num_sectors, flags}
// segments (protocol.ts), checked against the config's limits before any of them runs,
// so a request is done whole or not at all.
//
// Status codes (virtio 1.x, 5.2.6.2): an unknown flag, or unmap on a DISCARD, is
// UNSUPP (the spec's MUST); a data length that is not whole segments, more segments
// than max_*_seg, a segment longer than max_*_sectors or past the capacity is IOERR.
import type { DiscardLimits, WriteZeroesLimits } from './config'
import {
  type BlkSegment,
  type BlkStatus,
  decodeSegment,
  SECTOR_SIZE,
  SEGMENT_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from './protocol'

/** One checked segment in bytes. */
export interface ByteRange {
  offset: number
  length: number
  /** WRITE_ZEROES with the unmap flag: the range may be deallocated. */
  unmap: boolean
}

export type SegmentsResult = { ok: true; ranges: ByteRange[] } | { ok: false; status: BlkStatus; reason: string }

/**
 * Checks a request's segment bytes. `dataLength` is the readable length after the
 * header (checked before `read` copies anything, so a huge chain costs nothing).
 */
export function checkSegments(
  kind: 'DISCARD' | 'WRITE_ZEROES',
  limits: DiscardLimits | WriteZeroesLimits,
  capacity: bigint,
  dataLength: number,
  read: (n: number) => Uint8Array,
): SegmentsResult {
  const bad = (status: BlkStatus, reason: string): SegmentsResult => ({
    ok: false,
    status,
    reason: `${kind}: ${reason}`,
  })
  if (dataLength === 0 || dataLength % SEGMENT_SIZE !== 0)
    return bad(VIRTIO_BLK_S_IOERR, `${dataLength} data bytes are not whole ${SEGMENT_SIZE}-byte segments`)
  const count = dataLength / SEGMENT_SIZE
  if (count > limits.maxSeg) return bad(VIRTIO_BLK_S_IOERR, `${count} segments, more than max_seg ${limits.maxSeg}`)
  const bytes = read(dataLength)
  const known = kind === 'WRITE_ZEROES' ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0
  const ranges: ByteRange[] = []
  for (let i = 0; i < count; i++) {
    const s: BlkSegment = decodeSegment(bytes, i * SEGMENT_SIZE)
    if ((s.flags & ~known) !== 0)
      return bad(
        VIRTIO_BLK_S_UNSUPP,
        kind === 'DISCARD' && s.flags === VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
          ? `segment ${i} has the unmap flag, which DISCARD must not set`
          : `segment ${i} has unknown flags 0x${s.flags.toString(16)}`,
      )
    if (s.numSectors > limits.maxSectors)
      return bad(
        VIRTIO_BLK_S_IOERR,
        `segment ${i}: ${s.numSectors} sectors, more than max_sectors ${limits.maxSectors}`,
      )
    if (s.sector + BigInt(s.numSectors) > capacity)
      return bad(VIRTIO_BLK_S_IOERR, `segment ${i}: sectors ${s.sector}+${s.numSectors} past the capacity ${capacity}`)
    ranges.push({
      offset: Number(s.sector) * SECTOR_SIZE,
      length: s.numSectors * SECTOR_SIZE,
      unmap: (s.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0,
    })
  }
  return { ok: true, ranges }
}
