// Errors thrown by the package. Guest and queue errors are VirtioQueueError,
// whose `code` names the virtio-queue (or vm-memory) error variant; argument
// errors are TypeError / RangeError with Node-style codes.

import { getSystemErrorMap, types } from 'node:util'

const { isProxy } = types
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance]

/** Codes carried by {@link VirtioQueueError}. */
export type VirtioQueueErrorCode =
  // virtio_queue::Error variants, as the crate names them
  | 'AddressOverflow'
  | 'GuestMemory'
  | 'InvalidIndirectDescriptor'
  | 'InvalidIndirectDescriptorTable'
  | 'InvalidChain'
  | 'InvalidDescriptorIndex'
  | 'InvalidMaxSize'
  | 'InvalidSize'
  | 'InvalidDescTableAlign'
  | 'InvalidAvailRingAlign'
  | 'InvalidUsedRingAlign'
  | 'InvalidAvailRingIndex'
  | 'QueueNotReady'
  | 'VolatileMemoryError'
  | 'DescriptorChainOverflow'
  | 'FindMemoryRegion'
  | 'GuestMemoryError'
  | 'SplitOutOfBounds'
  // this package's own
  /**
   * An address range outside guest memory, from GuestMemory accessors: the error is a
   * RangeError and `instanceof VirtioQueueError` holds for it too.
   */
  | 'InvalidGuestAddress'
  /** A guest memory layout was rejected: empty, overlapping, misaligned or beyond 2^53. */
  | 'InvalidRegion'
  /** The ArrayBuffer behind a region was detached (transferred). */
  | 'DetachedBuffer'
  /** A released QueueGuard was used. */
  | 'GuardReleased'
  /** lockWithMemory() while another guard of the same queue is live. */
  | 'QueueLocked'
  /** A QueueState object that cannot be decoded. */
  | 'InvalidState'
  /** A Rust panic caught at the Node-API boundary (a bug: please report it). */
  | 'Panic'
  /** A Node-API call failed. */
  | 'NodeApi'
  // vhost-user backends (virtio-queue/vhost-user)
  /** A frontend request was refused; the connection stays up. */
  | 'VhostUserRefused'
  /** A request whose reply must carry a value was refused: the connection was dropped. */
  | 'VhostUserNoReply'
  /** The frontend broke the protocol: the connection was dropped. */
  | 'VhostUserProtocol'
  /** The thread owning the backend state stopped (the backend is closing). */
  | 'VhostUserOwnerGone'
  /** The socket path cannot be listened on (in use by a live listener, not a socket, ...). */
  | 'VhostUserListen'
  /** The device's parameters are unusable (queue count, queue size). */
  | 'VhostUserDevice'
  /** Frontend-shared memory cannot be shown to JavaScript. */
  | 'VhostUserMemory'
  /** Writing a vring's call eventfd failed. */
  | 'VhostUserNotify'
  /** vhost-user backends need Linux (Unix sockets with fd passing, eventfds). */
  | 'VhostUserUnsupported'
  /** The backend is closed, or was already listening. */
  | 'VhostUserState'
  // files (virtio-queue/file)
  /** A system call on a file failed: a `FileError` (virtio-queue/file) with `errno` and `syscall`. */
  | 'FileError'
  /** fallocate(2) needs Linux. */
  | 'FileUnsupported'
  /**
   * A system call on a file descriptor failed ({@link Writer.readFromFile},
   * {@link Reader.writeToFile}): the errno's name, as Node's own errors have it (`EBADF`,
   * `EISDIR`, `ENOSPC`, ...); the error's `errno` and `syscall` say more.
   */
  | SystemErrorCode

/** An errno name, such as `EBADF`. */
export type SystemErrorCode = `E${string}`

/**
 * An error from the queue, the crate or guest memory. `code` names the virtio-queue error
 * variant (e.g. `InvalidSize`, `QueueNotReady`) or one of this package's codes. The guest
 * address errors (`InvalidGuestAddress`) are RangeErrors for which `instanceof
 * VirtioQueueError` holds as well. Argument mistakes are thrown as TypeError
 * (`code: 'ERR_INVALID_ARG_TYPE'`) or RangeError (`code: 'ERR_OUT_OF_RANGE'`) naming the argument.
 *
 * @example
 * ```ts
 * try {
 *   guard.setSize(3)
 * } catch (e) {
 *   if (e instanceof VirtioQueueError && e.code === 'InvalidSize') console.error(e.message)
 *   else throw e
 * }
 * ```
 */
