// VhostUserBackend: a vhost-user backend listening on a Unix socket, serving one device.
import { Buffer, constants as bufferConstants } from 'node:buffer'
import { EventEmitter } from 'node:events'
import { typeError, VirtioQueueError, type VirtioQueueErrorCode } from '../errors'
import { GuestMemory } from '../memory'
import { type MemoryHandle, native, type NotifierHandle, PAGE_SIZE, type VhostUserHandle } from '../native'
import type { QueueState } from '../state'
import type { VhostUserDevice } from './device'
import { Vring } from './vring'

/** Options of {@link VhostUserBackend}. */
export interface VhostUserBackendOptions {
  /** The Unix socket path to listen on (a stale socket file there is replaced). */
  socketPath: string
  /** The device model to serve. */
  device: VhostUserDevice
}

// Event kinds the native backend dispatches (crate/src/js/vhost_user/host.rs).
const CONNECTED = 0
const DISCONNECTED = 1
const REFUSED = 2
const RESET = 3
const CLOSED = 4
const MEMORY = 5
const STARTED = 6
const STOPPED = 7
const KICK = 8
const CONFIG = 9
const WRITE_CONFIG = 10
const FEATURES = 11
/** StopReason numbers: GET_VRING_BASE, SET_VRING_ENABLE 0 (the frontend waits); reset, disconnect (nobody waits). */
const NOBODY_WAITS = 2

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/**
 * A vhost-user backend: listens on a Unix socket, and serves one {@link VhostUserDevice} to
 * one frontend at a time (QEMU, or any vhost-user frontend); after a frontend leaves, the next
 * one may connect. The protocol runs natively on a thread of its own; the device runs on the
 * main thread: each vring is a {@link Vring} whose `queue` is an ordinary `Queue`, kicks reach
 * `device.kick` from the event loop (the kick eventfd is watched by libuv), and
 * `vring.notify()` writes the call eventfd. Linux only.
 *
 * Events: `'connect'`, `'disconnect'` (`error?`: why the connection was dropped, if it was),
 * `'refused'` (a `VirtioQueueError` for a refused request; the connection stays up; logged on
 * stderr when nobody listens), `'error'` (a device callback threw; logged on stderr when
 * nobody listens).
 *
 * While listening, the backend keeps the process alive (as a listening `net.Server` does);
 * after `close()` it does not.
 *
 * @example
 * ```ts
 * import { VhostUserBackend } from 'virtio-queue/vhost-user'
 *
 * const backend = new VhostUserBackend({ socketPath: '/tmp/vhost.sock', device })
 * backend.on('disconnect', (err) => console.log('frontend left', err?.message ?? ''))
 * await backend.listen()
 * // ... qemu -chardev socket,id=c0,path=/tmp/vhost.sock -device vhost-user-blk-pci,chardev=c0 ...
 * await backend.close()
 * ```
 */
export class VhostUserBackend extends EventEmitter {
  readonly #socketPath: string
  readonly #device: VhostUserDevice
  #handle: VhostUserHandle | null = null
  #state: 'new' | 'listening' | 'closing' | 'closed' = 'new'
  #connected = false
  #memory: GuestMemory | null = null
  #acked = 0n
  readonly #vrings = new Map<number, Vring>()
  #closeWaiters: Array<() => void> = []

  /**
   * A backend for `options.device` on `options.socketPath`; nothing happens until {@link listen}.
   * @throws TypeError when an option is missing or of the wrong type.
   */
  constructor(options: VhostUserBackendOptions) {
    super()
    if (options === null || typeof options !== 'object') throw typeError('options', 'an object', options)
    if (typeof options.socketPath !== 'string') throw typeError('options.socketPath', 'a string', options.socketPath)
    const d = options.device
    if (d === null || typeof d !== 'object') throw typeError('options.device', 'a VhostUserDevice object', d)
    if (typeof d.kick !== 'function') throw typeError('options.device.kick', 'a function', d.kick)
    if (typeof d.config !== 'function') throw typeError('options.device.config', 'a function', d.config)
    this.#socketPath = options.socketPath
    this.#device = d
  }

  /** Whether a frontend is connected. */
  get connected(): boolean {
    return this.#connected
  }

  /** Whether the backend is listening (between `listen()` and the end of `close()`). */
  get listening(): boolean {
    return this.#state === 'listening' || this.#state === 'closing'
  }

