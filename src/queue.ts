// Queue: a virtio split queue (the crate's `Queue`) over guest memory.
import { typeError, VirtioQueueError } from './errors'
import { type GuardOwner, QueueGuard } from './guard'
import { GuestMemory } from './memory'
import { native, type QueueAnchor, type QueueHandle, STATE_WORDS } from './native'
import { decodeState, encodeState, type QueueState } from './state'

export class Queue {
  /** The guest memory the queue's rings and buffers live in. */
  readonly memory: GuestMemory
  readonly #handle: QueueHandle
  // Keeps the native queue alive: collected with this Queue, it frees the handle's slot.
  // Guards reach it through their owner (whose unlock closure holds this Queue).
  readonly #anchor: QueueAnchor
  #guard: QueueGuard | null = null
  static #restored: [QueueHandle, QueueAnchor] | null = null

  /** A queue offering `maxSize` entries (a power of two ≤ 32768, else `InvalidMaxSize`). */
  constructor(memory: GuestMemory, maxSize: number) {
    if (!(memory instanceof GuestMemory)) throw typeError('memory', 'a GuestMemory', memory)
    this.memory = memory
    const restored = Queue.#restored
    Queue.#restored = null
    ;[this.#handle, this.#anchor] = restored ?? native.queueNew(memory.handle, maxSize)
  }

  /** Restores a queue from {@link state}; throws VirtioQueueError when the state is invalid. */
  static fromState(memory: GuestMemory, state: QueueState): Queue {
    if (!(memory instanceof GuestMemory)) throw typeError('memory', 'a GuestMemory', memory)
    Queue.#restored = native.queueFromState(memory.handle, encodeState(state))
    return new Queue(memory, 0)
  }

  /**
   * Locks the queue for device work: the returned guard has the crate's QueueGuard API.
   * One guard at a time; release it (or use `using`) to lock again.
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
    this.#guard = new QueueGuard(owner)
    return this.#guard
  }

  /** A JSON-serialisable snapshot of the queue (the crate's QueueState). */
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