export class VirtioQueueError extends Error {
  /** The crate's error variant, or one of this package's codes. */
  readonly code: VirtioQueueErrorCode

  constructor(message: string, code: VirtioQueueErrorCode) {
    super(message)
    this.code = code
  }

  /** `'VirtioQueueError'`. */
  override get name(): string {
    return 'VirtioQueueError'
  }

  /**
   * `instanceof VirtioQueueError` holds for every error of this class and for the guest
   * address errors (`code: 'InvalidGuestAddress'`), which are RangeErrors as well: a class
   * can extend only one of Error and RangeError, so the address errors extend RangeError
   * and are recognised here by their private brand (not by a property anyone could set).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of instanceof (a subclass too)
    if (Reflect.apply(ordinaryHasInstance, this, [value])) return true
    // biome-ignore lint/complexity/noThisInStatic: only VirtioQueueError itself, not a subclass, covers the address errors
    return this === VirtioQueueError && GuestAddressError.is(value)
  }
}

/** A guest address range outside guest memory: a RangeError that is also a VirtioQueueError. */
class GuestAddressError extends RangeError {
  readonly #brand = true
  readonly code: 'InvalidGuestAddress' = 'InvalidGuestAddress'

  override get name(): string {
    return 'VirtioQueueError'
  }

  static is(value: unknown): boolean {
    return typeof value === 'object' && value !== null && #brand in value
  }
}

/** A VirtioQueueError for a failed system call: what Node's fs errors carry, as well. */
export interface SystemError extends VirtioQueueError {
  readonly code: SystemErrorCode
  /** The negative errno, as in Node's own errors (`-9` for `EBADF` on Linux). */
  readonly errno: number
  /** The system call that failed (`preadv`, `pwritev`). */
  readonly syscall: string
}

/** The error for `syscall` on `fd` failing with `-errno` (negative, as the native side returns it). */
export function systemError(errno: number, syscall: string, fd: number): SystemError {
  // libuv's name and description of the errno (an unknown one keeps its number).
  const [name, text] = getSystemErrorMap().get(errno) ?? [`E${-errno}`, `unknown system error ${-errno}`]
  const code = name as SystemErrorCode
  const e = new VirtioQueueError(`${syscall} on fd ${fd} failed: ${code} (${text})`, code) as VirtioQueueError & {
    errno: number
    syscall: string
  }
  e.errno = errno
  e.syscall = syscall
  return e as SystemError
}

export function typeError(name: string, expected: string, value: unknown): TypeError {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`)
  ;(e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_TYPE'
  return e
}

export function rangeError(name: string, reason: string): RangeError {
  return outOfRange(`The "${name}" argument is out of range: ${reason}`)
}

/** A RangeError with Node's `ERR_OUT_OF_RANGE` code, for a request no single argument is to blame for. */
export function outOfRange(message: string): RangeError {
  const e = new RangeError(message)
  ;(e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE'
  return e
}

/**
 * A guest address range that no region (or no single region) holds: a RangeError with
 * `code: 'InvalidGuestAddress'` that is also `instanceof VirtioQueueError`.
 */
export function addressError(addr: number | bigint, length: number, what = 'outside guest memory'): RangeError {
  return new GuestAddressError(`guest address 0x${addr.toString(16)} (${length} bytes) is ${what}`)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'bigint') return `type bigint (${value}n)`
  if (typeof value === 'number') return `type number (${value})`
  if (typeof value === 'string') return `type string (${JSON.stringify(value.slice(0, 40))})`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object') {
    // Describing the value runs none of its code: no Proxy trap, no getter.
    if (isProxy(value)) return 'a Proxy'
    const proto = Object.getPrototypeOf(value) as object | null
    const ctor = proto === null ? undefined : Object.getOwnPropertyDescriptor(proto, 'constructor')?.value
    const name = typeof ctor === 'function' ? Object.getOwnPropertyDescriptor(ctor, 'name')?.value : undefined
    return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object'
  }
  return `type ${typeof value}`
}
