// A virtio-blk device model (virtio 1.x, 5.2 "Block Device") over one request
// queue: the part of a VMM that runs when the guest kicks the queue.
//
// Each request chain is a 16-byte readable header, data buffers (readable for
// OUT, writable for IN and GET_ID) and a 1-byte writable status at the very end.
// Data moves with zero copies: the chain's buffers are Buffer views of guest
// memory, handed straight to preadv/pwritev on the disk image.
//
// In your project, import from 'virtio-queue' instead of '../..'.
import { type DescriptorChain, type Queue, VirtioQueueError } from '../..'

import type { BlockBackend } from './disk'
import {
  HEADER_SIZE,
  ID_BYTES,
  SECTOR_SIZE,
  type BlkStatus,
  decodeHeader,
  idBytes,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from './protocol'

export interface BlkDeviceOptions {
  /** The storage. */
  backend: BlockBackend
  /** The GET_ID answer (up to 20 bytes of UTF-8). Default "virtio-queue-blk". */
  serial?: string
  /** Interrupts the driver (in a VMM: write the queue's irqfd). Called when the queue needs a notification. */
  signalUsedQueue?: () => void
}

/** What the device did, for the demo's summary. */
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
  /** Status bytes written, by value. */
  ok: number
  ioerr: number
  unsupp: number
  /** Malformed chains with no usable status byte, completed with used len 0. */
  noStatus: number
  /** Bytes transferred disk → guest (IN) and guest → disk (OUT). */
  bytesRead: number
  bytesWritten: number
  /** Interrupts sent to the driver, and the ones needsNotification() said to skip. */
  notifications: number
  notificationsSuppressed: number
  /** The last request error, for debugging (malformed chains, I/O errors). */
  lastError: string | null
}

/** Outcome of one request: the status byte to write and the data bytes written into the chain. */
interface Completion {
  status: BlkStatus
  dataWritten: number
}

export class BlkDevice {
  readonly queue: Queue
  readonly backend: BlockBackend
  readonly stats: BlkDeviceStats = {
    wakeups: 0,
    requests: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    getIds: 0,
    ok: 0,
    ioerr: 0,
    unsupp: 0,
    noStatus: 0,
    bytesRead: 0,
    bytesWritten: 0,
    notifications: 0,
    notificationsSuppressed: 0,
    lastError: null,
  }
  /**
   * Set when the queue itself is broken (e.g. the driver published an avail idx more
   * than a queue size ahead): a VMM would set DEVICE_NEEDS_RESET and stop the queue.
   */
  needsReset: Error | null = null
  readonly #id: Buffer
  readonly #signal: () => void

  constructor(queue: Queue, options: BlkDeviceOptions) {
    this.queue = queue
    this.backend = options.backend
    this.#id = idBytes(options.serial ?? 'virtio-queue-blk')
    this.#signal = options.signalUsedQueue ?? (() => {})
  }

  /**
   * Handles a kick: completes every available request, then interrupts the driver if
   * it asked for it. Returns the number of chains completed.
   */
  processQueue(): number {
    if (this.needsReset) return 0
    using guard = this.queue.lockWithMemory()
    let completed = 0
    try {
      do {
        // No kicks while we are busy anyway (a no-op with event idx, where
        // enableNotification() below publishes avail_event instead).
        guard.disableNotification()
        for (const chain of guard.iter()) {
          guard.addUsed(chain.headIndex, this.handleRequest(chain))
          completed++
        }
        // Re-arm kicks; true means the driver added chains after iter() looked,
        // which it may not kick for: go round again instead of missing them.
      } while (guard.enableNotification())
    } catch (e) {
      if (!(e instanceof VirtioQueueError)) throw e
      this.needsReset = e // InvalidAvailRingIndex, GuestMemory: the queue is unusable
    }
    if (completed > 0) {
      this.stats.wakeups++
      // With event idx this honours the driver's used_event; without, the crate always says yes.
      if (guard.needsNotification()) {
        this.stats.notifications++
        this.#signal()
      } else {
        this.stats.notificationsSuppressed++
      }
    }
    return completed
  }

