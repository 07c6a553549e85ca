// Queue: a virtio split queue (the crate's `Queue`) over guest memory.
import { typeError, VirtioQueueError } from './errors'
import { type GuardOwner, newQueueGuard, type QueueGuard } from './guard'
import { GuestMemory } from './memory'
import { native, type QueueAnchor, type QueueHandle, STATE_WORDS } from './native'
import { decodeState, encodeState, type QueueState } from './state'

/**
 * A virtio split queue (the crate's `Queue`) over guest memory. Device work goes through
 * the {@link QueueGuard} that {@link lockWithMemory} returns.
 *
 * @example The crate's documented example, line for line
 * ```ts
 * import { GuestMemory, Queue } from 'virtio-queue'
 *
 * const m = GuestMemory.fromRanges([[0, 0x10000]])
 * const queue = new Queue(m, 1024)
 * using q = queue.lockWithMemory()
 * // The driver sets the queue up (through writes on the bus: PCI, MMIO).
 * q.setSize(8)
 * q.setDescTableAddress(0x1000)
 * q.setAvailRingAddress(0x2000)
 * q.setUsedRingAddress(0x3000)
 * q.setEventIdx(true)
 * q.setReady(true)
 * if (!q.isValid()) throw new Error('invalid queue')
 * for (;;) {
 *   q.disableNotification()
 *   for (const chain of q.iter()) {
 *     // Process the chain, then add an entry in the used ring.
 *     q.addUsed(chain.headIndex, 0x100)
 *     if (q.needsNotification()) {
 *       // Notify the driver (an interrupt, an eventfd, ...).
 *     }
 *   }
 *   if (!q.enableNotification()) break
 * }
 * ```
 */
export class Queue {
  /** The guest memory the queue works on (its rings and buffers live there). */
  readonly memory: GuestMemory
  readonly #handle: QueueHandle
  // Keeps the native queue alive: collected with this Queue, it frees the handle's slot.
  // Guards reach it through their owner (whose unlock closure holds this Queue).
  readonly #anchor: QueueAnchor
  #guard: QueueGuard | null = null
  static #restored: [QueueHandle, QueueAnchor] | null = null

  /**
   * A queue offering `maxSize` entries; its size starts at `maxSize`.
   * @throws VirtioQueueError `InvalidMaxSize` unless `maxSize` is a power of two ≤ 32768.
   */
  constructor(memory: GuestMemory, maxSize: number) {
    if (!(memory instanceof GuestMemory)) throw typeError('memory', 'a GuestMemory', memory)
    this.memory = memory
    const restored = Queue.#restored
    Queue.#restored = null
    ;[this.#handle, this.#anchor] = restored ?? native.queueNew(memory.handle, maxSize)
  }

  /**
   * Restores a queue from a {@link Queue.state | state()} snapshot (the crate's `Queue::try_from(QueueState)`).
   * @throws VirtioQueueError `InvalidMaxSize`, `InvalidSize`, `Invalid*Align` or `InvalidState`.
   */
  static fromState(memory: GuestMemory, state: QueueState): Queue {
    if (!(memory instanceof GuestMemory)) throw typeError('memory', 'a GuestMemory', memory)
    Queue.#restored = native.queueFromState(memory.handle, encodeState(state))
    return new Queue(memory, 0)
  }

  /**
   * Locks the queue with its memory for device work: the guard has the crate's QueueGuard
   * API. One guard at a time; release it (`guard.release()` or `using`) before locking again.
   * @throws VirtioQueueError `QueueLocked` while another guard is live.
   */
  lockWithMemory(): QueueGuard {
    if (this.#guard) {
      throw new VirtioQueueError('the queue is already locked by a QueueGuard that was not released', 'QueueLocked')
    }
    const owner: GuardOwner = {
      handle: this.#handle,
      memory: this.memory,
      unlock: (g) => {
        if (this.#guard === g) this.#guard = null
      },
    }
    this.#guard = new newQueueGuard(owner)
    return this.#guard
  }

  /** A JSON-serialisable snapshot of the queue (the crate's `Queue::state()`). */
  state(): QueueState {
    this.#guard?.settle()
    const w = new Uint32Array(STATE_WORDS)
    native.queueState(this.#handle, w)
    return decodeState(w)
  }

  /** @internal */
  get handle(): QueueHandle {
    return this.#handle
  }
}
