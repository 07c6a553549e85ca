// The disk image behind the block device: a file accessed with positional,
// vectored I/O. The device hands it the chain (a batch and an index), and one
// preadv/pwritev on guest memory in a native call (ChainBatch.readFromFile,
// ChainBatch.writeToFile) lets the kernel copy between the page cache and the
// guest's buffers directly; read/write take Buffers (fs.readvSync/writevSync).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import type { ChainBatch } from '../..'
import { HolePuncher, type HoleMethod, writeZeroes } from './holes'
import { SECTOR_SIZE } from './protocol'

/** What the device needs from storage. Offsets and lengths are in bytes. */
export interface BlockBackend {
  /** Capacity in 512-byte sectors (what virtio_blk_config.capacity would advertise). */
  readonly sectors: number
  /** Fills `views` in order from the bytes at `offset`. Throws on an I/O error. */
  read(views: readonly Buffer[], offset: number): void
  /** Writes `views` in order to the bytes at `offset`. Throws on an I/O error. */
  write(views: readonly Buffer[], offset: number): void
  /**
   * Optional, preferred by the device when present: fills `length` of chain `i`'s writable
   * bytes, from byte `skip` of them on, from the bytes at `offset` (no Buffer or object
   * made). Throws on an I/O error.
   */
  readTo?(batch: ChainBatch, i: number, skip: number, length: number, offset: number): void
  /** Optional, as readTo: writes `length` of chain `i`'s readable bytes from byte `skip` on at `offset`. */
  writeFrom?(batch: ChainBatch, i: number, skip: number, length: number, offset: number): void
  /**
   * Optional: the file descriptor behind readTo, writeFrom and flush. With it, a device may
   * move a busy queue's data on libuv's threadpool (FileIoBatch) instead of on the event loop.
   */
  readonly fd?: number
  /** Makes completed writes durable (fdatasync). */
  flush(): void
  /** Deallocates the bytes at `offset`; they read as zeros afterwards. Absent: DISCARD is not offered. */
  discard?(offset: number, length: number): void
  /** Writes zeros at `offset` (allocating them). Absent: WRITE_ZEROES is not offered. */
  writeZeroes?(offset: number, length: number): void
  /** Whether discard() really deallocates (the config's write_zeroes_may_unmap). */
  readonly canUnmap?: boolean
}

export interface DiskOptions {
  /** An image file to use. Absent: a temporary sparse file, deleted by close(). */
  path?: string | undefined
  /** Size in bytes for a temporary image, or for a `path` that does not exist or is empty. */
  sizeBytes: number
  /** Use a `path` that already has contents (they will be overwritten). */
  force?: boolean | undefined
  /** Open read-only (an existing `path` only): writes throw EBADF. */
  readOnly?: boolean | undefined
}

/** Why a disk image was refused or failed. */
export type DiskErrorCode =
  | 'BAD_SIZE' // the requested size is below one sector
  | 'NOT_A_FILE' // a directory, block device, ...
  | 'NOT_EMPTY' // an existing image with contents, without `force`
  | 'SHORT_READ' // the image ended early (it shrank under us)
  | 'SHORT_WRITE' // a write moved nothing
  | 'NOT_FOUND' // a read-only image that does not exist

/** A refused or failing disk image; its message is meant for the user. */
export class DiskError extends Error {
  readonly code: DiskErrorCode
  constructor(code: DiskErrorCode, message: string) {
    super(message)
    this.code = code
  }
  override get name(): string {
    return 'DiskError'
  }
}

/** A disk image file: a {@link BlockBackend}. */
export class DiskImage implements BlockBackend {
  readonly path: string
  readonly sizeBytes: number
  readonly sectors: number
  /** True for the default temporary image (already unlinked on POSIX; else deleted by close()). */
  readonly temporary: boolean
  /** True when the image had contents before (opened with `force`). */
  readonly hadContents: boolean
  readonly readOnly: boolean
  #fd: number
  readonly #tempDir: string | null
  #holes: HolePuncher | null = null

  private constructor(
    file: string,
    fd: number,
    sizeBytes: number,
    tempDir: string | null,
    temporary: boolean,
    hadContents = false,
    readOnly = false,
  ) {
    this.path = file
    this.#fd = fd
    this.sizeBytes = sizeBytes
    this.sectors = Math.floor(sizeBytes / SECTOR_SIZE)
    this.#tempDir = tempDir
    this.temporary = temporary
    this.hadContents = hadContents
    this.readOnly = readOnly
  }

