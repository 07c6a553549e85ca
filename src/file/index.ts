/**
 * `virtio-queue/file` — what a block device needs from its image file that Node's `fs`
 * lacks (Linux): {@link punchHole} deallocates a range (DISCARD), {@link zeroRange} zeroes
 * one (WRITE_ZEROES), both with fallocate(2) on an open file descriptor, on libuv's
 * threadpool or ({@link punchHoleSync}, {@link zeroRangeSync}) on the calling thread.
 * Failures are {@link FileError}s carrying the `errno`; off Linux every call throws a
 * `VirtioQueueError` with code `FileUnsupported`.
 *
 * @module virtio-queue/file
 */
export { FileError } from './error'
export type { FileSyscall } from './error'
export { punchHole, punchHoleSync, zeroRange, zeroRangeSync } from './fallocate'
export type { FileOffset, ZeroRangeMethod } from './fallocate'
