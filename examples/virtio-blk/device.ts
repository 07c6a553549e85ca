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
// memory, on the event loop as each chain is popped (ChainBatch.readFromFile /
// writeToFile) or, for a pop sent to libuv's threadpool (`io`, io-mode.ts), queued on a
// FileIoBatch whose completion answers the pop's requests together.
//
// In your project, import from 'virtio-queue' instead of '../..'.
import {
  CHAIN_STOP_REASONS,
  ChainBatch,
  FileIoBatch,
  type GuestMemory,
  type Queue,
  type QueueGuard,
  SystemError,
  UsedBatch,
  VirtioQueueError,
} from '../..'

import { AutoIo, type BlkIoMode } from './io-mode'
import { BlkModel, type BlkModelOptions } from './model'
import * as protocol from './protocol'
import * as requests from './requests'
import type { BlkDeviceStats, Completion } from './requests'

// Imported names used per request, bound once (see requests.ts: under tsx each use of an
// imported binding is a getter call and a megamorphic lookup).
const { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK } = protocol
const { emptyStats, serveRequest } = requests

export type { BlkIoMode } from './io-mode'
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
  /**
   * Where file I/O runs (default `sync`; see io-mode.ts). `threads` and `auto` need a
   * backend with an `fd` and guest memory JavaScript cannot detach (vhost-user memory,
   * SharedArrayBuffers: what FileIoBatch accepts); otherwise the queue is `sync` from its
   * first pop that would have gone to the threadpool.
   */
  io?: BlkIoMode | undefined
  /** Called when a FileIoBatch of this queue has completed and none is running. */
  onIdle?: (() => void) | undefined
  /**
   * The queue to serve now, when it can change under a running FileIoBatch (a vhost-user
   * ring moves to a new Queue, with the same state, when the memory table changes): its
   * requests are answered on the queue this returns then.
   */
  currentQueue?: (() => Queue) | undefined
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
  readonly #onIdle: () => void
  readonly #currentQueue: (() => Queue) | null
  /** What serveRequest() fills for each request (one object, reused). */
  readonly #completion: Completion = { status: VIRTIO_BLK_S_OK, dataWritten: 0, op: -1, expect: 0 }
  /** The chains of each pop and their used entries (reused: nothing is allocated per request). */
  readonly #batch = new ChainBatch(BATCH_CHAINS)
  readonly #used = new UsedBatch(BATCH_CHAINS)
  /** The guard of #guardQueue, kept between kicks and relocked (the queue changes when a vhost-user memory table does). */
  #guard: QueueGuard | null = null
  #guardQueue: Queue | null = null
  #io: BlkIoMode
  /** What `auto` has seen, and its choice. */
  readonly #auto = new AutoIo()
  /** The threadpool batch and, per chain of the pop it runs, what completing it takes. */
  #job: FileIoBatch | null = null
  #running = false
  #stopped = false
  /** The guest memory FileIoBatch was found to accept. */
  #memoryChecked: GuestMemory | null = null
  #pending = 0
  readonly #heads = new Uint16Array(BATCH_CHAINS)
  readonly #statusAddr = new Float64Array(BATCH_CHAINS)
  readonly #status = new Uint8Array(BATCH_CHAINS)
  readonly #written = new Float64Array(BATCH_CHAINS)
  readonly #op = new Int32Array(BATCH_CHAINS)
  readonly #expect = new Float64Array(BATCH_CHAINS)
  /** The FileIoBatch callback, made once. */
  readonly #whenDone = (): void => this.#complete()

  constructor(queue: Queue, options: BlkDeviceOptions) {
    this.queue = queue
    this.model = 'model' in options ? options.model : new BlkModel(options)
    this.#signal = options.signalUsedQueue ?? (() => {})
    this.#onIdle = options.onIdle ?? (() => {})
    this.#io = options.io ?? 'sync'
    this.#currentQueue = options.currentQueue ?? null
  }

  /** The storage (the model's). */
  get backend(): BlkModel['backend'] {
    return this.model.backend
  }

  /** Where file I/O runs now: `sync` once a `threads` or `auto` queue had to fall back. */
  get ioMode(): BlkIoMode {
    return this.#io
  }

  /** True while a FileIoBatch of this queue runs (its requests are popped, not yet used). */
  get busy(): boolean {
    return this.#running
  }

  /**
   * Stops serving: no pop after this (a running FileIoBatch still answers its requests and
   * puts them in the used ring). For a ring the frontend stops, or leaves.
   */
  stop(): void {
    this.#stopped = true
  }

  /**
   * Handles a kick: completes every available request, interrupting the driver after each
   * pass over the ring if it asked for it. Returns the number of chains completed now (a
   * pop sent to the threadpool completes later; while it runs, kicks do nothing: its
   * completion looks at the ring again).
   */
  processQueue(): number {
    if (this.needsReset || this.#running || this.#stopped) return 0
    // try/finally rather than `using`: tsx lowers `using` to helpers that allocate a
    // disposal stack and closures on every kick.
    const guard = this.#lock()
    try {
      return this.#serve(guard, 0, false)
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

  /**
   * Serves the ring; `completed` chains were used before (the driver not yet interrupted for
   * them), by a FileIoBatch that just returned if `afterBatch`.
   */
  #serve(guard: QueueGuard, completed: number, afterBatch: boolean): number {
    let interrupted = 0 // `completed` when the driver was last interrupted (or told not to be)
    let round = 0
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
          if (afterBatch) {
            afterBatch = false
            this.#auto.afterBatch(n)
          }
          if (n > 0 && this.#threads(n, round) && this.#submit(guard, batch, n)) {
            // Kicks stay off while it runs: its completion pops again.
            if (completed > interrupted) this.#interrupt(guard)
            if (completed > 0) this.stats.wakeups++
            return completed
          }
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
        round++
      } while (!this.#stopped && guard.enableNotification())
    } catch (e) {
      if (!(e instanceof VirtioQueueError)) throw e
      this.needsReset = e // InvalidAvailRingIndex, GuestMemory: the queue is unusable
      if (completed > interrupted) this.#interrupt(guard)
    }
    if (completed > 0) this.stats.wakeups++
    return completed
  }

  /** Whether a pop of `n` requests (in round `round` of a pass) goes to the threadpool. */
  #threads(n: number, round: number): boolean {
    const io = this.#io
    return io === 'auto' ? this.#auto.threads(n, round) : io === 'threads'
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
    const statusAddr = this.#statusOf(guard, batch, i)
    if (statusAddr < 0) return 0
    const result = this.#completion
    try {
      serveRequest(this.model, batch, i, this.stats, result)
    } catch (e) {
      this.#failed(result, batch.head(i), (e as Error).message)
    }
    return this.#answer(guard, statusAddr, result.status, result.dataWritten)
  }

  /**
   * The status byte's address of chain `i` (counting the request), or -1 when it has none.
   * The status byte is the chain's last byte, in a device-writable descriptor. A chain the
   * crate cut short (status not 0) has no known end, so no status byte: writing into
   * whatever descriptor came last could clobber the guest's data.
   */
  #statusOf(guard: QueueGuard, batch: ChainBatch, i: number): number {
    this.stats.requests++
    const stop = batch.status(i)
    const statusAddr = stop === 0 ? statusAddress(guard.memory, batch, i) : -1
    if (statusAddr < 0) {
      this.stats.noStatus++
      this.stats.lastError = `chain ${batch.head(i)}: no status byte (${stop === 0 ? 'last descriptor not writable' : (CHAIN_STOP_REASONS[stop] ?? 'InvalidChain')})`
    }
    return statusAddr
  }

  /** Buffers outside guest memory (VirtioQueueError InvalidChain), a failing disk: IOERR. */
  #failed(result: Completion, head: number, reason: string): void {
    this.stats.lastError = `chain ${head}: ${reason}`
    result.status = VIRTIO_BLK_S_IOERR
    result.dataWritten = 0
  }

  /** Writes the status byte and counts it; returns the used length. */
  #answer(guard: QueueGuard, statusAddr: number, status: number, dataWritten: number): number {
    guard.memory.writeU8(statusAddr, status)
    if (status === VIRTIO_BLK_S_OK) this.stats.ok++
    else if (status === VIRTIO_BLK_S_IOERR) this.stats.ioerr++
    else this.stats.unsupp++
    return dataWritten + 1
  }

  /**
   * Queues the file I/O of the pop's `n` chains on the threadpool batch and runs it; every
   * other part of each request (header, checks, GET_ID, DISCARD) is done now. False, with
   * nothing queued, when this queue cannot do I/O off the loop (no fd, memory JavaScript
   * can detach, not Linux): it is `sync` from then on.
   */
  #submit(guard: QueueGuard, batch: ChainBatch, n: number): boolean {
    const fd = this.model.backend.fd
    if (fd === undefined) return this.#fallBack('the storage has no file descriptor')
    // Whether this memory can be used off the loop, asked once per memory (a vhost-user
    // frontend's table can change).
    const memory = guard.memory
    if (memory !== this.#memoryChecked) {
      try {
        FileIoBatch.checkMemory(memory)
      } catch (e) {
        if (cannotRunOffLoop(e)) return this.#fallBack((e as Error).message)
        throw e
      }
      this.#memoryChecked = memory
    }
    const job = (this.#job ??= new FileIoBatch(BATCH_CHAINS))
    const result = this.#completion
    for (let i = 0; i < n; i++) {
      this.#heads[i] = batch.head(i)
      const statusAddr = this.#statusOf(guard, batch, i)
      this.#statusAddr[i] = statusAddr
      this.#op[i] = -1
      if (statusAddr < 0) continue
      try {
        serveRequest(this.model, batch, i, this.stats, result, job)
      } catch (e) {
        this.#failed(result, batch.head(i), (e as Error).message)
      }
      this.#status[i] = result.status
      this.#written[i] = result.dataWritten
      this.#op[i] = result.op
      this.#expect[i] = result.expect
    }
    this.#pending = n
    this.#running = true
    job.run(this.#whenDone)
    return true
  }

  #fallBack(reason: string): false {
    this.#io = 'sync'
    this.stats.lastError = `file I/O stays on the event loop: ${reason}`
    return false
  }

  /** The threadpool batch is back: answers its requests, then serves the ring again. */
  #complete(): void {
    this.#running = false
    const job = this.#job!
    const n = this.#pending
    this.#pending = 0
    // A broken queue's ring is not touched again.
    if (this.needsReset !== null) return this.#onIdle()
    let guard: QueueGuard | null = null
    try {
      if (this.#currentQueue !== null) this.queue = this.#currentQueue()
      guard = this.#lock()
      const used = this.#used
      const result = this.#completion
      for (let i = 0; i < n; i++) {
        const head = this.#heads[i]!
        const statusAddr = this.#statusAddr[i]!
        if (statusAddr < 0) {
          used.push(head, 0)
          continue
        }
        result.status = this.#status[i]! as Completion['status']
        result.dataWritten = this.#written[i]!
        const op = this.#op[i]!
        if (op >= 0) {
          const expect = this.#expect[i]!
          try {
            const moved = job.result(op)
            if (moved < expect) this.#failed(result, head, `moved ${moved} of ${expect} bytes (the image is shorter?)`)
          } catch (e) {
            this.#failed(result, head, (e as Error).message)
          }
        }
        used.push(head, this.#answer(guard, statusAddr, result.status, result.dataWritten))
      }
      guard.addUsedBatch(used)
      // A stopped queue (its ring stopped, or its frontend gone) gets its requests answered,
      // so the ring's used index counts them, but no pop after them.
      if (this.#stopped) this.#interrupt(guard)
      else this.#serve(guard, n, true)
    } catch (e) {
      // Nothing may escape a threadpool callback (it would end the process): the queue is
      // unusable (its memory went away, the ring is broken).
      this.needsReset = e instanceof Error ? e : new Error(String(e))
      this.stats.lastError = `queue stopped: ${this.needsReset.message}`
    } finally {
      guard?.release()
    }
    if (!this.#running) this.#onIdle()
  }
}

/** Errors that say this queue's I/O cannot run on the threadpool at all (nothing wrong with the request). */
function cannotRunOffLoop(e: unknown): boolean {
  return (
    (e instanceof VirtioQueueError && e.code === 'DetachableMemory') ||
    (e instanceof SystemError && e.code === 'ENOSYS')
  )
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