  /**
   * Opens (or creates) the image. A `path` that does not exist is created with
   * `sizeBytes` (sparse) and kept; an existing empty file is extended to `sizeBytes`;
   * an existing file with contents is refused unless `force`; anything but a regular
   * file (a block device, a directory) is refused.
   */
  static open(options: DiskOptions): DiskImage {
    const size = options.sizeBytes
    if (!Number.isSafeInteger(size) || size < SECTOR_SIZE)
      throw new DiskError('BAD_SIZE', `disk size must be at least ${SECTOR_SIZE} bytes, got ${size}`)
    if (options.path === undefined) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-blk-demo-'))
      const file = path.join(dir, 'disk.img')
      const fd = fs.openSync(file, 'wx+', 0o600)
      fs.ftruncateSync(fd, size) // sparse: no blocks are allocated until written
      // Unlink it right away where the OS allows (POSIX): the open fd keeps it alive and
      // it disappears when the process ends, even if it is killed.
      let tempDir: string | null = dir
      try {
        fs.rmSync(dir, { recursive: true })
        tempDir = null
      } catch {
        // Windows: an open file cannot be deleted; close() deletes it.
      }
      return new DiskImage(file, fd, size, tempDir, true)
    }
    const file = path.resolve(options.path)
    let stat: fs.Stats | undefined
    try {
      stat = fs.statSync(file)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    }
    if (stat === undefined && options.readOnly === true)
      throw new DiskError('NOT_FOUND', `${file} does not exist (a read-only disk must be an existing file)`)
    if (stat === undefined) {
      const fd = fs.openSync(file, 'wx+', 0o644)
      fs.ftruncateSync(fd, size)
      return new DiskImage(file, fd, size, null, false)
    }
    if (!stat.isFile())
      throw new DiskError('NOT_A_FILE', `${file} is not a regular file (block devices are not supported by this demo)`)
    if (options.readOnly === true) {
      if (stat.size < SECTOR_SIZE)
        throw new DiskError('BAD_SIZE', `${file} is smaller than one sector (${stat.size} bytes)`)
      return new DiskImage(file, fs.openSync(file, 'r'), stat.size, null, false, true, true)
    }
    if (stat.size > 0 && options.force !== true) {
      throw new DiskError(
        'NOT_EMPTY',
        `${file} is not empty (${stat.size} bytes): the demo writes all over the disk; pass --force to use it anyway`,
      )
    }
    const fd = fs.openSync(file, 'r+')
    if (stat.size === 0) fs.ftruncateSync(fd, size)
    const actual = stat.size === 0 ? size : stat.size
    if (actual < SECTOR_SIZE) {
      fs.closeSync(fd)
      throw new DiskError('BAD_SIZE', `${file} is smaller than one sector (${actual} bytes)`)
    }
    return new DiskImage(file, fd, actual, null, false, stat.size > 0)
  }

  read(views: readonly Buffer[], offset: number): void {
    let rest = views
    let pos = offset
    while (rest.length > 0) {
      const n = fs.readvSync(this.#fd, rest, pos)
      if (n === 0) {
        // Past the end of the file (it shrank under us): that is an I/O error for the guest.
        throw new DiskError('SHORT_READ', `short read at byte ${pos} of ${this.path}`)
      }
      pos += n
      rest = advance(rest, n)
    }
  }

  write(views: readonly Buffer[], offset: number): void {
    let rest = views
    let pos = offset
    while (rest.length > 0) {
      const n = fs.writevSync(this.#fd, rest, pos)
      pos += n
      rest = advance(rest, n)
    }
  }

  /** The image's file descriptor (-1 once closed), for asynchronous I/O (FileIoBatch). */
  get fd(): number {
    return this.#fd
  }

  /** One preadv straight into the chain's buffers (ChainBatch.readFromFile). */
  readTo(batch: ChainBatch, i: number, skip: number, length: number, offset: number): void {
    const n = batch.readFromFile(i, this.#fd, offset, skip, length)
    // Past the end of the file (it shrank under us): that is an I/O error for the guest.
    if (n < length) throw new DiskError('SHORT_READ', `short read at byte ${offset + n} of ${this.path}`)
  }

  /** pwritev straight from the chain's buffers (ChainBatch.writeToFile), until all is written. */
  writeFrom(batch: ChainBatch, i: number, skip: number, length: number, offset: number): void {
    for (let done = 0; done < length; ) {
      const n = batch.writeToFile(i, this.#fd, offset + done, skip + done, length - done)
      if (n === 0) throw new DiskError('SHORT_WRITE', `write of ${length - done} bytes at ${offset + done} wrote none`)
      done += n
    }
  }

  flush(): void {
    fs.fdatasyncSync(this.#fd)
  }

  /** Punches a hole (see holes.ts: fallocate's PUNCH_HOLE, or the zero-fill fallback). */
  discard(offset: number, length: number): void {
    this.#puncher().punch(offset, length)
  }

  /** Zeroes the range, allocated (see holes.ts: fallocate's ZERO_RANGE, or zeros written). */
  writeZeroes(offset: number, length: number): void {
    writeZeroes(this.#fd, offset, length)
  }

  /** True when holes are really punched; false once the zero-fill fallback is in use. */
  get canUnmap(): boolean {
    return !this.readOnly && this.#puncher().punches
  }

  /** How discard() deallocates, and why it fell back if it did. */
  get holeMethod(): { method: HoleMethod; fallbackReason: string | null } {
    const p = this.#puncher()
    return { method: p.method, fallbackReason: p.fallbackReason }
  }

  #puncher(): HolePuncher {
    this.#holes ??= new HolePuncher(this.#fd, this.sizeBytes)
    return this.#holes
  }

  /** Copies `length` bytes at `offset` out of the image (not on the device's data path). */
  readRange(offset: number, length: number): Buffer {
    const out = Buffer.alloc(length)
    this.read([out], offset)
    return out
  }

  /** Closes the file; a temporary image is deleted. Idempotent. */
  close(): void {
    if (this.#fd < 0) return
    fs.closeSync(this.#fd)
    this.#fd = -1
    if (this.#tempDir !== null) fs.rmSync(this.#tempDir, { recursive: true, force: true })
  }
}

/** The views left after the first `n` bytes were transferred (empty views dropped). */
function advance(views: readonly Buffer[], n: number): readonly Buffer[] {
  let i = 0
  let left = n
  while (i < views.length && left >= views[i]!.length) left -= views[i++]!.length
  if (i === views.length) return []
  const rest = views.slice(i)
  if (left > 0) rest[0] = rest[0]!.subarray(left)
  return rest
}
