// Punching holes and zeroing ranges of open files: fallocate(2), natively (Linux; see
// crate/src/engine/file.rs for what each operation tries, crate/src/js/file.rs for the
// arguments and the outcome number decoded here).
import { needsLinux, type SystemCall, systemError, VirtioQueueError } from '../errors'
import { native } from '../native'

/**
 * How {@link zeroRange} made the range read as zeros:
 * - `'zero-range'`: `FALLOC_FL_ZERO_RANGE`, the range stays allocated;
 * - `'punch-hole-allocate'`: the file system has no `ZERO_RANGE` (tmpfs, for one): the hole
 *   was punched, then the range allocated again (`fallocate(FALLOC_FL_KEEP_SIZE)`);
 * - `'punch-hole'`: as above, but the file system cannot allocate it again: a hole is left;
 * - `'write'`: the file system can neither zero nor punch: zeros were written (`pwrite`).
 */
export type ZeroRangeMethod = 'zero-range' | 'punch-hole-allocate' | 'punch-hole' | 'write'

/** An integer: a number (a safe integer) or a bigint. */
export type FileOffset = number | bigint

const enum Op {
  PunchHole = 0,
  ZeroRange = 1,
}

// engine::file::Method, by number.
const METHODS: readonly ZeroRangeMethod[] = ['punch-hole', 'zero-range', 'punch-hole-allocate', 'write']
// engine::file::Step, by number: the call and its fallocate mode.
const STEPS: readonly [SystemCall, string][] = [
  ['fallocate', 'fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)'],
  ['fallocate', 'fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)'],
  ['fallocate', 'fallocate(FALLOC_FL_KEEP_SIZE) (allocating the punched range again)'],
  ['pwrite', 'pwrite of zeros'],
]

function start(fd: number, offset: FileOffset, length: FileOffset, op: Op, async: boolean): number | Promise<number> {
  const fallocate = native.fileFallocate
  if (typeof fallocate !== 'function')
    throw needsLinux('fallocate', 'fallocate(2) (punchHole, zeroRange: punching holes and zeroing ranges)')
  return async ? fallocate(fd, offset, length, op, true) : fallocate(fd, offset, length, op, false)
}

/** The method of a successful outcome; throws the error of a failed one. */
function settle(outcome: number, fd: number, offset: FileOffset, length: FileOffset): ZeroRangeMethod {
  if (outcome >= 0) return METHODS[outcome]!
  if (outcome === -1)
    throw new VirtioQueueError('internal error (Rust panic in the fallocate task): please report it', 'Panic')
  const errno = -outcome >> 3 // below 2^31: the native side shifted an errno (an int) by 3
  const [syscall, what] = STEPS[-outcome & 7]!
  throw systemError(-errno, syscall, `${what} of ${length} bytes at offset ${offset} of fd ${fd}`)
}

/**
 * Deallocates `length` bytes at `offset` of the open file `fd` (fallocate(2) with
 * `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`): they read as zeros afterwards, the file's
 * size is unchanged, and whole blocks inside the range are freed (a virtio-blk DISCARD).
 * Runs on libuv's threadpool, so the event loop is not blocked however large the range (a
 * hole of 64 MiB can take tens of milliseconds). Do not close `fd` before the Promise
 * settles, as with Node's own fs calls on descriptors.
 *
 * @param fd A file descriptor open for writing (an integer from 0 to 2^31 - 1).
 * @param offset Bytes from the start of the file: a safe integer or a bigint, at least 0.
 * @param length Bytes: at least 1, with `offset + length` at most 2^63 - 1.
 * @returns A Promise that resolves once the hole is punched.
 * @throws (as a rejection) `TypeError` / `RangeError` (`ERR_INVALID_ARG_TYPE` /
 * `ERR_OUT_OF_RANGE`) for unusable arguments, before any system call; {@link SystemError}
 * when fallocate fails, with the errno's name as `code` (`EBADF`, `EOPNOTSUPP` where the
 * file system cannot punch holes, `ESPIPE`, `ENODEV`, ...) and `syscall: 'fallocate'`;
 * {@link SystemError} `ENOSYS` off Linux; VirtioQueueError `Panic` if the native side
 * failed (a bug to report).
 */
export async function punchHole(fd: number, offset: FileOffset, length: FileOffset): Promise<void> {
  settle(await start(fd, offset, length, Op.PunchHole, true), fd, offset, length)
}

/**
 * {@link punchHole} on the calling thread: returns once the hole is punched. A system call
 * of a few microseconds for a small range of a cached or tmpfs file, but it blocks the
 * event loop for as long as the file system takes (milliseconds to tens of milliseconds
 * for large ranges of files on disk): for those, prefer {@link punchHole}.
 *
 * @throws As {@link punchHole}, synchronously.
 */
export function punchHoleSync(fd: number, offset: FileOffset, length: FileOffset): void {
  settle(start(fd, offset, length, Op.PunchHole, false) as number, fd, offset, length)
}

/**
 * Makes `length` bytes at `offset` of the open file `fd` read as zeros, keeping them
 * allocated where the file system allows (a virtio-blk WRITE_ZEROES without unmap):
 * fallocate(2) with `FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE`, or where the file system
 * answers `EOPNOTSUPP`, a punched hole allocated again, or zeros written; the result says
 * which ({@link ZeroRangeMethod}). The file's size never changes, except that writing
 * zeros past its end extends it. Runs on libuv's threadpool.
 *
 * @param fd A file descriptor open for writing (an integer from 0 to 2^31 - 1).
 * @param offset Bytes from the start of the file: a safe integer or a bigint, at least 0.
 * @param length Bytes: at least 1, with `offset + length` at most 2^63 - 1.
 * @returns A Promise of how the range was zeroed.
 * @throws (as a rejection) As {@link punchHole}; {@link SystemError} `ENOSPC` when the file
 * system cannot allocate the range (`syscall: 'pwrite'` when it failed writing zeros);
 * `EBADF` with `syscall: 'pwrite'`, writing nothing, when zeros must be written and `fd`
 * was opened with `O_APPEND` (Linux's pwrite would append them instead).
 */
export async function zeroRange(fd: number, offset: FileOffset, length: FileOffset): Promise<ZeroRangeMethod> {
  return settle(await start(fd, offset, length, Op.ZeroRange, true), fd, offset, length)
}

/**
 * {@link zeroRange} on the calling thread (see {@link punchHoleSync} for what that costs).
 *
 * @returns How the range was zeroed.
 * @throws As {@link zeroRange}, synchronously.
 */
export function zeroRangeSync(fd: number, offset: FileOffset, length: FileOffset): ZeroRangeMethod {
  return settle(start(fd, offset, length, Op.ZeroRange, false) as number, fd, offset, length)
}
