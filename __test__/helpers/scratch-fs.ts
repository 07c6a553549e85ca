// Scratch files for the file tests: temporary files with given contents (the chain file-I/O
// tests), filled files on a given directory, and small file systems mounted for the test (a full tmpfs for ENOSPC, a ramfs that has no
// fallocate at all), which needs root (CAP_SYS_ADMIN).
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

/** `n` bytes of a pattern that differs per `seed` and per offset. */
export const bytes = (n: number, seed = 1): Buffer =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff))

/** A temporary file holding `contents`, open read-write; closed and removed after the test. */
export function tempFile(t: { teardown(fn: () => void): void }, contents: Buffer): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-file-io-'))
  const file = path.join(dir, 'f')
  fs.writeFileSync(file, contents)
  const fd = fs.openSync(file, 'r+')
  t.teardown(() => {
    fs.closeSync(fd)
    fs.rmSync(dir, { recursive: true })
  })
  return fd
}

/** A file of `size` bytes of `fill`, opened read-write and already unlinked; its fd. */
export function filledFile(dir: string, size: number, fill = 0x5a): number {
  const file = path.join(dir, `vq-file-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const fd = fs.openSync(file, 'w+')
  fs.unlinkSync(file)
  fs.writeSync(fd, Buffer.alloc(size, fill), 0, size, 0)
  fs.fsyncSync(fd)
  return fd
}

/** The bytes of `fd` from `offset`. */
export function readAt(fd: number, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length)
  const n = fs.readSync(fd, out, 0, length, offset)
  return out.subarray(0, n)
}

/** Allocated 512-byte blocks of `fd` (st_blocks). */
export function blocks(fd: number): number {
  return fs.fstatSync(fd).blocks
}

/** Why file systems cannot be mounted here, or null when they can. */
export const mountUnavailable: string | null = (() => {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`
  if (process.getuid?.() !== 0) return 'not root'
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-mount-probe-'))
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' })
    if (r.status !== 0) return `mount failed: ${r.error?.message ?? r.stderr.trim()}`
    spawnSync('umount', [dir])
    return null
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})()

/** Mounts a `type` file system with `options` on a new directory for `fn`, then unmounts it. */
export async function withMount<T>(type: string, options: string, fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vq-${type}-`))
  const args = ['-t', type, ...(options ? ['-o', options] : []), type, dir]
  const r = spawnSync('mount', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`)
  try {
    return await fn(dir)
  } finally {
    spawnSync('umount', ['-l', dir])
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
