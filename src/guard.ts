// QueueGuard: the crate's QueueGuard API (0.4 `lock_with_memory`), camelCased.
// Every call is one native call on the queue; chains are popped in batches
// and handed out one by one, with unconsumed ones returned to the ring before
// anything that could observe them.
import { ChainBatch, descriptorBase } from './batch'
import { UsedBatch, usedEntryError } from './used-batch'
import { type DescriptorChain, newDescriptorChain } from './chain'
import { rangeError, typeError, VirtioQueueError } from './errors'
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
 * about 2 points of native speed better on the benchmark's iterator path (fewer calls);
 * chains not handed out are returned to the ring before anything observes it.
 */
const PREFETCH_CHAINS = 128
const PREFETCH_BASE = descriptorBase(PREFETCH_CHAINS)
/** Descriptors one read-ahead pops into the scratch (a longer first chain goes through longScratch). */
const PREFETCH_DESCRIPTORS = PREFETCH_CHAINS * 8
const PREFETCH_WORDS = PREFETCH_BASE + BATCH_DESC_WORDS * PREFETCH_DESCRIPTORS

// Each read-ahead pops into this per-thread scratch, then copies what it popped (chain
// records, then descriptors) into an array of exactly that size, which the chains handed
// out keep: a retained chain pins the descriptors of its own read-ahead (at most
// PREFETCH_DESCRIPTORS, or the chain's own when it alone is longer), never a shared arena.
// No user code runs between the pop and the copy, so one scratch serves every guard.
let scratch: Uint32Array | null = null
// The same for a chain longer than the scratch holds: room for any chain of the largest queue
// that needed it so far (at most (32768 + 65535) descriptors, 1.5 MiB), kept for the next.
let longScratch: Uint32Array | null = null

/**
 * @internal The state a Queue shares with its guards. It outlives any one guard, so the queue
 * can return a guard's read-ahead chains to the ring when it takes the lock back (an
 * unreachable guard, or forceUnlock()).
 */
export interface QueueCore {
  readonly handle: QueueHandle
  readonly memory: GuestMemory
  /**
   * The queue's `ready` flag, mirrored in JavaScript by every call that changes it
   * (setReady, reset, Queue.fromState), so addUsed can refuse a queue that is not ready
   * without a native call.
   */
  ready: boolean
  /** The lock: a weak reference to the guard holding it (the guard keeps the same object). */
  lock: WeakRef<QueueGuard> | null
  /** Read-ahead chains of the lock holder: popped natively; `taken` of them handed out. */
  count: number
  taken: number
}

/** @internal Returns the read-ahead chains not handed out to the avail ring. */
export function settleCore(core: QueueCore): void {
  const pending = core.count - core.taken
  core.count = core.taken = 0
  if (pending > 0) native.setNextAvail(core.handle, (native.nextAvail(core.handle) - pending) & 0xffff)
}

/**
 * @internal Makes the queue's lock free for a new holder: throws `QueueLocked` while a
 * reachable guard holds it; takes it over from a holder collected without release(),
 * returning that holder's read-ahead chains to the ring.
 */
export function freeLock(core: QueueCore): void {
  if (core.lock === null) return
  if (core.lock.deref() !== undefined) {
    throw new VirtioQueueError(
      'the queue is already locked by a QueueGuard that was not released (release it, or call queue.forceUnlock())',
      'QueueLocked',
    )
  }
  settleCore(core)
  core.lock = null
}

