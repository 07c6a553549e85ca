// QueueGuard: the crate's QueueGuard API (0.4 `lock_with_memory`), camelCased.
// Every call is one native call on the queue; chains are popped in batches
// and handed out one by one, with unconsumed ones returned to the ring before
// anything that could observe them.
import { ChainBatch, descriptorBase, UsedBatch } from './batch'
import { type DescriptorChain, newDescriptorChain } from './chain'
import { typeError, VirtioQueueError } from './errors'
import type { GuestMemory } from './memory'
import {
  BATCH_CHAIN_WORDS,
  BATCH_DESC_WORDS,
  BATCH_HEADER_WORDS,
  CALL_AREA,
  native,
  Order,
  type QueueHandle,
} from './native'

/** Memory ordering for {@link QueueGuard.availIdx} / {@link QueueGuard.usedIdx}. */
export type MemoryOrdering = 'relaxed' | 'acquire' | 'seqcst'

// No prototype: 'toString' or '__proto__' must not be taken for an ordering.
const ORDERS: Record<MemoryOrdering, Order> = Object.assign(Object.create(null) as Record<MemoryOrdering, Order>, {
  relaxed: Order.Relaxed,
  acquire: Order.Acquire,
  seqcst: Order.SeqCst,
})

/**
 * Chains popped per native call by popDescriptorChain()/iter(): 128 rather than 32 measured
 * about 2 points of native speed better on the benchmark's iterator path (fewer calls and
 * arena windows); chains not handed out are returned to the ring before anything observes it.
 */
const PREFETCH_CHAINS = 128
const PREFETCH_BASE = descriptorBase(PREFETCH_CHAINS)
const PREFETCH_WORDS = PREFETCH_BASE + BATCH_DESC_WORDS * PREFETCH_CHAINS * 8
const ARENA_WORDS = 1 << 16

// Popped chains keep a view of the words they were popped into, so windows of
// the arena are handed out once and never rewritten; a full arena is replaced
// (the old one lives on while chains use it). One arena per thread, shared by
// every guard, so locking a queue allocates nothing.
let arena: Uint32Array | null = null
let arenaPos = 0

/** @internal What a guard needs from its Queue. */
export interface GuardOwner {
  readonly handle: QueueHandle
  readonly memory: GuestMemory
  unlock(guard: QueueGuard): void
}

/**
 * The crate's QueueGuard API (as of virtio-queue 0.4's `lock_with_memory`), camelCased:
 * every method works on the queue and its guest memory; get one from
 * {@link Queue.lockWithMemory}. After {@link release} every method throws `GuardReleased`.
 * Errors from the crate are VirtioQueueErrors coded by variant.
 *
 * @example A device loop with notification suppression
 * ```ts
 * using guard = queue.lockWithMemory()
 * for (;;) {
 *   guard.disableNotification()
 *   for (const chain of guard.iter()) {
 *     const request = chain.reader().read(16)
 *     const written = chain.writer().write(handle(request))
 *     guard.addUsed(chain.headIndex, written)
 *   }
 *   if (!guard.enableNotification()) break // else chains arrived meanwhile: go again
 * }
 * if (guard.needsNotification()) signalUsedQueue()
 * ```
 */
export class QueueGuard implements Disposable {
  readonly #owner: GuardOwner
  readonly #h: QueueHandle
  readonly #mem: GuestMemory
  #released = false
  // Prefetched chains: window of the arena, chains in it, chains handed out.
  #win: Uint32Array | null = null
  #count = 0
  #taken = 0

  /** Guards come from {@link Queue.lockWithMemory}. */
  // Made through `newQueueGuard`.
  private constructor(owner: GuardOwner) {
    this.#owner = owner
    this.#h = owner.handle
    this.#mem = owner.memory
  }

  /** The guest memory the queue works on. */
  get memory(): GuestMemory {
    return this.#mem
  }

