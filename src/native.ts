// The native addon's functions, as the TypeScript layer sees them. Handles
// are opaque, type-tagged externals, except queues: numbers into a per-thread
// table (cheaper per call); batches travel in Uint32Arrays.
import { loadBinding } from './binding'
import { VirtioQueueError } from './errors'

declare const handleBrand: unique symbol
/** An opaque native handle (a type-tagged external). */
export type Handle<Kind extends string> = { readonly [handleBrand]: Kind }
export type MemoryHandle = Handle<'memory'>
export type VhostUserHandle = Handle<'vhost-user backend'>
export type NotifierHandle = Handle<'vring notifier'>
export type FileIoBatchHandle = Handle<'file I/O batch'>
/** Keeps a native queue alive; its slot is freed when this is collected (crate/src/engine/slots.rs). */
export type QueueAnchor = Handle<'queue anchor'>
/** A queue's number in its thread's queue table: what every queue function takes. */
export type QueueHandle = number & { readonly [handleBrand]: 'queue' }

/** Memory orderings for availIdx/usedIdx, as numbers. */
export const enum Order {
  Relaxed = 0,
  Acquire = 1,
  SeqCst = 2,
}

export interface NativeBinding {
  init(errorClass: typeof VirtioQueueError): void
  /** Backings: an ArrayBuffer a page longer than its region (fromRanges; the offset of its page-aligned window comes back) or a Uint8Array. */
  memoryCreate(spec: Array<number | bigint | Uint8Array | ArrayBuffer>): [MemoryHandle, ...Array<number | undefined>]
  queueNew(memory: MemoryHandle, maxSize: number): [QueueHandle, QueueAnchor]
  queueFromState(memory: MemoryHandle, state: Uint32Array): [QueueHandle, QueueAnchor]
  queueState(queue: QueueHandle, out: Uint32Array): void
  isValid(queue: QueueHandle): boolean
  reset(queue: QueueHandle): void
  maxSize(queue: QueueHandle): number
  size(queue: QueueHandle): number
  setSize(queue: QueueHandle, size: number): void
  ready(queue: QueueHandle): boolean
  setReady(queue: QueueHandle, ready: boolean): void
  setDescTableAddress(queue: QueueHandle, low: number | undefined, high: number | undefined): void
  setAvailRingAddress(queue: QueueHandle, low: number | undefined, high: number | undefined): void
  setUsedRingAddress(queue: QueueHandle, low: number | undefined, high: number | undefined): void
  setEventIdx(queue: QueueHandle, enabled: boolean): void
  eventIdxEnabled(queue: QueueHandle): boolean
  availIdx(queue: QueueHandle, order: Order): number
  usedIdx(queue: QueueHandle, order: Order): number
  addUsed(queue: QueueHandle, headIndex: number, len: number): void
  /** addUsed with (queue, headIndex, len) in CALL_AREA[0..2] (crate/src/js/state/call_area.rs). */
  addUsedArea(): void
  /** The call area of this thread, or undefined where external ArrayBuffers are not allowed. */
  callArea(): ArrayBuffer | undefined
  enableNotification(queue: QueueHandle): boolean
  disableNotification(queue: QueueHandle): void
  needsNotification(queue: QueueHandle): boolean
  nextAvail(queue: QueueHandle): number
  nextUsed(queue: QueueHandle): number
  setNextAvail(queue: QueueHandle, nextAvail: number): void
  setNextUsed(queue: QueueHandle, nextUsed: number): void
  goToPreviousPosition(queue: QueueHandle): void
  popChains(queue: QueueHandle, out: Uint32Array, maxChains: number): number
  addUsedBatch(queue: QueueHandle, pairs: Uint32Array, count: number): void
  /**
   * preadv/pwritev between `fd` at `position` and the chain buffers a cursor designates:
   * the span `[at, offset, end, dir, length, toFile]` is in CALL_AREA[0..5], or in `span`
   * where there is no call area (crate/src/js/file_io.rs). Returns the bytes moved, or
   * `-errno` when the system call failed before moving any. Linux only.
   */
  chainFileIo?(memory: MemoryHandle, words: Uint32Array, fd: number, position: number, span?: Uint32Array): number
  /**
   * Linux only: a FileIoBatch's native list (crate/src/js/file_io_batch.rs); `results` (at
   * least `capacity` numbers) receives each operation's bytes moved or `-errno` at the end
   * of each run.
   */
  fileIoBatchNew?(capacity: number, results: Float64Array): FileIoBatchHandle
  /** Queues chainFileIo's transfer (same span rules); returns its index. */
  fileIoBatchQueue?(
    batch: FileIoBatchHandle,
    memory: MemoryHandle,
    words: Uint32Array,
    fd: number,
    position: number,
    span?: Uint32Array,
  ): number
  fileIoBatchDatasync?(batch: FileIoBatchHandle, fd: number): number
  fileIoBatchClear?(batch: FileIoBatchHandle): void
  fileIoBatchCheckMemory?(memory: MemoryHandle): void
  /** Runs the list on the threadpool, then writes the results and calls `complete()`; `name` is the async resource's type. */
  fileIoBatchRun?(batch: FileIoBatchHandle, complete: () => void, resource: object, name: string): void
  /** Linux only: a vhost-user backend listening on `path` (crate/src/js/vhost_user). */
  vhostUserStart?(
    path: string,
    features: bigint,
    numQueues: number,
    maxQueueSize: number,
    maxView: number,
    dispatch: (kind: number, a?: unknown, b?: unknown, c?: unknown) => unknown,
  ): VhostUserHandle
  vhostUserClose?(backend: VhostUserHandle): void
  vhostUserCompleteStop?(backend: VhostUserHandle, index: number, nextAvail: number): boolean
  vhostUserNotify?(notifier: NotifierHandle): boolean
  /**
   * Linux only: fallocate(2) on `fd` (crate/src/js/file.rs); `op` 0 punches a hole, 1 zeroes.
   * The outcome (returned, or the Promise's value when `async`) is decoded by src/file/fallocate.ts.
   */
  fileFallocate?: {
    (fd: number, offset: number | bigint, length: number | bigint, op: number, async: false): number
    (fd: number, offset: number | bigint, length: number | bigint, op: number, async: true): Promise<number>
  }
  /** Testing addon only (bench/): native device rounds + recycling driver; see crate/src/js/testing.rs for `io`. */
  benchNative(memory: MemoryHandle, queue: QueueHandle, io: Uint32Array): number
  constants(): [
    pageSize: number,
    addressLimit: number,
    headerWords: number,
    chainWords: number,
    descWords: number,
    stateWords: number,
  ]
  /** Testing addon only (the tests): panics in Rust. */
  forcePanicForTesting(): never
}

