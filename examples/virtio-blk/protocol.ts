// The virtio-blk request format (virtio 1.x, 5.2.6 "Device Operation"), shared by
// the device model and the simulated guest driver.
//
// A request is one descriptor chain:
//
//   struct virtio_blk_req {
//     le32 type;          // VIRTIO_BLK_T_*           } 16-byte header,
//     le32 reserved;      //                          } device-readable
//     le64 sector;        // in 512-byte units        }
//     u8   data[];        // readable for OUT, writable for IN and GET_ID
//     u8   status;        // VIRTIO_BLK_S_*, the chain's last byte, device-writable
//   };

/** Sector size of the request format, independent of the disk's block size. */
export const SECTOR_SIZE = 512
/** Bytes of the request header (type, reserved, sector). */
export const HEADER_SIZE = 16
/** Bytes of the device ID string returned by GET_ID (NUL-padded, not terminated when 20 long). */
export const ID_BYTES = 20

/** Request types this device implements (any other type is answered UNSUPP). */
export const VIRTIO_BLK_T_IN = 0
export const VIRTIO_BLK_T_OUT = 1
export const VIRTIO_BLK_T_FLUSH = 4
export const VIRTIO_BLK_T_GET_ID = 8
/** Only with VIRTIO_BLK_F_DISCARD / VIRTIO_BLK_F_WRITE_ZEROES offered; else UNSUPP. */
export const VIRTIO_BLK_T_DISCARD = 11
export const VIRTIO_BLK_T_WRITE_ZEROES = 13

/**
 * The data of DISCARD and WRITE_ZEROES requests is an array of 16-byte segments:
 *
 *   struct virtio_blk_discard_write_zeroes {
 *     le64 sector;
 *     le32 num_sectors;
 *     le32 flags;         // bit 0: unmap (WRITE_ZEROES only); the rest reserved
 *   };
 */
export const SEGMENT_SIZE = 16
/** WRITE_ZEROES may deallocate the range (punch a hole) instead of writing zeros. */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1

/** A decoded DISCARD / WRITE_ZEROES segment. */
export interface BlkSegment {
  sector: bigint
  numSectors: number
  flags: number
}

/** Decodes the segment at `offset` of `bytes` (16 bytes, little-endian). */
export function decodeSegment(bytes: Uint8Array, offset = 0): BlkSegment {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, SEGMENT_SIZE)
  return { sector: dv.getBigUint64(0, true), numSectors: dv.getUint32(8, true), flags: dv.getUint32(12, true) }
}

/** Encodes a segment into `out` at `offset` (the driver's side, for tests and the simulator). */
export function encodeSegment(out: Uint8Array, offset: number, s: BlkSegment): void {
  const dv = new DataView(out.buffer, out.byteOffset + offset, SEGMENT_SIZE)
  dv.setBigUint64(0, s.sector, true)
  dv.setUint32(8, s.numSectors >>> 0, true)
  dv.setUint32(12, s.flags >>> 0, true)
}

/** Status values, written to the last byte of the chain. */
export const VIRTIO_BLK_S_OK = 0
export const VIRTIO_BLK_S_IOERR = 1
export const VIRTIO_BLK_S_UNSUPP = 2

export type BlkStatus = typeof VIRTIO_BLK_S_OK | typeof VIRTIO_BLK_S_IOERR | typeof VIRTIO_BLK_S_UNSUPP

/** A decoded request header. */
export interface BlkHeader {
  type: number
  /** The sector as a bigint: a guest may send any u64. */
  sector: bigint
}

/** Decodes the 16-byte little-endian header. */
export function decodeHeader(bytes: Uint8Array): BlkHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE)
  return { type: dv.getUint32(0, true), sector: dv.getBigUint64(8, true) }
}

/** Encodes a header into `out` (16 bytes); `reserved` is written as 0. */
export function encodeHeader(out: Uint8Array, type: number, sector: bigint | number): void {
  const dv = new DataView(out.buffer, out.byteOffset, HEADER_SIZE)
  dv.setUint32(0, type >>> 0, true)
  dv.setUint32(4, 0, true)
  dv.setBigUint64(8, BigInt(sector), true)
}

/** The GET_ID answer for `serial`: its UTF-8 bytes, truncated or NUL-padded to 20 bytes. */
export function idBytes(serial: string): Buffer {
  const out = Buffer.alloc(ID_BYTES)
  Buffer.from(serial, 'utf8').copy(out, 0, 0, ID_BYTES)
  return out
}

/** A status value's name for reports. */
export function statusName(status: number): string {
  switch (status) {
    case VIRTIO_BLK_S_OK:
      return 'OK'
    case VIRTIO_BLK_S_IOERR:
      return 'IOERR'
    case VIRTIO_BLK_S_UNSUPP:
      return 'UNSUPP'
    default:
      return `0x${status.toString(16)}`
  }
}
