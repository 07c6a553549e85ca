// What each virtio-blk request does (virtio 1.x, 5.2.6): the header is decoded, the
// type dispatched, the data moved between guest memory and the storage with zero
// copies (one preadv/pwritev on the chain's buffers in guest memory, through the batch:
// ChainBatch.readFromFile/writeToFile; a backend without readTo/writeFrom gets a copy),
// and a status chosen. device.ts runs this for every chain a pop stored in its batch and
// writes the status byte. Nothing here allocates for IN, OUT, FLUSH or GET_ID.
import type { ChainBatch, FileIoBatch } from '../..'

import * as featureBits from './features'
import type { BlkModel } from './model'
import * as protocol from './protocol'
import type { BlkStatus } from './protocol'
import * as segments from './segments'

// The imported names this file uses, bound here once. Under tsx (how the example runs),
// every use of an imported binding is two getter calls and a megamorphic property lookup
// (its CommonJS interop copies exports behind getters): about 90 ns per request over the
// dozen uses on the request path. Local constants cost nothing.
const { hasFeature, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_WRITE_ZEROES } = featureBits
const {
  HEADER_SIZE,
  ID_BYTES,
  SECTOR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} = protocol
const { checkSegments } = segments

/** What a queue's device did, for the demo's summary and the tests. */
export interface BlkDeviceStats {
  /** processQueue() calls that found work (one per kick the device acted on). */
  wakeups: number
  /** Chains completed (put in the used ring). */
  requests: number
  /** Completed requests by type. */
  reads: number
  writes: number
  flushes: number
  getIds: number
  discards: number
  writeZeroes: number
  /** Status bytes written, by value. */
  ok: number
  ioerr: number
  unsupp: number
  /** Malformed chains with no usable status byte, completed with used len 0. */
  noStatus: number
  /** Bytes transferred disk → guest (IN) and guest → disk (OUT). */
  bytesRead: number
  bytesWritten: number
  /** Bytes deallocated (DISCARD, WRITE_ZEROES with unmap) and zeroed (WRITE_ZEROES). */
  bytesDiscarded: number
  bytesZeroed: number
  /** Interrupts sent to the driver, and the ones needsNotification() said to skip. */
  notifications: number
  notificationsSuppressed: number
  /** The last request error, for debugging (malformed chains, I/O errors). */
  lastError: string | null
}

export function emptyStats(): BlkDeviceStats {
  return {
    wakeups: 0,
    requests: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    getIds: 0,
    discards: 0,
    writeZeroes: 0,
    ok: 0,
    ioerr: 0,
    unsupp: 0,
    noStatus: 0,
    bytesRead: 0,
    bytesWritten: 0,
    bytesDiscarded: 0,
    bytesZeroed: 0,
    notifications: 0,
    notificationsSuppressed: 0,
    lastError: null,
  }
}

/**
 * Outcome of one request: the status byte to write and the data bytes written into the
 * chain. With a FileIoBatch, an IN, OUT or FLUSH is only queued: `op` is its operation in
 * the batch (else -1), and its status stands only if the operation moves `expect` bytes.
 */
export interface Completion {
  status: BlkStatus
  dataWritten: number
  op: number
  expect: number
}

// The request header is read into this scratch (no JavaScript runs between filling and
// decoding it, so one serves every queue).
const HEADER = new Uint8Array(HEADER_SIZE)
const HEADER_VIEW = new DataView(HEADER.buffer)

/**
 * Serves chain `i` of `batch` (its status byte is the caller's), into `out` (pass the same
 * object every time: it is returned). Returns IOERR or UNSUPP for anything wrong with the
 * request; throws only when the chain's buffers are not in guest memory or the storage
 * fails (the caller answers IOERR). With `job` (and a backend with an `fd`), the file I/O
 * of an IN, OUT or FLUSH is queued on it instead of done here (see Completion).
 */