// A copy of the addon's exports: Node-API fills that object one property at a time, which
// leaves it in V8's dictionary mode, so every `native.x(...)` would be a hash lookup through
// the generic load IC. The copy, made by an object literal, has fast properties.
export const native: NativeBinding = { ...(loadBinding() as NativeBinding) }
native.init(VirtioQueueError)

const [pageSize, addressLimit, headerWords, chainWords, descWords, stateWords] = native.constants()
/** Alignment (bytes) of the regions {@link GuestMemory.fromRanges} allocates: the host page size. */
export const PAGE_SIZE = pageSize
/** Guest memory must end at or below this address: 2^53, so JS numbers hold every address exactly. */
export const ADDRESS_LIMIT = addressLimit
export const BATCH_HEADER_WORDS = headerWords
export const BATCH_CHAIN_WORDS = chainWords
export const BATCH_DESC_WORDS = descWords
/** A chain's byte total in the batch words when it is not a plain in-memory sum (crate/src/engine/batch.rs). */
export const UNKNOWN_TOTAL = 0xffffffff
export const STATE_WORDS = stateWords

/**
 * Scalar arguments of hot calls, written here instead of passed (reading a Node-API
 * argument costs more than writing a Float64Array slot): see crate/src/js/state/call_area.rs. Only
 * numbers go in; other types take the ordinary call, which throws the TypeError.
 */
const callAreaBuffer = native.callArea()
export const CALL_AREA: Float64Array | null = callAreaBuffer ? new Float64Array(callAreaBuffer) : null
