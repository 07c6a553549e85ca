// Errors thrown by the package. Guest and queue errors are VirtioQueueError,
// whose `code` names the virtio-queue (or vm-memory) error variant; failed system
// calls on files are its subclass SystemError, shaped as Node's fs errors (`code`
// the errno's name, `errno` negative, `syscall`); argument errors are TypeError /
// RangeError with Node-style codes.

import { constants } from 'node:os'
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
  /** A {@link FileIoBatch} was used (queued to, run, read or cleared) while it runs. */
  | 'Busy'
  /**
   * A {@link FileIoBatch} operation on guest memory over an ArrayBuffer, which could be
   * detached and freed while the threadpool uses it: use memory over SharedArrayBuffers or
   * vhost-user memory, or the synchronous ChainBatch.readFromFile/writeToFile.
   */
  | 'DetachableMemory'
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
  /**
   * A system call on a file descriptor failed, or needs Linux (`ENOSYS`): a
   * {@link SystemError}, whose `code` is the errno's name (`EBADF`, `EOPNOTSUPP`, `ENOSPC`,
   * ...) as on Node's own errors.
   */
  | SystemErrorCode

/**
 * An errno name, such as `EBADF`: the name libuv (and so Node) gives the number, except
 * `EOPNOTSUPP` (see {@link SystemError}); `E` and the number for one libuv does not know.
 */
export type SystemErrorCode = `E${string}`

/** The system calls a {@link SystemError} reports. */
export type SystemCall = 'preadv' | 'pwritev' | 'fdatasync' | 'fallocate' | 'pwrite'

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

/**
 * A system call on a file descriptor failed, with what Node's own fs errors carry: `code`
 * is the errno's name (`EBADF` for a closed fd or one not open for writing, `EISDIR`,
 * `ESPIPE` for a pipe or socket, `ENODEV` for a character device, `ENOSPC` when the file
 * system is full, `EOPNOTSUPP` when it cannot do the operation, ...), `errno` the negative
 * number (`-9` for `EBADF` on Linux, as `fs.readSync(999)` reports it), `syscall` the call,
 * and the message names the errno, the operation, the fd and the range. Thrown by
 * {@link Writer.readFromFile}, {@link Reader.writeToFile}, {@link ChainBatch.readFromFile},
 * {@link ChainBatch.writeToFile}, {@link FileIoBatch.result} and `virtio-queue/file`.
 *
 * Linux gives `EOPNOTSUPP` and `ENOTSUP` one number (95), which libuv names `ENOTSUP`
 * ("operation not supported on socket"); for a file it is the file system that cannot do
 * the call, and fallocate(2) documents it as `EOPNOTSUPP`: that is the `code` here. The
 * `errno` is the same number either way (`-os.constants.errno.EOPNOTSUPP`).
 *
 * These calls need Linux: elsewhere they throw a SystemError with code `ENOSYS` (and the
 * call that is missing as `syscall`) whose message says so.
 *
 * @example
 * ```ts
 * try {
 *   punchHoleSync(fd, offset, length)
 * } catch (e) {
 *   if (e instanceof SystemError && (e.code === 'EOPNOTSUPP' || e.code === 'ENOSYS')) zeroFill(fd, offset, length)
 *   else throw e
 * }
 * ```
 */
export class SystemError extends VirtioQueueError {
  declare readonly code: SystemErrorCode
  /** The negative error number, as on Node's own errors (`-9` for `EBADF` on Linux). */
  readonly errno: number
  /** The system call that failed. */
  readonly syscall: SystemCall

  /** An error of `syscall`, with `code` the name of `errno` (negative). */
  constructor(message: string, code: SystemErrorCode, errno: number, syscall: SystemCall) {
    super(message, code)
    this.errno = errno
    this.syscall = syscall
  }

  /** `'SystemError'`. */
  override get name(): string {
    return 'SystemError'
  }
}

/**
 * The error of `syscall` failing with `errno` (negative, as the native side returns it)
 * while doing `operation` (e.g. `preadv of 512 bytes at offset 0 of fd 9`): Node's
 * message format, `EBADF: bad file descriptor, <operation>`.
 */
export function systemError(errno: number, syscall: SystemCall, operation: string): SystemError {
  const [code, text] = errnoName(errno)
  return new SystemError(`${code}: ${text}, ${operation}`, code, errno, syscall)
}

/** The `ENOSYS` SystemError of `syscall`, which `what` needs and this platform lacks. */
export function needsLinux(syscall: SystemCall, what: string): SystemError {
  const errno = errnoOf('ENOSYS')
  return new SystemError(`ENOSYS: ${what} needs Linux; this is ${process.platform}`, 'ENOSYS', errno, syscall)
}

/** The name and description of the negative `errno`: libuv's, but for EOPNOTSUPP. */
function errnoName(errno: number): [SystemErrorCode, string] {
  if (errno === -constants.errno.EOPNOTSUPP) return ['EOPNOTSUPP', 'operation not supported by the file system']
  const known = getSystemErrorMap().get(errno)
  // A number libuv has no name for keeps it (as `E` and the number).
  return known === undefined
    ? [`E${-errno}`, `unknown system error ${-errno}`]
    : [known[0] as SystemErrorCode, known[1]]
}

/** libuv's (negative) number for the errno `name`: what Node's errors carry on every platform. */
function errnoOf(name: string): number {
  for (const [errno, [known]] of getSystemErrorMap()) if (known === name) return errno
  return -(constants.errno as Record<string, number | undefined>)[name]!
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