export function serveRequest(
  model: BlkModel,
  batch: ChainBatch,
  i: number,
  stats: BlkDeviceStats,
  out: Completion = { status: VIRTIO_BLK_S_OK, dataWritten: 0, op: -1, expect: 0 },
  job: FileIoBatch | null = null,
): Completion {
  out.op = -1
  // No closures made per request: each would be an allocation, and under tsx (whose
  // keepNames names every function expression) an Object.defineProperty call too, which
  // cost about 15% of the vhost-user disk's CPU time per request.
  if (batch.readInto(i, HEADER) < HEADER_SIZE)
    return fail(out, stats, batch, i, VIRTIO_BLK_S_IOERR, `header shorter than ${HEADER_SIZE} bytes`)
  // The header's fields (type, reserved, sector as two u32 halves): no object or bigint per
  // request. A sector number of 2^53 or more is rounded, but lies past any capacity either way.
  const type = HEADER_VIEW.getUint32(0, true)
  const sector = HEADER_VIEW.getUint32(12, true) * 2 ** 32 + HEADER_VIEW.getUint32(8, true)
  const { backend, features } = model
  const fd = job === null ? undefined : backend.fd
  const writes = type === VIRTIO_BLK_T_OUT || type === VIRTIO_BLK_T_DISCARD || type === VIRTIO_BLK_T_WRITE_ZEROES
  // VIRTIO_BLK_F_RO: the device MUST answer IOERR to writes and write nothing.
  if (writes && model.readOnly)
    return fail(out, stats, batch, i, VIRTIO_BLK_S_IOERR, `request type ${type} on a read-only device`)
  switch (type) {
    case VIRTIO_BLK_T_IN: {
      stats.reads++
      // Every writable byte but the last, the status byte (device.ts checked it is there).
      const writable = batch.writableBytes(i)
      if (writable < 0) return fail(out, stats, batch, i, VIRTIO_BLK_S_IOERR, 'IN: data buffers not in guest memory')
      const length = writable - 1
      const offset = length % SECTOR_SIZE === 0 ? model.byteOffset(sector, length / SECTOR_SIZE) : -1
      if (offset < 0) return fail(out, stats, batch, i, VIRTIO_BLK_S_IOERR, outOfRange('IN', sector, length))
      // preadv straight into guest memory: one native call (or a copy), or queued
      if (fd !== undefined) queued(out, job!.readFromFile(batch, i, fd, offset, 0, length), length)
      else if (backend.readTo) backend.readTo(batch, i, 0, length, offset)
      else readCopy(backend, batch, i, length, offset)
      stats.bytesRead += length
      return done(out, VIRTIO_BLK_S_OK, length)
    }
    case VIRTIO_BLK_T_OUT: {
      stats.writes++
      // The readable bytes after the header are the data (readInto checked they are in memory).
      const length = batch.readableBytes(i) - HEADER_SIZE
      const offset = length % SECTOR_SIZE === 0 ? model.byteOffset(sector, length / SECTOR_SIZE) : -1
      if (offset < 0) return fail(out, stats, batch, i, VIRTIO_BLK_S_IOERR, outOfRange('OUT', sector, length))
      // pwritev straight from guest memory, or queued
      if (fd !== undefined) queued(out, job!.writeToFile(batch, i, fd, offset, HEADER_SIZE, length), length)
      else if (backend.writeFrom) backend.writeFrom(batch, i, HEADER_SIZE, length, offset)
      else writeCopy(backend, batch, i, length, offset)
      stats.bytesWritten += length
      return done(out, VIRTIO_BLK_S_OK, 0)
    }
    case VIRTIO_BLK_T_FLUSH:
      if (!hasFeature(features, VIRTIO_BLK_F_FLUSH))
        return fail(out, stats, batch, i, VIRTIO_BLK_S_UNSUPP, 'FLUSH not offered')
      stats.flushes++
      // Queued, a FLUSH runs after the operations queued before it: it covers those writes too.
      if (fd !== undefined) queued(out, job!.datasync(fd), 0)
      else backend.flush()
      return done(out, VIRTIO_BLK_S_OK, 0)
    case VIRTIO_BLK_T_GET_ID: {
      stats.getIds++
      // The id goes at the start of the writable area, before the status byte.
      const n = Math.min(ID_BYTES, batch.writableBytes(i) - 1)
      if (n < 0) return fail(out, stats, batch, i, VIRTIO_BLK_S_IOERR, 'GET_ID: buffers not in guest memory')
      batch.write(i, n === ID_BYTES ? model.id : model.id.subarray(0, n))
      return done(out, VIRTIO_BLK_S_OK, n)
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const discard = type === VIRTIO_BLK_T_DISCARD
      const kind = discard ? 'DISCARD' : 'WRITE_ZEROES'
      const limits = discard ? model.config.discard : model.config.writeZeroes
      const bit = discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES
      if (limits === undefined || !hasFeature(features, bit))
        return fail(out, stats, batch, i, VIRTIO_BLK_S_UNSUPP, `${kind} not offered`)
      if (discard) stats.discards++
      else stats.writeZeroes++
      const dataLength = batch.readableBytes(i) - HEADER_SIZE
      const checked = checkSegments(kind, limits, model.sectors, dataLength, (n) => {
        const segments = Buffer.alloc(n)
        batch.readInto(i, segments, HEADER_SIZE)
        return segments
      })
      if (!checked.ok) {
        stats.lastError = `chain ${batch.head(i)}: ${checked.reason}`
        return done(out, checked.status, 0)
      }
      const mayUnmap = model.config.writeZeroes?.mayUnmap === true
      for (const r of checked.ranges) {
        // DISCARD, and WRITE_ZEROES with unmap where write_zeroes_may_unmap: deallocate
        // (a hole reads as zeros); else write zeros.
        if ((discard || (r.unmap && mayUnmap)) && backend.discard) {
          backend.discard(r.offset, r.length)
          stats.bytesDiscarded += r.length
        } else if (backend.writeZeroes) {
          backend.writeZeroes(r.offset, r.length)
          stats.bytesZeroed += r.length
        } else {
          return fail(out, stats, batch, i, VIRTIO_BLK_S_IOERR, `${kind}: the storage cannot zero`)
        }
      }
      return done(out, VIRTIO_BLK_S_OK, 0)
    }
    default:
      return fail(out, stats, batch, i, VIRTIO_BLK_S_UNSUPP, `unknown request type ${type}`)
  }
}

