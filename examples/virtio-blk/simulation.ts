// Runs the guest driver and the device in one thread, taking turns the way two
// vCPU / I/O threads would interleave: the driver submits bursts and kicks, the
// device runs when kicked, the guest reaps when interrupted. Which side runs next
// is drawn from the seeded PRNG, so every interleaving is reproducible, and the
// notification suppression of both sides gets exercised (a kick published while
// the device has not run yet is suppressed with event idx; so is an interrupt
// while the guest has not reaped yet).
import type { BlkDevice } from './device'
import type { Rng } from './random'
import type { BlkGuest } from './workload'

/** A coalescing doorbell, like the eventfd behind an ioeventfd or irqfd. */
export class EventFd {
  #pending = false
  signal(): void {
    this.#pending = true
  }
  get pending(): boolean {
    return this.#pending
  }
  /** Reads (clears) the doorbell; returns whether it was rung. */
  consume(): boolean {
    const was = this.#pending
    this.#pending = false
    return was
  }
}

export interface SimulationOptions {
  rng: Rng
  /** The device's queue notification (the driver's kicks ring it). */
  kick: EventFd
  /** The driver's interrupt (the device's signalUsedQueue rings it). */
  irq: EventFd
  /** Most requests the driver adds before kicking. Default 8. */
  maxBurst?: number
}

/** Steps in a row in which nothing could move before the run is declared stuck. */
const STALL_LIMIT = 10_000

export class Simulation {
  readonly device: BlkDevice
  readonly guest: BlkGuest
  /** Scheduling steps taken. */
  steps = 0
  /** Why the run stopped early (a lost notification, a broken queue), or null. */
  failure: string | null = null
  readonly #o: SimulationOptions
  readonly #maxBurst: number
  #idle = 0

  constructor(device: BlkDevice, guest: BlkGuest, options: SimulationOptions) {
    this.device = device
    this.guest = guest
    this.#o = options
    this.#maxBurst = options.maxBurst ?? 8
  }

  /** Whether the run is over: every request completed, or a failure. */
  get finished(): boolean {
    return this.guest.done || this.failure !== null
  }

  /** Runs until finished or `sliceMs` milliseconds passed (so a caller can yield to the event loop). */
  runFor(sliceMs: number): void {
    const until = performance.now() + sliceMs
    while (!this.finished) {
      for (let i = 0; i < 64 && !this.finished; i++) this.step()
      if (performance.now() >= until) return
    }
  }

  /** One scheduling decision: submit a burst, run the device, or take an interrupt. */
  step(): void {
    const { rng, kick, irq } = this.#o
    const guest = this.guest
    const canSubmit = guest.canSubmit()
    const n = (canSubmit ? 1 : 0) + (kick.pending ? 1 : 0) + (irq.pending ? 1 : 0)
    if (n === 0) {
      this.failure = 'stuck: requests in flight, but no kick or interrupt pending (a lost notification)'
      return
    }
    let choice = n === 1 ? 0 : rng.int(0, n - 1)
    let progressed: boolean
    if (canSubmit && choice-- === 0) {
      const before = guest.stats.submitted
      if (guest.submit(rng.int(1, this.#maxBurst))) kick.signal()
      progressed = guest.stats.submitted > before
    } else if (kick.pending && choice-- === 0) {
      kick.consume()
      progressed = this.device.processQueue() > 0
    } else {
      irq.consume()
      progressed = guest.handleInterrupt() > 0
    }
    this.steps++
    this.#idle = progressed ? 0 : this.#idle + 1
    if (this.device.needsReset) this.failure = `the device stopped the queue: ${this.device.needsReset.message}`
    else if (this.#idle > STALL_LIMIT) this.failure = 'stuck: no progress (guest memory or descriptors exhausted?)'
  }
}
