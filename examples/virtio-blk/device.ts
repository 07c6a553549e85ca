// One request queue of a virtio-blk device (virtio 1.x, 5.2 "Block Device"): the
// part of a VMM that runs when the guest kicks the queue. The device itself (storage,
// config, features) is the shared BlkModel (model.ts); a multiqueue device has one
// BlkDevice per queue, each served independently. What each request does is
// requests.ts.
//
// Each request chain is a 16-byte readable header, data buffers (readable for
// OUT, writable for IN and GET_ID) and a 1-byte writable status at the very end.
// Chains are served on the batch path (popChains into a ChainBatch, addUsedBatch), so a
// request makes no object: no DescriptorChain, Reader or Writer. Data moves with zero
// copies: one preadv/pwritev between the disk image and the chain's buffers in guest
// memory (ChainBatch.readFromFile / writeToFile).
//
// In your project, import from 'virtio-queue' instead of '../..'.
import { CHAIN_STOP_REASONS, ChainBatch, type Queue, type QueueGuard, UsedBatch, VirtioQueueError } from '../..'

import { BlkModel, type BlkModelOptions } from './model'
import * as protocol from './protocol'
import * as requests from './requests'
import type { BlkDeviceStats, Completion } from './requests'

// Imported names used per request, bound once (see requests.ts: under tsx each use of an
// imported binding is a getter call and a megamorphic lookup).
const { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK } = protocol
const { emptyStats, serveRequest } = requests

export type { BlkDeviceStats } from './requests'

/** Chains per pop: a pass over a ring of up to 128 requests in one native call. */
const BATCH_CHAINS = 128

export type BlkDeviceOptions = (
  | {
      /** The device this queue belongs to (shared by all its queues). */
      model: BlkModel
    }
  | BlkModelOptions
) & {
  /** Interrupts the driver (in a VMM: write the queue's irqfd). Called when the queue needs a notification. */
  signalUsedQueue?: (() => void) | undefined
}

/** One request queue of a virtio-blk device: serves its chains when kicked. */
export class BlkDevice {
  /**
   * The queue served. A vhost-user backend moves a running ring to a new Queue when the
   * frontend replaces the memory table: set the new one before the next processQueue().
   */
  queue: Queue
  readonly model: BlkModel
  readonly stats: BlkDeviceStats = emptyStats()
  /**
   * Set when the queue itself is broken (e.g. the driver published an avail idx more
   * than a queue size ahead): a VMM would set DEVICE_NEEDS_RESET and stop the queue.
   */
  needsReset: Error | null = null
  readonly #signal: () => void
  /** What serveRequest() fills for each request (one object, reused). */
  readonly #completion: Completion = { status: VIRTIO_BLK_S_OK, dataWritten: 0 }
  /** The chains of each pop and their used entries (reused: nothing is allocated per request). */
  readonly #batch = new ChainBatch(BATCH_CHAINS)
  readonly #used = new UsedBatch(BATCH_CHAINS)
  /** The guard of #guardQueue, kept between kicks and relocked (the queue changes when a vhost-user memory table does). */
  #guard: QueueGuard | null = null
  #guardQueue: Queue | null = null

  constructor(queue: Queue, options: BlkDeviceOptions) {
    this.queue = queue
    this.model = 'model' in options ? options.model : new BlkModel(options)
    this.#signal = options.signalUsedQueue ?? (() => {})
  }

  /** The storage (the model's). */
  get backend(): BlkModel['backend'] {
    return this.model.backend
  }

  /**
   * Handles a kick: completes every available request, interrupting the driver after each
   * pass over the ring if it asked for it. Returns the number of chains completed.
   */
  processQueue(): number {
    if (this.needsReset) return 0
    // try/finally rather than `using`: tsx lowers `using` to helpers that allocate a
    // disposal stack and closures on every kick.
    const guard = this.#lock()
    try {
      return this.#serve(guard)
    } finally {
      guard.release()
    }
  }

  /** This queue's guard, relocked: one guard per queue, not one per kick. */
  #lock(): QueueGuard {
    if (this.#guard !== null && this.#guardQueue === this.queue) return this.#guard.relock()
    this.#guardQueue = this.queue
    this.#guard = this.queue.lockWithMemory()
    return this.#guard
  }

