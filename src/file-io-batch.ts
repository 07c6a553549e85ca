// FileIoBatch: preadv/pwritev between files and chains' buffers, and fdatasync, queued on
// the JavaScript thread and run in order on one libuv threadpool thread (Node-API async
// work), so a slow disk does not block the event loop. Each operation is checked and its
// buffers resolved against guest memory when it is queued (crate/src/js/file_io_batch.rs);
// the run reads nothing of the ChainBatch. Per operation nothing is allocated on the
// JavaScript heap: the queue call passes its span through the call area, and the results
// come back in a Float64Array made once.
import { ChainBatch } from './batch'
import { GuestMemory } from './memory'
import { toCount } from './address'
import { putSpan } from './cursor'
import { needsLinux, outOfRange, rangeError, type SystemCall, systemError, typeError, VirtioQueueError } from './errors'
import { type FileIoBatchHandle, native } from './native'

const READ = 0
const WRITE = 1
const DATASYNC = 2
const SYSCALLS: readonly SystemCall[] = ['preadv', 'pwritev', 'fdatasync']
/** The async resource type of a run (what async_hooks reports). */
const RESOURCE_NAME = 'virtio-queue:FileIoBatch'

/** Per operation, for its error message: kind, fd, position, length. */
const OP_SLOTS = 4

/**
 * A list of file operations on guest memory run off the event loop: `preadv` into chains'
 * writable buffers ({@link readFromFile}), `pwritev` from their readable buffers
 * ({@link writeToFile}) and `fdatasync` ({@link datasync}), queued now and run by
 * {@link run}, in order, on one libuv threadpool thread; `done(batch)` is called on the
 * JavaScript thread when all are over, and {@link result}(k) gives each outcome. This is how
 * QEMU's `aio=threads` serves a disk: a device with many requests in flight completes them
 * in batches, and a slow disk does not stop the event loop (which may also serve a vhost-user
 * socket and other queues). Per operation nothing is allocated on the JavaScript heap.
 *
 * **What a queued operation holds.** Queueing checks everything ChainBatch.readFromFile
 * checks and resolves each buffer against guest memory now: the ChainBatch may be popped
 * into again right after, nothing of it is read later. The run keeps the guest memory its
 * operations point into alive until `done` is called, even if every JavaScript reference to
 * it (and to this batch) is dropped meanwhile. That memory must not be able to go away under
 * the threadpool: memory over ArrayBuffers (GuestMemory.fromRanges, fromBuffers over a
 * Buffer or an ArrayBuffer) could be detached by a transfer and freed elsewhere, so it is
 * refused (`DetachableMemory`); memory over SharedArrayBuffers (fromBuffers) and vhost-user
 * memory (kept mapped, even if the frontend replaces its memory table meanwhile) are
 * accepted.
 *
 * **File descriptors** are the caller's, as for Node's asynchronous fs calls on an fd: one
 * closed while a run is in flight makes its operations fail with `EBADF` or, if the number
 * was reused meanwhile, reach the new file. Keep the fd open until `done` is called.
 *
 * **Teardown.** An environment being torn down (a worker terminated, the process ending)
 * waits for a run in flight, as for Node's own threadpool work; `done` is then not called.
 *
 * Linux only: elsewhere queueing throws a {@link SystemError} `ENOSYS`.
 *
 * @example A virtio-blk device's reads, completed per batch after one threadpool round trip
 * ```ts
 * const io = new FileIoBatch(128)
 * const n = guard.popChains(batch)
 * for (let i = 0; i < n; i++) io.readFromFile(batch, i, diskFd, sectorOf(batch, i) * 512, 0, batch.writableBytes(i) - 1)
 * io.run(() => {
 *   for (let k = 0; k < io.length; k++) {
 *     // io.result(k): the bytes read, or it throws the read's SystemError; then the status
 *     // byte (batch.write(k, ...): the batch was not popped into meanwhile) and the used entry
 *   }
 * })
 * ```
 */
export class FileIoBatch {
  readonly #capacity: number
  readonly #handle: FileIoBatchHandle | null
  /** Per operation of the last run: bytes moved, or -errno (written by the native side). */
  readonly #results: Float64Array
  readonly #ops: Float64Array
  #count = 0
  /** The list was run (its results are the last run's). */
  #ran = false
  #busy = false
  #done: ((batch: FileIoBatch) => void) | null = null
  /** Called by the native side when a run is over: made once, so a run allocates nothing. */
  readonly #complete: () => void

