/**
 * `virtio-queue/file` — what a block device needs from its image file that Node's `fs`
 * lacks (Linux): {@link punchHole} deallocates a range (DISCARD), {@link zeroRange} zeroes
 * one (WRITE_ZEROES), both with fallocate(2) on an open file descriptor, on libuv's
 * threadpool or ({@link punchHoleSync}, {@link zeroRangeSync}) on the calling thread.
 * Failures are {@link SystemError}s, as Node's fs errors: `code` the errno's name (`EBADF`,
 * `EOPNOTSUPP`, `ENOSPC`, ...), `errno` negative, `syscall`; off Linux every call throws
 * one with code `ENOSYS`.
 *
 * @module virtio-queue/file
 */
export { SystemError } from '../errors'
export type { SystemCall, SystemErrorCode } from '../errors'
export { punchHole, punchHoleSync, zeroRange, zeroRangeSync } from './fallocate'
export type { FileOffset, ZeroRangeMethod } from './fallocate'
