// One vring served over vhost-user: its Queue, its memory, and the interrupt to the frontend.
import type { GuestMemory } from '../memory'
import { native, type NotifierHandle } from '../native'
import { Queue } from '../queue'
import type { QueueState } from '../state'

/**
 * A vring a {@link VhostUserBackend} serves: an ordinary {@link Queue} over the guest memory
 * the frontend shared, used through the same guard, batch, chain, reader and writer API as an
 * in-process queue. Made by the backend and handed to the device's callbacks.
 */
export class Vring {
  /** The vring's index (0 to `numQueues - 1`). */
  readonly index: number
  /** The virtio feature bits the driver accepted (`SET_FEATURES`). */
  readonly ackedFeatures: bigint
  #queue: Queue
  readonly #notifier: NotifierHandle

  /** Vrings are made by {@link VhostUserBackend} when the frontend starts a ring. */
  private constructor(index: number, queue: Queue, notifier: NotifierHandle, ackedFeatures: bigint) {
    this.index = index
    this.#queue = queue
    this.#notifier = notifier
    this.ackedFeatures = ackedFeatures
  }

  /** @internal */
  static create(
    index: number,
    memory: GuestMemory,
    state: QueueState,
    notifier: NotifierHandle,
    ackedFeatures: bigint,
  ): Vring {
    return new Vring(index, Queue.fromState(memory, state), notifier, ackedFeatures)
  }

  /**
   * The queue. When the frontend changes the memory table while the ring runs, the backend
   * moves the ring to a new Queue over the new memory (same state): read it from the vring at
   * each kick rather than keeping it.
   */
  get queue(): Queue {
    return this.#queue
  }

  /** The guest memory the ring and its buffers live in (`queue.memory`). */
  get memory(): GuestMemory {
    return this.#queue.memory
  }

  /**
   * Interrupts the driver: writes the vring's call eventfd. Call it when
   * `guard.needsNotification()` says so (event idx is honoured there). Does nothing when the
   * frontend gave no call eventfd (or the ring stopped).
   * @throws VirtioQueueError `VhostUserNotify` if writing the eventfd fails.
   */
  notify(): void {
    native.vhostUserNotify!(this.#notifier)
  }

  /** @internal Moves the ring to `memory` (a new memory table), keeping the queue's state. */
  rebind(memory: GuestMemory): void {
    this.#queue = Queue.fromState(memory, this.#queue.state())
  }
}