  /**
   * Checks that runs may use `memory` (the memory itself, whatever the chains): what a
   * device asks once per memory to choose between a FileIoBatch and the synchronous forms,
   * without queueing an operation. Returns nothing.
   * @throws VirtioQueueError `DetachableMemory` if a region is over an ArrayBuffer (see the
   *   class); TypeError if `memory` is not a GuestMemory; {@link SystemError} `ENOSYS` off Linux.
   */
  static checkMemory(memory: GuestMemory): void {
    const h = GuestMemory.handleOf(memory)
    if (h === null) throw typeError('memory', 'a GuestMemory', memory)
    const check = native.fileIoBatchCheckMemory
    if (check === undefined) throw needsLinux('preadv', 'FileIoBatch (file I/O on the threadpool)')
    check(h)
  }

  /** Holds up to `capacity` operations per run (default 128; an integer from 1 to 65536). */
  constructor(capacity = 128) {
    if (typeof capacity !== 'number') throw typeError('capacity', 'of type number', capacity)
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536)
      throw rangeError('capacity', `it must be an integer from 1 to 65536; received ${capacity}`)
    const c = capacity
    this.#capacity = c
    this.#results = new Float64Array(c)
    this.#ops = new Float64Array(OP_SLOTS * c)
    this.#handle = native.fileIoBatchNew?.(c, this.#results) ?? null
    this.#complete = () => {
      this.#busy = false
      const done = this.#done!
      this.#done = null
      done(this)
    }
  }

  /** Most operations a run holds. */
  get capacity(): number {
    return this.#capacity
  }

  /** Operations queued (before {@link run}), or in the last run (after it). */
  get length(): number {
    return this.#count
  }

  /** True from {@link run} until just before its callback is called. */
  get busy(): boolean {
    return this.#busy
  }

  /**
   * Queues a `preadv` of `length` bytes (default: all of chain `i`'s writable bytes from
   * `skip` on) from `fd` at `position` into chain `i`'s writable buffers, from byte `skip`
   * of them, and returns the operation's index `k`. {@link ChainBatch.readFromFile}'s checks
   * and errors, done now: the chain's buffers are resolved against its guest memory now, so
   * `batch` may be popped into again right after this returns. After a completed run, the
   * first queueing call starts a new list (the last run's results are then gone).
   * @throws VirtioQueueError `Busy` while a run is in flight; `DetachableMemory` if the
   *   chain's guest memory has a region over an ArrayBuffer (see the class); `InvalidChain`,
   *   `DetachedBuffer` as ChainBatch.readFromFile.
   * @throws RangeError `ERR_OUT_OF_RANGE` when the batch holds `capacity` operations, and for
   *   the arguments ChainBatch.readFromFile refuses; TypeError if `batch` is not a ChainBatch.
   * @throws {@link SystemError} `ENOSYS` off Linux.
   */
  readFromFile(batch: ChainBatch, i: number, fd: number, position: number, skip = 0, length?: number): number {
    return this.#transfer(batch, i, fd, position, skip, length, false)
  }

  /**
   * Queues a `pwritev` of chain `i`'s readable bytes (`length` of them, default all from
   * `skip` on), from byte `skip` of them, into `fd` at `position`; as {@link readFromFile}.
   */
  writeToFile(batch: ChainBatch, i: number, fd: number, position: number, skip = 0, length?: number): number {
    return this.#transfer(batch, i, fd, position, skip, length, true)
  }

  /**
   * Queues an `fdatasync(fd)`: it runs after every operation queued before it. Returns its
   * index. Errors as {@link readFromFile}'s, but for the chain's.
   */
  datasync(fd: number): number {
    const h = this.#queueable('fdatasync')
    const k = native.fileIoBatchDatasync!(h, fd)
    this.#record(k, DATASYNC, fd, 0, 0)
    return k
  }

  /**
   * Runs the queued operations in order on one libuv threadpool thread, then, on this thread,
   * calls `done(this)`. Each operation's outcome is its own (a failed one does not stop the
   * next; read them with {@link result}). A run with no operation still goes through the
   * threadpool and calls back. An exception `done` throws is reported as uncaught (process
   * `'uncaughtException'`), like any I/O callback's; the batch is not busy any more by then.
   * @throws VirtioQueueError `Busy` if a run is in flight; TypeError if `done` is not a function.
   */
  run(done: (batch: FileIoBatch) => void): void {
    if (typeof done !== 'function') throw typeError('done', 'a function', done)
    if (this.#busy) throw busy('run')
    const h = this.#handle
    if (h === null) throw needsLinux('preadv', 'FileIoBatch (file I/O on the threadpool)')
    // Nothing changes if the native call throws; its completion comes in a later turn.
    native.fileIoBatchRun!(h, this.#complete, this, RESOURCE_NAME)
    this.#done = done
    this.#busy = true
    this.#ran = true
  }

  /** {@link run} as a Promise of this batch (a convenience: it allocates). */
  runAsync(): Promise<this> {
    return new Promise((resolve) => this.run(() => resolve(this)))
  }

  /**
   * The bytes moved by operation `k` of the last completed run: all it asked for, or fewer
   * when a read reached the end of the file (a write is continued until all is written, as
   * the synchronous forms do); 0 for `datasync`.
   * @throws {@link SystemError} if it failed: `code` the errno's name (`EBADF`, `ESPIPE`,
   *   `EIO`, `ENOSPC`, ..., `ECANCELED` for an operation that never ran), `errno` negative,
   *   `syscall` `'preadv'`, `'pwritev'` or `'fdatasync'`.
   * @throws RangeError `ERR_OUT_OF_RANGE` if `k` is not an operation of the last run;
   *   VirtioQueueError `Busy` while a run is in flight.
   */
  result(k: number): number {
    if (this.#busy) throw busy('read a result of')
    if (!(typeof k === 'number' && k >>> 0 === k && k < this.#count && this.#ran)) {
      if (typeof k !== 'number') throw typeError('k', 'of type number', k)
      const allowed = this.#ran
        ? `it must be an integer from 0 to ${this.#count - 1} (the last run had ${this.#count} operations)`
        : 'the operations queued have not run yet'
      throw rangeError(
        'k',
        `${this.#count === 0 && this.#ran ? 'the last run had no operation' : allowed}; received ${k}`,
      )
    }
    const v = this.#results[k]!
    if (v >= 0) return v
    const o = this.#ops
    const kind = o[OP_SLOTS * k]!
    const fd = o[OP_SLOTS * k + 1]!
    const call = SYSCALLS[kind]!
    throw systemError(
      v,
      call,
      kind === DATASYNC
        ? `fdatasync of fd ${fd}`
        : `${call} of ${o[OP_SLOTS * k + 3]!} bytes at offset ${o[OP_SLOTS * k + 2]!} of fd ${fd}`,
    )
  }

  /**
   * Forgets the queued operations (and the last run's results), and the guest memory they
   * kept alive.
   * @throws VirtioQueueError `Busy` while a run is in flight.
   */
  clear(): void {
    if (this.#busy) throw busy('clear')
    if (this.#handle !== null) native.fileIoBatchClear!(this.#handle)
    this.#count = 0
    this.#ran = false
  }

  #transfer(
    batch: ChainBatch,
    i: number,
    fd: number,
    position: number,
    skip: number,
    length: number | undefined,
    toFile: boolean,
  ): number {
    const h = this.#queueable(toFile ? 'pwritev' : 'preadv')
    const pos = toCount(position, 'position')
    const c = ChainBatch.fileSpan(batch, i, skip, length, toFile)
    const n = c.total - c.consumed
    const span = putSpan(c, n, toFile)
    const q = native.fileIoBatchQueue!
    const k = span !== null ? q(h, c.mem.handle, c.words, fd, pos, span) : q(h, c.mem.handle, c.words, fd, pos)
    this.#record(k, toFile ? WRITE : READ, fd, pos, n)
    return k
  }

  /** The handle, once the batch may take an operation (a completed run's list is dropped). */
  #queueable(call: SystemCall): FileIoBatchHandle {
    if (this.#busy) throw busy('queue to')
    const h = this.#handle
    if (h === null) throw needsLinux(call, `${call}(2) on the threadpool (FileIoBatch)`)
    // After a run, the native list is empty (emptied when the run completed): the next
    // operation recorded starts a new list here too (#record), so a refused call keeps the
    // last run's results.
    if (!this.#ran && this.#count >= this.#capacity)
      throw outOfRange(`the FileIoBatch holds ${this.#capacity} operations: run() it, or make it larger`)
    return h
  }

  #record(k: number, kind: number, fd: number, position: number, n: number): void {
    this.#ran = false
    const o = this.#ops
    o[OP_SLOTS * k] = kind
    o[OP_SLOTS * k + 1] = fd
    o[OP_SLOTS * k + 2] = position
    o[OP_SLOTS * k + 3] = n
    this.#count = k + 1
  }
}

function busy(what: string): VirtioQueueError {
  return new VirtioQueueError(
    `cannot ${what} a FileIoBatch while it runs: wait for its callback (or use another batch)`,
    'Busy',
  )
}