  /**
   * The crate's `is_valid`: ready, and the descriptor table and both rings in guest memory.
   * Like the crate, it checks the address one past each ring's end, so a ring ending exactly
   * at the end of guest memory is reported invalid.
   */
  isValid(): boolean {
    return native.isValid(this.#live())
  }

  /** Back to the state after construction: not ready, size = maxSize, addresses 0, indices 0, event idx off. */
  reset(): void {
    this.#drop()
    native.reset(this.#live())
  }

  /** The largest size the device offers (the queue's `maxSize`). */
  maxSize(): number {
    return native.maxSize(this.#live())
  }

  /** The size the driver chose (initially maxSize). */
  size(): number {
    return native.size(this.#live())
  }

  /**
   * Sets the size the driver chose (the crate's `try_set_size`).
   * @throws VirtioQueueError `InvalidSize` unless a power of two ≤ maxSize (the crate's `set_size` would ignore it).
   */
  setSize(size: number): void {
    this.#settle()
    native.setSize(this.#live(), size)
  }

  /** Whether the driver marked the queue ready. */
  ready(): boolean {
    return native.ready(this.#live())
  }

  /** Marks the queue ready (or not), as the driver does when it has set it up. */
  setReady(ready: boolean): void {
    this.#settle()
    native.setReady(this.#live(), ready)
  }

  /**
   * Sets the low and/or high 32 bits of the descriptor table address; a missing half keeps its value.
   * @throws VirtioQueueError `InvalidDescTableAlign` unless 16-byte aligned.
   */
  setDescTableAddress(low?: number | null, high?: number | null): void {
    this.#settle()
    native.setDescTableAddress(this.#live(), low ?? undefined, high ?? undefined)
  }

  /**
   * Like {@link setDescTableAddress}, for the available ring.
   * @throws VirtioQueueError `InvalidAvailRingAlign` unless 2-byte aligned.
   */
  setAvailRingAddress(low?: number | null, high?: number | null): void {
    this.#settle()
    native.setAvailRingAddress(this.#live(), low ?? undefined, high ?? undefined)
  }

  /**
   * Like {@link setDescTableAddress}, for the used ring.
   * @throws VirtioQueueError `InvalidUsedRingAlign` unless 4-byte aligned.
   */
  setUsedRingAddress(low?: number | null, high?: number | null): void {
    this.#settle()
    native.setUsedRingAddress(this.#live(), low ?? undefined, high ?? undefined)
  }

  /** Turns VIRTIO_F_RING_EVENT_IDX handling on or off. */
  setEventIdx(enabled: boolean): void {
    this.#settle()
    native.setEventIdx(this.#live(), enabled)
  }

  /** Whether VIRTIO_F_RING_EVENT_IDX handling is on. */
  eventIdxEnabled(): boolean {
    return native.eventIdxEnabled(this.#live())
  }

  /**
   * The avail ring's `idx` as the driver last published it, read from guest memory.
   * @throws VirtioQueueError `GuestMemory`.
   */
  availIdx(order: MemoryOrdering = 'acquire'): number {
    return native.availIdx(this.#live(), toOrder(order))
  }

  /**
   * The used ring's `idx`, read from guest memory.
   * @throws VirtioQueueError `GuestMemory`.
   */
  usedIdx(order: MemoryOrdering = 'acquire'): number {
    return native.usedIdx(this.#live(), toOrder(order))
  }

  /**
   * Writes a used element (head index, bytes written) and publishes the new used idx
   * (release ordering).
   * @throws VirtioQueueError `InvalidDescriptorIndex` if `headIndex` ≥ size, `GuestMemory` if the used ring is not in memory.
   */
  addUsed(headIndex: number, len: number): void {
    const h = this.#live()
    const a = CALL_AREA
    if (a !== null && typeof headIndex === 'number' && typeof len === 'number') {
      // Called once per chain: the arguments go through the call area (validated natively
      // as the ordinary call validates them).
      a[0] = h
      a[1] = headIndex
      a[2] = len
      native.addUsedArea()
    } else {
      native.addUsed(h, headIndex, len)
    }
  }

  /**
   * Re-enables driver notifications (used flags, or avail_event with event idx); returns
   * true when chains were made available meanwhile, so they are not missed (process them
   * before waiting for a notification).
   */
  enableNotification(): boolean {
    this.#settle()
    return native.enableNotification(this.#live())
  }

  /** Suppresses driver notifications while the device works (a no-op with event idx). */
  disableNotification(): void {
    this.#settle()
    native.disableNotification(this.#live())
  }

  /**
   * Whether the driver needs a notification for the used entries added since the last call
   * (honours used_event with event idx).
   */
  needsNotification(): boolean {
    return native.needsNotification(this.#live())
  }

  /** Index of the next avail ring entry to pop. */
  nextAvail(): number {
    return (native.nextAvail(this.#live()) - (this.#count - this.#taken)) & 0xffff
  }

  /** Index of the next used ring entry to fill. */
  nextUsed(): number {
    return native.nextUsed(this.#live())
  }

  /** Sets the index of the next avail ring entry to pop (e.g. when restoring a device). */
  setNextAvail(nextAvail: number): void {
    native.setNextAvail(this.#live(), nextAvail)
    // After the native call: a rejected argument must not discard the prefetched chains.
    this.#drop()
  }

  /** Sets the index of the next used ring entry to fill. */
  setNextUsed(nextUsed: number): void {
    native.setNextUsed(this.#live(), nextUsed)
  }

  /** Steps back one avail entry: the last popped chain is popped again. */
  goToPreviousPosition(): void {
    this.#settle()
    native.goToPreviousPosition(this.#live())
  }

  /**
   * The next available chain, or null when there is none. Unlike the crate's
   * `pop_descriptor_chain`, which turns errors into `None`, this throws them. Chains are
   * read from the ring in batches (up to 128 per native call) and handed out one by one;
   * the avail idx is checked when a batch is read, and chains read ahead but not handed out
   * go back to the ring before anything could observe them (nextAvail(), state(), ...).
   * @throws VirtioQueueError `QueueNotReady`, `InvalidAvailRingIndex`, `GuestMemory`.
   */
  popDescriptorChain(): DescriptorChain | null {
    this.#live()
    if (this.#taken === this.#count && !this.#fill()) return null
    return this.#take()
  }

  /**
   * An iterator over the chains available now (the avail idx is read once, as by the
   * crate's `iter()`), for `for...of`. Adding used entries inside the loop is fine.
   * @throws VirtioQueueError `QueueNotReady`, `InvalidAvailRingIndex`, `GuestMemory`.
   */
  iter(): AvailIter {
    const h = this.#live()
    let limit: number
    if (this.#taken < this.#count) {
      limit = (native.availIdx(h, Order.Acquire) - this.nextAvail()) & 0xffff
      // The crate's iter() check, which the prefetched chains would otherwise skip.
      if (limit > native.size(h)) {
        throw new VirtioQueueError(
          'invalid available ring index (more descriptors to process than queue size)',
          'InvalidAvailRingIndex',
        )
      }
    } else {
      this.#fill()
      limit = this.#win ? (this.#win[3]! - this.nextAvail()) & 0xffff : 0
    }
    return new newAvailIter(this, limit)
  }

  /**
   * Batch path: pops up to `batch.maxChains` chains into `batch` in one native call and
   * returns how many; no per-chain object is created. Grows the batch if one chain has more
   * descriptors than it holds. See {@link ChainBatch} for an example.
   */
  popChains(batch: ChainBatch): number {
    if (!(batch instanceof ChainBatch)) throw typeError('batch', 'a ChainBatch', batch)
    this.#settle()
    const h = this.#live()
    let n = native.popChains(h, batch.words, batch.maxChains)
    if (n === 0 && batch.words[2]! > 0) {
      batch.grow(batch.words[2]!)
      n = native.popChains(h, batch.words, batch.maxChains)
    }
    return n
  }

  /**
   * Batch path: adds every entry of `used` in one native call, then clears it. On an error,
   * the entries before the failing one were added.
   */
  addUsedBatch(used: UsedBatch): void {
    if (!(used instanceof UsedBatch)) throw typeError('used', 'a UsedBatch', used)
    const h = this.#live()
    const n = used.count
    used.count = 0
    if (n > 0) native.addUsedBatch(h, used.pairs, n)
  }

  /** Releases the guard: the queue can be locked again; this guard throws from now on. Idempotent. */
  release(): void {
    if (this.#released) return
    this.#settle()
    this.#released = true
    this.#owner.unlock(this)
  }

  /** {@link release}, for `using`. */
  [Symbol.dispose](): void {
    this.release()
  }

  /** Whether release() was called. */
  get released(): boolean {
    return this.#released
  }

  /** @internal Returns prefetched, unconsumed chains to the avail ring. */
  settle(): void {
    this.#settle()
  }

  #live(): QueueHandle {
    if (this.#released)
      throw new VirtioQueueError('this QueueGuard was released; call queue.lockWithMemory() again', 'GuardReleased')
    return this.#h
  }

  #fill(): boolean {
    const h = this.#h
    if (arena === null || arenaPos + PREFETCH_WORDS > ARENA_WORDS) {
      arena = new Uint32Array(ARENA_WORDS)
      arenaPos = 0
    }
    let win = arena.subarray(arenaPos, arenaPos + PREFETCH_WORDS)
    let n = native.popChains(h, win, PREFETCH_CHAINS)
    if (n === 0 && win[2]! > 0) {
      // The next chain has more descriptors than a window holds.
      win = new Uint32Array(PREFETCH_BASE + BATCH_DESC_WORDS * win[2]!)
      n = native.popChains(h, win, PREFETCH_CHAINS)
    } else {
      arenaPos += PREFETCH_BASE + BATCH_DESC_WORDS * win[1]!
    }
    this.#win = win
    this.#count = n
    this.#taken = 0
    return n > 0
  }

  #take(): DescriptorChain {
    const w = this.#win!
    const c = BATCH_HEADER_WORDS + BATCH_CHAIN_WORDS * this.#taken++
    return new newDescriptorChain(
      this.#mem,
      w,
      w[c]!,
      PREFETCH_BASE + BATCH_DESC_WORDS * w[c + 1]!,
      w[c + 2]!,
      w[c + 3]!,
      w[c + 4]!,
      w[c + 5]!,
    )
  }

  #settle(): void {
    const pending = this.#count - this.#taken
    if (pending > 0) native.setNextAvail(this.#h, (native.nextAvail(this.#h) - pending) & 0xffff)
    this.#count = this.#taken = 0
  }

  #drop(): void {
    this.#count = this.#taken = 0
  }
}

/** The iterator of {@link QueueGuard.iter}: iterable with `for...of`. */
export class AvailIter implements IterableIterator<DescriptorChain> {
  readonly #guard: QueueGuard
  #left: number

  /** Iterators come from {@link QueueGuard.iter}. */
  // Made through `newAvailIter`.
  private constructor(guard: QueueGuard, limit: number) {
    this.#guard = guard
    this.#left = limit
  }

  /** The next chain, or `done` when the chains available at {@link QueueGuard.iter} are used up. */
  next(): IteratorResult<DescriptorChain, undefined> {
    if (this.#left > 0) {
      const chain = this.#guard.popDescriptorChain()
      if (chain) {
        this.#left--
        return { value: chain, done: false }
      }
      this.#left = 0
    }
    return { value: undefined, done: true }
  }

  /** The crate's `AvailIter::go_to_previous_position`: the last chain is yielded again. */
  goToPreviousPosition(): void {
    this.#guard.goToPreviousPosition()
    this.#left++
  }

  /** This iterator. */
  [Symbol.iterator](): this {
    return this
  }
}

/**
 * @internal The constructors of QueueGuard (for Queue) and AvailIter. They are private in
 * the public typings (guards come from Queue.lockWithMemory()), so callers outside each
 * class construct through these aliases.
 */
export const newQueueGuard = QueueGuard as unknown as new (owner: GuardOwner) => QueueGuard
/** @internal See {@link newQueueGuard}. */
const newAvailIter = AvailIter as unknown as new (guard: QueueGuard, limit: number) => AvailIter

function toOrder(order: MemoryOrdering): Order {
  const o = ORDERS[order]
  if (o === undefined) throw typeError('order', "'relaxed', 'acquire' or 'seqcst'", order)
  return o
}
