// What the guest measurements (measure.ts, notifications.ts) run a guest's disk on: every
// vhost-user-blk backend of backends.ts, qemu-storage-daemon variants, and QEMU's built-in
// virtio-blk, each serving a given disk file.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { allBackends, type BackendFactory, nodeBackendWith, storageDaemonBackend } from './backends'
import type { GuestDisk } from './qemu'
import { hasIoUring, type Rig } from './rig'

export interface Served {
  disk: GuestDisk
  stop(): Promise<void>
  output(): string
  /** The backend's process id (none for the built-in device, which is QEMU itself). */
  pid?: number
}

export interface Target {
  name: string
  /** Serves `file`; resolves with the guest's disk and a stop function. */
  start(file: string, dir: string): Promise<Served>
}

function vhostTarget(b: BackendFactory): Target {
  return {
    name: b.name,
    async start(file, dir) {
      const socket = path.join(dir, `${b.name}.sock`)
      const running = await b.start({ file, socket })
      return {
        disk: { kind: 'vhost-user', socket },
        stop: () => running.stop(),
        output: () => running.output(),
        pid: running.pid,
      }
    },
  }
}

/**
 * qemu-storage-daemon with its export in an iothread, with QEMU's default poll-max-ns
 * (32 µs), with polling off, and with a long one: whether polling is what makes it faster.
 * Only run when named (--targets).
 */
const namedOnlyTargets: BackendFactory[] = [
  storageDaemonBackend('qsd-iothread', { iothread: {} }),
  storageDaemonBackend('qsd-iothread-poll0', { iothread: { pollMaxNs: 0 } }),
  storageDaemonBackend('qsd-iothread-poll256', { iothread: { pollMaxNs: 256000 } }),
  // The Node disk with its file I/O always on the event loop (node-threads is a backend).
  nodeBackendWith('node-sync', 'sync'),
]

/**
 * The targets that can run here: every available backend (qemu-storage-daemon with
 * aio=threads, the Node disk), qsd-io_uring when built in, and builtin (QEMU's virtio-blk,
 * aio=threads, cache=writeback); with `only`, those of them and of the iothread variants
 * that it names, in its order.
 */
export function targets(rig: Rig, only: string[] | null): Target[] {
  const all: Target[] = allBackends.filter((b) => b.unavailable() === null).map(vhostTarget)
  if (hasIoUring(rig.storageDaemon)) all.push(vhostTarget(storageDaemonBackend('qsd-io_uring', { aio: 'io_uring' })))
  all.push({
    name: 'builtin',
    async start(file) {
      return {
        disk: { kind: 'virtio-blk', file, aio: 'threads', cache: 'writeback' },
        stop: async () => {},
        output: () => '',
      }
    },
  })
  if (!only) return all
  const named = [...all, ...namedOnlyTargets.map(vhostTarget)]
  const unknown = only.filter((n) => !named.some((t) => t.name === n))
  if (unknown.length)
    throw new Error(`unknown targets: ${unknown.join(', ')} (known: ${named.map((t) => t.name).join(', ')})`)
  return only.map((n) => named.find((t) => t.name === n)!)
}

/** A new, empty (sparse) disk file of `bytes` in `dir`, replacing the previous point's. */
export function freshDisk(dir: string, bytes: number): string {
  const file = path.join(dir, 'disk.img')
  fs.rmSync(file, { force: true })
  fs.writeFileSync(file, '')
  fs.truncateSync(file, bytes)
  return file
}