/** Records the operation `op` that must move `expect` bytes for the request to succeed. */
function queued(out: Completion, op: number, expect: number): void {
  out.op = op
  out.expect = expect
}

/** Fills `out` (the caller's, reused: no object per request). */
function done(out: Completion, status: BlkStatus, dataWritten: number): Completion {
  out.status = status
  out.dataWritten = dataWritten
  return out
}

/** Records why chain `i` failed and answers `status` with no data. */
function fail(
  out: Completion,
  stats: BlkDeviceStats,
  batch: ChainBatch,
  i: number,
  status: BlkStatus,
  reason: string,
): Completion {
  stats.lastError = `chain ${batch.head(i)}: ${reason}`
  return done(out, status, 0)
}

/** Why an IN or OUT request's data cannot be served: its range, for the device's log. */
function outOfRange(type: 'IN' | 'OUT', sector: number, length: number): string {
  return `${type}: sector ${sector} + ${length} bytes out of range or not whole sectors`
}

/** IN for a backend without readTo: its bytes read into a Buffer, copied into the chain. */
function readCopy(backend: BlkModel['backend'], batch: ChainBatch, i: number, length: number, offset: number): void {
  const data = Buffer.allocUnsafe(length)
  backend.read([data], offset)
  batch.write(i, data)
}

/** OUT for a backend without writeFrom: the chain's data copied into a Buffer, written. */
function writeCopy(backend: BlkModel['backend'], batch: ChainBatch, i: number, length: number, offset: number): void {
  const data = Buffer.allocUnsafe(length)
  batch.readInto(i, data, HEADER_SIZE)
  backend.write([data], offset)
}
