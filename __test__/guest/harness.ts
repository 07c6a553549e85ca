// Shared set-up of the real-guest tests: a temporary sparse disk file and a backend
// serving it, always stopped and removed afterwards, and assertions on guest runs.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { ExecutionContext } from 'ava'
import type { GuestResult } from '../../scripts/guest/qemu'
import type { BackendFactory, BackendOptions, RunningBackend } from '../../scripts/guest/backends'

export interface DiskCtx {
  dir: string
  file: string
  socket: string
  backend: RunningBackend
}

export const MiB = 1 << 20

/** A fresh sparse disk of `sizeMiB` (after `init` fills it, if given) served by `factory` while `fn` runs. */
export async function withBackend<T>(
  t: ExecutionContext,
  factory: BackendFactory,
  opts: {
    sizeMiB: number
    init?: (file: string) => void
    /** Whether the backend must still be running when fn ends (default true; false when fn stops it). */
    expectAlive?: boolean
  } & Omit<BackendOptions, 'file' | 'socket'>,
  fn: (ctx: DiskCtx) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-disk-'))
  const file = path.join(dir, 'disk.img')
  const socket = path.join(dir, 'vhost.sock')
  fs.writeFileSync(file, '')
  fs.truncateSync(file, opts.sizeMiB * MiB)
  opts.init?.(file)
  const backend = await factory.start({ file, socket, readOnly: opts.readOnly, queues: opts.queues })
  try {
    const result = await fn({ dir, file, socket, backend })
    if (opts.expectAlive !== false) t.true(backend.alive(), `${factory.name} is still running after the test's guests`)
    return result
  } catch (e) {
    t.log(`${factory.name} output:\n${backend.output()}`)
    throw e
  } finally {
    await backend.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Asserts the guest booted, found its disk, ran the script to the end with status 0 and reported no rig error. */
export function assertRan(t: ExecutionContext, r: GuestResult): void {
  const ok = r.rc === 0 && !r.timedOut && r.errors.length === 0 && r.disk === '/dev/vda'
  if (!ok) t.log(`guest console:\n${r.serial}\nQEMU stderr:\n${r.stderr}`)
  t.is(r.disk, '/dev/vda', 'the guest found its virtio disk')
  t.deepEqual(r.errors, [], 'no rig errors')
  t.false(r.timedOut, 'the guest finished in time')
  t.is(r.rc, 0, 'the test script succeeded')
}

/** The RESULT lines of op `op` with `key=value` (e.g. tag=512). */
export function results(r: GuestResult, key: string, value: string): Record<string, string>[] {
  return r.results.filter((x) => x[key] === value)
}