  /**
   * Serves one request chain and writes its status byte. Returns the used length: the
   * bytes written into the chain (data + the status byte), or 0 for a chain that has no
   * status byte to answer in. Never throws for anything the guest put in the chain.
   */
  handleRequest(chain: DescriptorChain): number {
    this.stats.requests++
    // The status byte is the chain's last byte, in a device-writable descriptor. A chain
    // the crate cut short (isComplete false) has no known end, so no status byte: writing
    // into whatever descriptor came last could clobber the guest's data.
    const statusAddr = chain.isComplete ? statusAddress(chain) : null
    if (statusAddr === null) {
      this.stats.noStatus++
      this.stats.lastError = `chain ${chain.headIndex}: no status byte (${chain.stopReason ?? 'last descriptor not writable'})`
      return 0
    }
    let result: Completion
    try {
      result = this.#serve(chain)
    } catch (e) {
      // Buffers outside guest memory (VirtioQueueError InvalidChain), a failing disk.
      this.stats.lastError = `chain ${chain.headIndex}: ${(e as Error).message}`
      result = { status: VIRTIO_BLK_S_IOERR, dataWritten: 0 }
    }
    chain.memory.writeU8(statusAddr, result.status)
    if (result.status === VIRTIO_BLK_S_OK) this.stats.ok++
    else if (result.status === VIRTIO_BLK_S_IOERR) this.stats.ioerr++
    else this.stats.unsupp++
    return result.dataWritten + 1
  }

  #serve(chain: DescriptorChain): Completion {
    const reader = chain.reader()
    if (reader.availableBytes() < HEADER_SIZE)
      return this.#ioerr(`chain ${chain.headIndex}: header shorter than ${HEADER_SIZE} bytes`)
    const { type, sector } = decodeHeader(reader.read(HEADER_SIZE))
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        this.stats.reads++
        const views = dataIn(chain)
        const offset = this.#byteOffset(sector, totalLength(views))
        if (offset < 0) return this.#ioerr(`IN: sector ${sector} + ${totalLength(views)} bytes out of range`)
        this.backend.read(views, offset) // preadv straight into guest memory
        this.stats.bytesRead += totalLength(views)
        return { status: VIRTIO_BLK_S_OK, dataWritten: totalLength(views) }
      }
      case VIRTIO_BLK_T_OUT: {
        this.stats.writes++
        const views = skipBytes(chain.readableBuffers(), HEADER_SIZE)
        const offset = this.#byteOffset(sector, totalLength(views))
        if (offset < 0) return this.#ioerr(`OUT: sector ${sector} + ${totalLength(views)} bytes out of range`)
        this.backend.write(views, offset) // pwritev straight from guest memory
        this.stats.bytesWritten += totalLength(views)
        return { status: VIRTIO_BLK_S_OK, dataWritten: 0 }
      }
      case VIRTIO_BLK_T_FLUSH:
        this.stats.flushes++
        this.backend.flush()
        return { status: VIRTIO_BLK_S_OK, dataWritten: 0 }
      case VIRTIO_BLK_T_GET_ID: {
        this.stats.getIds++
        // The id goes at the start of the writable area, before the status byte.
        const writer = chain.writer()
        const n = Math.min(ID_BYTES, writer.availableBytes() - 1)
        writer.write(this.#id.subarray(0, n))
        return { status: VIRTIO_BLK_S_OK, dataWritten: n }
      }
      default:
        // DISCARD, WRITE_ZEROES, ...: we offered none of their feature bits.
        return { status: VIRTIO_BLK_S_UNSUPP, dataWritten: 0 }
    }
  }

  #ioerr(reason: string): Completion {
    this.stats.lastError = reason
    return { status: VIRTIO_BLK_S_IOERR, dataWritten: 0 }
  }

  /** Byte offset of `sector` if `length` bytes from there are on the disk and length is whole sectors; else -1. */
  #byteOffset(sector: bigint, length: number): number {
    if (length % SECTOR_SIZE !== 0) return -1
    const end = sector + BigInt(length / SECTOR_SIZE)
    if (end > BigInt(this.backend.sectors)) return -1
    return Number(sector) * SECTOR_SIZE
  }
}

/** Guest address of the status byte: the last byte of the last descriptor, if that is device-writable and in memory. */
function statusAddress(chain: DescriptorChain): number | null {
  const descs = chain.descriptors()
  const last = descs[descs.length - 1]
  if (last === undefined || !last.isWriteOnly() || last.len === 0) return null
  const addr = last.addr + last.len - 1
  return chain.memory.checkRange(addr, 1) ? addr : null
}

/** The writable views minus the trailing status byte: where IN data goes. */
function dataIn(chain: DescriptorChain): Buffer[] {
  const views = chain.writableBuffers()
  const last = views.length - 1
  if (views[last]!.length === 1) views.pop()
  else views[last] = views[last]!.subarray(0, views[last]!.length - 1)
  return views
}

/** The views after their first `n` bytes. */
function skipBytes(views: Buffer[], n: number): Buffer[] {
  let left = n
  let i = 0
  while (i < views.length && left >= views[i]!.length) left -= views[i++]!.length
  const rest = views.slice(i)
  if (left > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(left)
  return rest
}

function totalLength(views: readonly Buffer[]): number {
  let n = 0
  for (const v of views) n += v.length
  return n
}
