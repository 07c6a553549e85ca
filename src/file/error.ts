// The error of a failed system call on a file: a VirtioQueueError with code 'FileError'
// carrying the errno and the call, as Node's fs errors do.
import { constants } from 'node:os'
import { getSystemErrorMap } from 'node:util'

import { VirtioQueueError } from '../errors'

/** The system calls {@link FileError} reports. */
export type FileSyscall = 'fallocate' | 'pwrite'

/**
 * A system call on a file failed. `errno` is the operating system's error number (compare it
 * with `os.constants.errno`, e.g. `EBADF` for a closed fd or one not open for writing,
 * `EOPNOTSUPP` when the file system cannot do it, `ENOSPC` when it is full, `ESPIPE` for a
 * pipe or socket, `ENODEV` for a character device); `syscall` is the call that failed, and
 * the message names the errno, the operation and the range.
 *
 * @example
 * ```ts
 * import { constants } from 'node:os'
 * try {
 *   await punchHole(fd, 0, 4096)
 * } catch (e) {
 *   if (e instanceof FileError && e.errno === constants.errno.EOPNOTSUPP) zeroFill(fd, 0, 4096)
 *   else throw e
 * }
 * ```
 */
export class FileError extends VirtioQueueError {
  declare readonly code: 'FileError'
  /** The error number (positive, as in `os.constants.errno`). */
  readonly errno: number
  /** The system call that failed. */
  readonly syscall: FileSyscall

  /** An error of `syscall` with `errno`; `message` says what was being done. */
  constructor(message: string, errno: number, syscall: FileSyscall) {
    super(message, 'FileError')
    this.errno = errno
    this.syscall = syscall
  }

  /** `'FileError'`. */
  override get name(): string {
    return 'FileError'
  }
}

/** `EBADF (bad file descriptor)`, or the number where the system has no name for it. */
export function describeErrno(errno: number): string {
  // Linux's ENOTSUP and EOPNOTSUPP are one number, which libuv names ENOTSUP "operation not
  // supported on socket": for a file it is the file system that does not support the call.
  if (errno === constants.errno.EOPNOTSUPP) return 'EOPNOTSUPP (operation not supported by the file system)'
  const known = getSystemErrorMap().get(-errno)
  return known === undefined ? `errno ${errno}` : `${known[0]} (${known[1]})`
}