  /**
   * Starts listening; resolves once the socket accepts connections.
   * @throws VirtioQueueError (as a rejection) `VhostUserListen` when the path is served by a live
   * listener or is not a socket; `VhostUserDevice` for unusable `numQueues`/`maxQueueSize`;
   * `VhostUserUnsupported` off Linux; `VhostUserState` when already listening or closed.
   */
  async listen(): Promise<void> {
    if (this.#state !== 'new') {
      throw new VirtioQueueError(
        `the backend is ${this.#state === 'closed' ? 'closed' : 'already listening'}`,
        'VhostUserState',
      )
    }
    const start = native.vhostUserStart
    if (typeof start !== 'function') {
      throw new VirtioQueueError(
        `vhost-user backends need Linux (Unix sockets with fd passing, eventfds); this is ${process.platform}`,
        'VhostUserUnsupported',
      )
    }
    const d = this.#device
    if (typeof d.features !== 'bigint') throw typeError('device.features', 'a bigint', d.features)
    const maxView = Math.floor(Math.min(bufferConstants.MAX_LENGTH, 2 ** 52) / PAGE_SIZE) * PAGE_SIZE
    this.#handle = start(
      this.#socketPath,
      BigInt.asUintN(64, d.features),
      d.numQueues,
      d.maxQueueSize,
      maxView,
      (kind, a, b, c) => this.#dispatch(kind, a, b, c),
    )
    this.#state = 'listening'
  }

  /**
   * Stops listening and drops the frontend, if any (its rings stop: `queueStopped` is called
   * without waiting); resolves once the backend has let go of everything. A stop already
   * waiting for a `queueStopped` Promise (`GET_VRING_BASE`) is finished first: `close()`
   * resolves after that Promise settles. Closing a backend that is not listening resolves at once.
   */
  close(): Promise<void> {
    if (this.#state === 'new') this.#state = 'closed'
    if (this.#state === 'closed') return Promise.resolve()
    const done = new Promise<void>((resolve) => this.#closeWaiters.push(resolve))
    if (this.#state === 'listening') {
      this.#state = 'closing'
      native.vhostUserClose!(this.#handle!)
    }
    return done
  }

  #report(event: 'error' | 'refused', err: Error): void {
    if (this.listenerCount(event) > 0) this.emit(event, err)
    else process.stderr.write(`vhost-user: ${err.message}\n`)
  }

  #deviceError(what: string, e: unknown): void {
    const err = new VirtioQueueError(`the device's ${what} threw: ${message(e)}`, 'VhostUserDevice')
    ;(err as Error & { cause?: unknown }).cause = e
    this.#report('error', err)
  }

  /** Calls the device's optional method `name`; a throw is reported. */
  #tell(name: 'connected' | 'reset', ...args: []): void {
    const f = this.#device[name]
    if (typeof f !== 'function') return
    try {
      f.apply(this.#device, args)
    } catch (e) {
      this.#deviceError(`${name}()`, e)
    }
  }

  // The native backend's one entry point. Nothing may escape from here: what the device
  // throws is reported or returned as a refusal (a string).
  #dispatch(kind: number, a: unknown, b: unknown, c: unknown): unknown {
    try {
      switch (kind) {
        case KICK:
          return this.#kick(a as number)
        case CONNECTED:
          this.#connected = true
          this.#tell('connected')
          this.emit('connect')
          return undefined
        case DISCONNECTED:
          return this.#disconnected(a as string | undefined, b as VirtioQueueErrorCode | undefined)
        case REFUSED:
          this.#report('refused', new VirtioQueueError(a as string, b as VirtioQueueErrorCode))
          return undefined
        case RESET:
          this.#tell('reset')
          return undefined
        case CLOSED:
          return this.#closed()
        case MEMORY:
          return this.#memoryChanged(a as MemoryHandle | undefined, b as Array<number | ArrayBuffer>)
        case STARTED:
          return this.#started(a as number, b as number[], c as NotifierHandle)
        case STOPPED:
          return this.#stopped(a as number, b as number)
        case CONFIG:
          return this.#config()
        case WRITE_CONFIG:
          return this.#writeConfig(a as number, b as Uint8Array)
        case FEATURES:
          this.#acked = a as bigint
          return undefined
        default:
          return undefined
      }
    } catch (e) {
      return `internal error: ${message(e)}`
    }
  }

  #kick(index: number): void {
    const vring = this.#vrings.get(index)
    if (vring === undefined) return
    try {
      this.#device.kick(vring)
    } catch (e) {
      this.#deviceError(`kick(vring ${index})`, e)
    }
  }

  #disconnected(msg: string | undefined, code: VirtioQueueErrorCode | undefined): void {
    this.#connected = false
    const err = msg === undefined ? undefined : new VirtioQueueError(msg, code ?? 'VhostUserProtocol')
    const f = this.#device.disconnected
    if (typeof f === 'function') {
      try {
        f.call(this.#device, err)
      } catch (e) {
        this.#deviceError('disconnected()', e)
      }
    }
    this.emit('disconnect', err)
  }

  #closed(): void {
    this.#state = 'closed'
    this.#connected = false
    this.#memory = null
    this.#vrings.clear()
    const waiters = this.#closeWaiters
    this.#closeWaiters = []
    for (const w of waiters) w()
  }

  #memoryChanged(handle: MemoryHandle | undefined, regions: Array<number | ArrayBuffer>): void {
    if (handle === undefined) {
      this.#memory = null
      return
    }
    const views: Array<[number, Buffer]> = []
    for (let i = 0; i < regions.length; i += 2) {
      const ab = regions[i + 1] as ArrayBuffer
      views.push([regions[i] as number, Buffer.from(ab, 0, ab.byteLength)])
    }
    const memory = GuestMemory.fromNative(handle, views)
    this.#memory = memory
    // Running rings keep their guest addresses; their queues now read the new memory.
    for (const vring of this.#vrings.values()) vring.rebind(memory)
  }

  #started(index: number, w: number[], notifier: NotifierHandle): string | undefined {
    if (this.#memory === null) return 'no guest memory'
    const state: QueueState = {
      maxSize: w[0]!,
      nextAvail: w[1]!,
      nextUsed: w[2]!,
      eventIdxEnabled: w[3] !== 0,
      size: w[4]!,
      ready: w[5] !== 0,
      descTable: w[6]!,
      availRing: w[7]!,
      usedRing: w[8]!,
    }
    const vring = Vring.create(index, this.#memory, state, notifier, this.#acked)
    const f = this.#device.queueStarted
    if (typeof f === 'function') {
      try {
        f.call(this.#device, vring)
      } catch (e) {
        return `queueStarted(vring ${index}) threw: ${message(e)}`
      }
    }
    this.#vrings.set(index, vring)
    return undefined
  }

  /** Where the ring stopped (a number), or undefined: the device finishes later (completeStop). */
  #stopped(index: number, reason: number): number | undefined {
    const vring = this.#vrings.get(index)
    if (vring === undefined) return 0
    this.#vrings.delete(index)
    const where = (): number => vring.queue.state().nextAvail
    const f = this.#device.queueStopped
    let result: unknown
    if (typeof f === 'function') {
      try {
        result = f.call(this.#device, vring)
      } catch (e) {
        this.#deviceError(`queueStopped(vring ${index})`, e)
      }
    }
    if (!(result instanceof Promise) && !(typeof (result as PromiseLike<void>)?.then === 'function')) return where()
    const settled = Promise.resolve(result as PromiseLike<void>).then(
      () => undefined,
      (e) => this.#deviceError(`queueStopped(vring ${index}) promise`, e),
    )
    if (reason >= NOBODY_WAITS) return where()
    const handle = this.#handle!
    void settled.then(() => {
      native.vhostUserCompleteStop!(handle, index, where())
    })
    return undefined
  }

  #config(): Uint8Array {
    let c: unknown
    try {
      c = this.#device.config()
    } catch (e) {
      this.#deviceError('config()', e)
      return new Uint8Array(0)
    }
    if (!(c instanceof Uint8Array)) {
      this.#deviceError('config()', new TypeError('config() must return a Uint8Array'))
      return new Uint8Array(0)
    }
    return c
  }

  #writeConfig(offset: number, data: Uint8Array): string | undefined {
    const f = this.#device.writeConfig
    if (typeof f !== 'function') return 'the configuration space is read-only'
    try {
      f.call(this.#device, offset, data)
      return undefined
    } catch (e) {
      return message(e)
    }
  }
}