  #serve(guard: QueueGuard): number {
    let completed = 0
    let interrupted = 0 // `completed` when the driver was last interrupted (or told not to be)
    try {
      do {
        // No kicks while we are busy anyway (a no-op with event idx, where
        // enableNotification() below publishes avail_event instead).
        guard.disableNotification()
        const batch = this.#batch
        const used = this.#used
        // A pass: pops until a pop comes back short of a full batch (the ring was drained
        // at that moment; a full one may have left chains behind), then interrupts.
        let n: number
        do {
          n = guard.popChains(batch)
          for (let i = 0; i < n; i++) used.push(batch.head(i), this.handleRequest(guard, batch, i))
          // One native call publishes the pop's used entries.
          guard.addUsedBatch(used)
          completed += n
        } while (n === BATCH_CHAINS)
        // Interrupt after each pass over the ring, before re-arming kicks: the driver can
        // reap these and queue more while this pass ends, and enableNotification() then
        // finds them (no kick needed), as vhost-user-backend devices do.
        if (completed > interrupted) {
          interrupted = completed
          this.#interrupt(guard)
        }
        // Re-arm kicks; true means the driver added chains after the last pop looked,
        // which it may not kick for: go round again instead of missing them.
      } while (guard.enableNotification())
    } catch (e) {
      if (!(e instanceof VirtioQueueError)) throw e
      this.needsReset = e // InvalidAvailRingIndex, GuestMemory: the queue is unusable
      if (completed > interrupted) this.#interrupt(guard)
    }
    if (completed > 0) this.stats.wakeups++
    return completed
  }

  /** Interrupts the driver if it asked (event idx: its used_event; without, always). */
  #interrupt(guard: QueueGuard): void {
    if (guard.needsNotification()) {
      this.stats.notifications++
      this.#signal()
    } else {
      this.stats.notificationsSuppressed++
    }
  }

  /**
   * Serves chain `i` of `batch` (popped by `guard`) and writes its status byte. Returns the
   * used length: the bytes written into the chain (data + the status byte), or 0 for a
   * chain that has no status byte to answer in. Never throws for anything the guest put in
   * the chain.
   */
  handleRequest(guard: QueueGuard, batch: ChainBatch, i: number): number {
    this.stats.requests++
    // The status byte is the chain's last byte, in a device-writable descriptor. A chain
    // the crate cut short (status not 0) has no known end, so no status byte: writing
    // into whatever descriptor came last could clobber the guest's data.
    const memory = guard.memory
    const stop = batch.status(i)
    const statusAddr = stop === 0 ? statusAddress(memory, batch, i) : -1
    if (statusAddr < 0) {
      this.stats.noStatus++
      this.stats.lastError = `chain ${batch.head(i)}: no status byte (${stop === 0 ? 'last descriptor not writable' : (CHAIN_STOP_REASONS[stop] ?? 'InvalidChain')})`
      return 0
    }
    const result = this.#completion
    try {
      serveRequest(this.model, batch, i, this.stats, result)
    } catch (e) {
      // Buffers outside guest memory (VirtioQueueError InvalidChain), a failing disk.
      this.stats.lastError = `chain ${batch.head(i)}: ${(e as Error).message}`
      result.status = VIRTIO_BLK_S_IOERR
      result.dataWritten = 0
    }
    memory.writeU8(statusAddr, result.status)
    if (result.status === VIRTIO_BLK_S_OK) this.stats.ok++
    else if (result.status === VIRTIO_BLK_S_IOERR) this.stats.ioerr++
    else this.stats.unsupp++
    return result.dataWritten + 1
  }
}

/**
 * Guest address of chain `i`'s status byte: the last byte of its last descriptor, if that
 * is device-writable and in memory; else -1.
 */
function statusAddress(memory: QueueGuard['memory'], batch: ChainBatch, i: number): number {
  const count = batch.descriptorCount(i)
  if (count === 0) return -1
  const last = batch.descriptorStart(i) + count - 1
  const len = batch.len(last)
  if (!batch.isWriteOnly(last) || len === 0) return -1
  const addr = batch.addr(last) + len - 1
  return Number.isSafeInteger(addr) && memory.checkRange(addr, 1) ? addr : -1
}