/**
 * The crate's QueueGuard API (as of virtio-queue 0.4's `lock_with_memory`), camelCased:
 * every method works on the queue and its guest memory; get one from
 * {@link Queue.lockWithMemory}. After {@link release} every method throws `GuardReleased`
 * (until {@link relock}).
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
  readonly #core: QueueCore
  readonly #h: QueueHandle
  readonly #mem: GuestMemory
  // This guard holds the lock while core.lock is this object.
  readonly #ref: WeakRef<QueueGuard>
  // The read-ahead chains (core.count, core.taken): their records (CHAIN_WORDS each) from
  // word 0, their descriptors from word #descBase; the avail idx the read-ahead saw.
  #ahead: Uint32Array = EMPTY
  #descBase = 0
  #availSeen = 0

  /** Guards come from {@link Queue.lockWithMemory}, which settled the previous holder's read-ahead. */
  // Made through `newQueueGuard`.
  private constructor(core: QueueCore) {
    this.#core = core
    this.#h = core.handle
    this.#mem = core.memory
    this.#ref = new WeakRef(this)
    core.count = core.taken = 0
    core.lock = this.#ref
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
    const h = this.#live()
    this.#drop()
    native.reset(h)
    this.#core.ready = false
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
    const h = this.#live()
    if (typeof size === 'number' && !(Number.isInteger(size) && size >= 0)) {
      const max = native.maxSize(h)
      throw rangeError('size', `it must be a power of two from 1 to ${max} (maxSize); received ${size}`)
    }
    native.setSize(h, size)
  }

  /** Whether the driver marked the queue ready. */
  ready(): boolean {
    return native.ready(this.#live())
  }

  /** Marks the queue ready (or not), as the driver does when it has set it up. */
  setReady(ready: boolean): void {
    const h = this.#live()
    this.#settle()
    native.setReady(h, ready)
    // After the native call, which refused anything but a boolean.
    this.#core.ready = ready
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
    // The argument first (a string only: no conversion that could run user code), then the lock.
    const o = toOrder(order)
    return native.availIdx(this.#live(), o)
  }

  /**
   * The used ring's `idx`, read from guest memory.
   * @throws VirtioQueueError `GuestMemory`.
   */
  usedIdx(order: MemoryOrdering = 'acquire'): number {
    const o = toOrder(order)
    return native.usedIdx(this.#live(), o)
  }

  /**
   * Writes a used element (head index, bytes written) and publishes the new used idx
   * (release ordering).
   * @throws VirtioQueueError `QueueNotReady` unless the queue is ready (the crate would write
   * the element wherever the used ring points: address 0 on a queue never set up),
   * `InvalidDescriptorIndex` if `headIndex` ≥ size, `GuestMemory` if the used ring is not in memory.
   */
  addUsed(headIndex: number, len: number): void {
    const h = this.#live()
    if (!this.#core.ready) throw usedEntryError(headIndex, len) ?? notReady()
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
    const c = this.#core
    return (native.nextAvail(this.#live()) - (c.count - c.taken)) & 0xffff
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
    const c = this.#core
    if (c.taken === c.count && !this.#fill()) return null
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
    const c = this.#core
    if (c.taken < c.count) {
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
      limit = (this.#availSeen - this.nextAvail()) & 0xffff
    }
    return new newAvailIter(this, limit)
  }

  /**
   * Batch path: pops up to `batch.maxChains` chains into `batch` in one native call and
   * returns how many; no per-chain object is created. Grows the batch if one chain has more
   * descriptors than it holds. See {@link ChainBatch} for an example.
   */
  popChains(batch: ChainBatch): number {
    // Every input is read first, through private fields (no getter, Proxy trap or
    // Symbol.hasInstance runs), then the lock is checked, then the queue changes.
    let words = ChainBatch.wordsOf(batch)
    if (words === null) throw typeError('batch', 'a ChainBatch', batch)
    const max = batch.maxChains
    const h = this.#live()
    this.#settle()
    ChainBatch.popFrom(batch, this.#mem)
    let n = native.popChains(h, words, max)
    if (n === 0 && words[2]! > 0) {
      words = batch.grow(words[2]!)
      n = native.popChains(h, words, max)
    }
    return n
  }

  /**
   * Batch path: adds every entry of `used` in one native call, then clears it. On an error,
   * the entries before the failing one were added.
   * @throws VirtioQueueError `QueueNotReady` (nothing added) unless the queue is ready, as addUsed.
   */
  addUsedBatch(used: UsedBatch): void {
    if (!UsedBatch.is(used)) throw typeError('used', 'a UsedBatch', used)
    const h = this.#live()
    const [pairs, n] = UsedBatch.take(used)!
    if (n > 0) {
      if (!this.#core.ready) throw notReady()
      native.addUsedBatch(h, pairs, n)
    }
  }

  /** Releases the guard: the queue can be locked again; this guard throws until {@link relock}. Idempotent. */
  release(): void {
    if (this.#core.lock !== this.#ref) return
    this.#settle()
    this.#core.lock = null
  }

  /**
   * Locks this guard's queue again after {@link release} (or `queue.forceUnlock()`), as
   * {@link Queue.lockWithMemory} would, but with this guard instead of a new one: a device that
   * locks on every kick keeps one guard per queue and allocates nothing per lock. Returns this
   * guard; a no-op while it holds the lock. Every reference to this guard works again, so hand
   * it to nobody who should stay locked out.
   * @throws VirtioQueueError `QueueLocked` while another guard of the queue is reachable and not released.
   */
  relock(): this {
    const core = this.#core
    if (core.lock === this.#ref) return this
    freeLock(core)
    core.count = core.taken = 0
    core.lock = this.#ref
    return this
  }

  /** {@link release}, for `using`. */
  [Symbol.dispose](): void {
    this.release()
  }

  /** Whether the guard no longer holds its queue: release() was called, or queue.forceUnlock(). */
  get released(): boolean {
    return this.#core.lock !== this.#ref
  }

  #live(): QueueHandle {
    if (this.#core.lock !== this.#ref)
      throw new VirtioQueueError(
        'this QueueGuard was released (or its queue force-unlocked); call queue.lockWithMemory() again',
        'GuardReleased',
      )
    return this.#h
  }

  #fill(): boolean {
    const h = this.#h
    if (scratch === null) scratch = new Uint32Array(PREFETCH_WORDS)
    let win = scratch
    let n = native.popChains(h, win, PREFETCH_CHAINS)
    if (n === 0 && win[2]! > 0) {
      // The next chain has more descriptors than the scratch holds: pop it with room for any
      // chain (the native walk stopped where the scratch ended, so the chain is walked in
      // full once, here).
      const words = PREFETCH_BASE + BATCH_DESC_WORDS * win[2]!
      if (longScratch === null || longScratch.length < words) longScratch = new Uint32Array(words)
      win = longScratch
      n = native.popChains(h, win, PREFETCH_CHAINS)
    }
    const records = BATCH_CHAIN_WORDS * n
    const descWords = BATCH_DESC_WORDS * win[1]!
    const ahead = n === 0 ? EMPTY : new Uint32Array(records + descWords)
    if (n > 0) {
      ahead.set(win.subarray(BATCH_HEADER_WORDS, BATCH_HEADER_WORDS + records))
      ahead.set(win.subarray(PREFETCH_BASE, PREFETCH_BASE + descWords), records)
    }
    this.#ahead = ahead
    this.#descBase = records
    this.#availSeen = win[3]!
    this.#core.count = n
    this.#core.taken = 0
    return n > 0
  }

  #take(): DescriptorChain {
    const w = this.#ahead
    const c = BATCH_CHAIN_WORDS * this.#core.taken++
    return new newDescriptorChain(
      this.#mem,
      w,
      w[c]!,
      this.#descBase + BATCH_DESC_WORDS * w[c + 1]!,
      w[c + 2]!,
      w[c + 3]!,
      w[c + 4]!,
      w[c + 5]!,
    )
  }

  // Both check the lock first: the read-ahead counts in the core belong to the lock holder.
  #settle(): void {
    this.#live()
    settleCore(this.#core)
  }

  #drop(): void {
    this.#live()
    this.#core.count = this.#core.taken = 0
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
export const newQueueGuard = QueueGuard as unknown as new (core: QueueCore) => QueueGuard
/** @internal See {@link newQueueGuard}. */
const newAvailIter = AvailIter as unknown as new (guard: QueueGuard, limit: number) => AvailIter

const EMPTY = new Uint32Array(0)

function notReady(): VirtioQueueError {
  return new VirtioQueueError(
    'the queue is not ready (setReady(true) first): a used entry would be written at whatever address the used ring has',
    'QueueNotReady',
  )
}

function toOrder(order: MemoryOrdering): Order {
  // Only a string is looked up: another value would be converted to a key by its own code.
  const o = typeof order === 'string' ? ORDERS[order] : undefined
  if (o === undefined) throw typeError('order', "'relaxed', 'acquire' or 'seqcst'", order)
  return o
}
