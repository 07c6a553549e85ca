// Queue: a virtio split queue (the crate's `Queue`) over guest memory.
import { rangeError, typeError } from './errors'
import { freeLock, newQueueGuard, type QueueCore, type QueueGuard, settleCore } from './guard'
import { GuestMemory } from './memory'
import { type MemoryHandle, native, type QueueAnchor, type QueueHandle, STATE_WORDS } from './native'
import { decodeState, encodeState, type QueueState } from './state'

/**
 * A restored native queue on its way from Queue.fromState to the constructor. The class is
 * not exported and instances are recognised by a private field, so no caller can forge one,
 * and it travels as an argument: nothing outlives the call that made it.
 */
class Restored {
  readonly #brand = true
  constructor(
    readonly handle: QueueHandle,
    readonly anchor: QueueAnchor,
  ) {}

  static is(value: unknown): value is Restored {
    return typeof value === 'object' && value !== null && #brand in value
  }
}

/**
 * A virtio split queue (the crate's `Queue`) over guest memory. Device work goes through
 * the {@link QueueGuard} that {@link lockWithMemory} returns.
 *
 * @example The crate's documented QueueGuard example (written for its 0.4
 * `lock_with_memory()`; the README names the 0.14 method each guard method calls)
 * ```ts
 * import { GuestMemory, Queue } from 'virtio-queue'
 *
 * const m = GuestMemory.fromRanges([[0, 0x10000]])
 * const queue = new Queue(m, 1024)
 * const q = queue.lockWithMemory()
 * try {
 *   // The driver sets the queue up (through writes on the bus: PCI, MMIO).
 *   q.setSize(8)
 *   q.setDescTableAddress(0x1000)
 *   q.setAvailRingAddress(0x2000)
 *   q.setUsedRingAddress(0x3000)
 *   q.setEventIdx(true)
 *   q.setReady(true)
 *   if (!q.isValid()) throw new Error('invalid queue')
 *   for (;;) {
 *     q.disableNotification()
 *     for (const chain of q.iter()) {
 *       // Process the chain, then add an entry in the used ring.
 *       q.addUsed(chain.headIndex, 0x100)
 *       if (q.needsNotification()) {
 *         // Notify the driver (an interrupt, an eventfd, ...).
 *       }
 *     }
 *     if (!q.enableNotification()) break
 *   }
 * } finally {
 *   q.release()
 * }
 * ```
 */
export class Queue {
  /** The guest memory the queue works on (its rings and buffers live there). */
  readonly memory: GuestMemory
  readonly #handle: QueueHandle
  // Keeps the native queue alive: collected with this Queue, it frees the handle's slot.
  // Guards reach the queue through the core, which holds the handle; the Queue holds the anchor.
  readonly #anchor: QueueAnchor
  readonly #core: QueueCore

  /**
   * A queue offering `maxSize` entries; its size starts at `maxSize`.
   * @throws VirtioQueueError `InvalidMaxSize` unless `maxSize` is a power of two ≤ 32768
   * (RangeError for a negative or fractional number).
   */
  constructor(memory: GuestMemory, maxSize: number) {
    const mh = GuestMemory.handleOf(memory)
    if (mh === null) throw typeError('memory', 'a GuestMemory', memory)
    const restored = Restored.is(maxSize) ? maxSize : null
    if (restored === null) {
      if (typeof maxSize === 'number' && !(Number.isInteger(maxSize) && maxSize >= 0))
        throw rangeError('maxSize', `it must be a power of two from 1 to 32768; received ${maxSize}`)
    }
    const [handle, anchor] = restored !== null ? [restored.handle, restored.anchor] : native.queueNew(mh, maxSize)
    this.memory = memory
    this.#handle = handle
    this.#anchor = anchor
    this.#core = { handle, memory, ready: native.ready(handle), lock: null, count: 0, taken: 0 }
  }

  /**
   * Restores a queue from a {@link Queue.state | state()} snapshot (the crate's `Queue::try_from(QueueState)`).
   * @throws VirtioQueueError `InvalidMaxSize`, `InvalidSize`, `Invalid*Align` or `InvalidState`.
   */
  static fromState(memory: GuestMemory, state: QueueState): Queue {
    const mh: MemoryHandle | null = GuestMemory.handleOf(memory)
    if (mh === null) throw typeError('memory', 'a GuestMemory', memory)
    const [handle, anchor] = native.queueFromState(mh, encodeState(state))
    return new Queue(memory, new Restored(handle, anchor) as unknown as number)
  }

  /**
   * Locks the queue for device work: the returned guard has the crate's QueueGuard API.
   * One guard at a time: release it (`try { … } finally { guard.release() }`, or `using`)
   * to lock again. A guard that was never released but is no longer reachable (collected)
   * is taken over; a reachable one makes this throw `QueueLocked` (see {@link forceUnlock}).
   * A device that locks on every event can keep its released guard and
   * {@link QueueGuard.relock | relock} it instead, which makes no new object.
   * @throws VirtioQueueError `QueueLocked` while another guard is reachable and not released.
   */
  lockWithMemory(): QueueGuard {
    freeLock(this.#core)
    return new newQueueGuard(this.#core)
  }

  /**
   * Takes the lock away from the guard holding it, if any: its read-ahead chains go back to
   * the ring and every later call on it throws `GuardReleased`. The recovery path for a
   * guard that was never released (an exception between lock and release). Returns whether
   * a guard held the lock.
   */
  forceUnlock(): boolean {
    const core = this.#core
    if (core.lock === null) return false
    settleCore(core)
    core.lock = null
    return true
  }

  /** A JSON-serialisable snapshot of the queue (the crate's `Queue::state()`). */
  state(): QueueState {
    settleCore(this.#core)
    const w = new Uint32Array(STATE_WORDS)
    native.queueState(this.#handle, w)
    return decodeState(w)
  }

  /** @internal */
  get handle(): QueueHandle {
    return this.#handle
  }
}
