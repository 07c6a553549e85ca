// The virtio-blk device model (model.ts, device.ts) as a vhost-user device: what
// `npm run vhost-user-blk` hands the backend. Each vring a frontend starts becomes a
// BlkDevice over the vring's Queue, served on every kick through the same guard API as
// in process; its interrupts go to vring.notify() when needsNotification() says so.
import { BlkDevice, type BlkIoMode } from './device'
import type { BlkModel } from './model'
import type { BlkDeviceStats } from './requests'
import type { VhostUserDevice, Vring } from './vhost-user-api'
import { emptyStats } from './requests'

/** Bytes of config space offered over vhost-user: Linux 6.x's struct virtio_blk_config (through the zoned fields). */
export const VHOST_USER_CONFIG_SIZE = 96

export interface BlkVhostUserOptions {
  model: BlkModel
  /** Largest ring the frontend may set up (SET_VRING_NUM). Default 1024. */
  maxQueueSize?: number
  /** Where lines for the operator go (default: nowhere). */
  log?: (line: string) => void
  /** Where each queue's file I/O runs (BlkDevice's `io`; default `auto`). */
  io?: BlkIoMode
}

export class BlkVhostUserDevice implements VhostUserDevice {
  readonly model: BlkModel
  readonly features: bigint
  readonly numQueues: number
  readonly maxQueueSize: number
  /** The started queues by vring index. */
  readonly queues = new Map<number, BlkDevice>()
  /** Stats of queues already stopped (a stopped queue's BlkDevice is dropped). */
  readonly #retired: BlkDeviceStats = emptyStats()
  readonly #log: (line: string) => void
  /** Kicks being served, per vring; queueStopped waits for its vring's to reach 0. */
  readonly #busy = new Map<number, number>()
  readonly #idle: Array<() => void> = []
  readonly #io: BlkIoMode
  /** Queues forgotten (stopped, reset, left) while their FileIoBatch still ran. */
  readonly #draining = new Set<BlkDevice>()
  /** Queues whose breakage was logged. */
  readonly #broken = new WeakSet<BlkDevice>()

  constructor(o: BlkVhostUserOptions) {
    this.model = o.model
    this.features = o.model.features
    this.numQueues = o.model.numQueues
    this.maxQueueSize = o.maxQueueSize ?? 1024
    this.#log = o.log ?? (() => {})
    this.#io = o.io ?? 'auto'
  }

  /**
   * The config space, zero-padded to VHOST_USER_CONFIG_SIZE: a frontend reads as many bytes
   * as its own struct virtio_blk_config has for the features it knows (QEMU 7.2: 57 with
   * WRITE_ZEROES; later ones add secure-erase and zoned fields), and the backend refuses a
   * read past the end. Zeros there mean "not offered".
   */
  config(): Uint8Array {
    const out = Buffer.alloc(VHOST_USER_CONFIG_SIZE)
    this.model.configSpace().copy(out)
    return out
  }

  queueStarted(vring: Vring): void {
    this.#forget(this.queues.get(vring.index))
    this.queues.set(vring.index, this.#device(vring))
    // Chains the driver published before the ring was started have had their kick already.
    this.kick(vring)
  }

  #device(vring: Vring): BlkDevice {
    const device: BlkDevice = new BlkDevice(vring.queue, {
      model: this.model,
      signalUsedQueue: () => vring.notify(),
      io: this.#io,
      onIdle: () => this.#batchDone(vring.index, device),
      currentQueue: () => vring.queue,
    })
    return device
  }

  /**
   * Queue `index`'s device `d` answered its FileIoBatch and runs none: logs the queue if the
   * batch broke it, and wakes the waiters once nothing is in flight.
   */
  #batchDone(index: number, d: BlkDevice): void {
    if (d.needsReset !== null && this.queues.get(index) === d) this.#logBroken(index, d)
    this.#draining.delete(d)
    if (this.#idle.length > 0 && this.inFlight === 0) for (const wake of this.#idle.splice(0)) wake()
  }

  kick(vring: Vring): void {
    let device = this.queues.get(vring.index)
    if (device === undefined) {
      // A kick for a ring we were not told about: serve it all the same.
      device = this.#device(vring)
      this.queues.set(vring.index, device)
    }
    // The backend moves a running ring to a new Queue when the memory table changes: the
    // vring's queue is the one to serve, every time.
    device.queue = vring.queue
    if (device.needsReset) return
    this.#busy.set(vring.index, (this.#busy.get(vring.index) ?? 0) + 1)
    try {
      device.processQueue()
      if (device.needsReset !== null) this.#logBroken(vring.index, device) // set by processQueue()
    } finally {
      this.#busy.set(vring.index, this.#busy.get(vring.index)! - 1)
      // Only when someone waits (a stop, a drain): nothing is allocated on a plain kick.
      if (this.#idle.length > 0 && this.inFlight === 0) for (const wake of this.#idle.splice(0)) wake()
    }
  }

  /**
   * Resolves once no request of this queue is being served, then forgets the queue. A
   * running FileIoBatch completes its requests first (the ring's used index then counts
   * them), and the queue pops nothing more.
   */
  async queueStopped(vring: Vring): Promise<void> {
    const device = this.queues.get(vring.index)
    device?.stop()
    while ((this.#busy.get(vring.index) ?? 0) > 0 || device?.busy === true)
      await new Promise<void>((r) => this.#idle.push(r))
    if (device !== undefined && this.queues.get(vring.index) === device) {
      addStats(this.#retired, device.stats)
      this.queues.delete(vring.index)
    }
  }

  connected(): void {
    this.#retireAll() // a new frontend starts its rings afresh
  }

  /** The frontend left (its rings are gone); the CLI logs the backend's 'disconnect' event. */
  disconnected(_error?: Error): void {
    this.#retireAll()
  }

  reset(): void {
    this.#retireAll()
  }

  /** Kicks being served right now, plus queues whose FileIoBatch runs on the threadpool. */
  get inFlight(): number {
    let n = 0
    for (const v of this.#busy.values()) n += v
    for (const d of this.queues.values()) if (d.busy) n++
    for (const d of this.#draining) if (d.busy) n++
    return n
  }

  /** Waits for every request in flight, then makes completed writes durable (fdatasync). */
  async drain(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((r) => this.#idle.push(r))
    this.model.backend.flush()
  }

  /** The stats of every queue so far, summed. */
  stats(): BlkDeviceStats {
    const total = emptyStats()
    addStats(total, this.#retired)
    for (const d of this.queues.values()) addStats(total, d.stats)
    return total
  }

  #logBroken(index: number, d: BlkDevice): void {
    if (this.#broken.has(d)) return
    this.#broken.add(d)
    this.#log(`queue ${index} stopped (the driver broke it): ${d.needsReset!.message}`)
  }

  #retireAll(): void {
    for (const d of this.queues.values()) this.#forget(d)
    this.queues.clear()
  }

  /** Stops a queue's device and keeps its stats; one still running is waited for by drain(). */
  #forget(d: BlkDevice | undefined): void {
    if (d === undefined) return
    d.stop()
    addStats(this.#retired, d.stats)
    if (d.busy) this.#draining.add(d)
  }
}

function addStats(into: BlkDeviceStats, from: BlkDeviceStats): void {
  for (const k of Object.keys(into) as (keyof BlkDeviceStats)[]) {
    if (k === 'lastError') into.lastError = from.lastError ?? into.lastError
    else into[k] += from[k]
  }
}
