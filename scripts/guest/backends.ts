// The vhost-user-blk backends the real-guest tests (__test__/guest.spec.ts) and the
// measurements (scripts/guest/measure.ts) run against. Each is a factory:
// given a disk FILE and a socket path, start serving FILE on the socket and resolve
// once the socket accepts connections. Adding a backend to every real-guest test is
// one entry in `allBackends`.
import { loadVhostUser } from '../../examples/virtio-blk/vhost-user-api'
import { startNodeBackend } from './node-backend'
import { findRig } from './rig'
import { startBackendProcess } from './process'
import { type StorageDaemonOptions, startStorageDaemon } from './qsd'

export interface BackendOptions {
  /** The raw disk image to serve (exists, sized by the test). */
  file: string
  /** Where to listen (a fresh path in a temporary folder). */
  socket: string
  readOnly?: boolean
  /** Queues to offer (VIRTIO_BLK_F_MQ when > 1). */
  queues?: number
}

export interface RunningBackend {
  /** Stops it (SIGTERM, then SIGKILL) and resolves once it has exited; may be called again after. */
  stop(): Promise<void>
  /** Whether its process is still running (a frontend's death must not end it). */
  alive(): boolean
  /** What it logged, for failure messages. */
  output(): string
  /** Its process id, for measurements that watch it (notifications.ts). */
  pid?: number
}

export interface BackendFactory {
  name: string
  /** null when it can run here, else why not (and how to fix it). Where guests are required (CI), a failure. */
  unavailable(): string | null
  /**
   * null, or why this backend is not part of this build yet (its code has not landed):
   * then its tests are skipped with that message even where guests are required.
   */
  notYetBuilt?(): string | null
  start(o: BackendOptions): Promise<RunningBackend>
  /** The ID its device answers GET_ID with (the guest's /sys/block/vda/serial), when known. */
  serial?: string
}

/** qemu-storage-daemon serving the file (aio=threads, cache.direct=off unless told otherwise). */
export function storageDaemonBackend(
  name: string,
  tuning: Pick<StorageDaemonOptions, 'aio' | 'direct' | 'iothread'> = {},
): BackendFactory {
  return {
    name,
    serial: 'vhost_user_blk', // qemu-storage-daemon 7.2 answers GET_ID with this, whatever the export
    unavailable() {
      const { rig, missing } = findRig()
      return rig ? null : missing.join('; ')
    },
    async start(o) {
      const { rig } = findRig()
      return startStorageDaemon({ bin: rig!.storageDaemon, ...tuning, ...o })
    },
  }
}

export const qemuStorageDaemon = storageDaemonBackend('qemu-storage-daemon')

/**
 * A backend that is a command: `argv(o)` gives its command line for the options; it is
 * ready once the socket exists and (with `readyLine`) it printed a matching line; it is
 * stopped with SIGTERM (then SIGKILL). The package's own backend will be one of these:
 *   commandBackend('node', (o) => ['npm', 'run', '--silent', 'vhost-user-blk', '--', '--socket', o.socket,
 *     '--disk', o.file, '--queues', String(o.queues ?? 1), ...(o.readOnly ? ['--read-only'] : [])],
 *     { readyLine: /listening on/ })
 */
export function commandBackend(
  name: string,
  argv: (o: BackendOptions) => string[],
  extra: { readyLine?: RegExp; serial?: string; unavailable?: () => string | null; timeoutMs?: number } = {},
): BackendFactory {
  return {
    name,
    serial: extra.serial,
    unavailable: extra.unavailable ?? (() => null),
    start(o) {
      const [cmd, ...args] = argv(o)
      return startBackendProcess({
        cmd,
        args,
        socket: o.socket,
        readyLine: extra.readyLine,
        timeoutMs: extra.timeoutMs,
      })
    },
  }
}

const NODE_SERIAL = 'virtio-queue-blk'

/**
 * The package's own backend: `npm run vhost-user-blk` (examples/virtio-blk/vhost-user.ts),
 * with its default `--io auto`, or with `io` (named `node-sync`, `node-threads`).
 */
export function nodeBackendWith(name: string, io?: 'sync' | 'threads' | 'auto'): BackendFactory {
  return {
    name,
    serial: NODE_SERIAL,
    notYetBuilt() {
      const api = loadVhostUser()
      return !api.ok && api.missing ? api.reason : null
    },
    unavailable() {
      const { rig, missing } = findRig()
      if (!rig) return missing.join('; ')
      const api = loadVhostUser()
      return api.ok ? null : api.reason
    },
    async start(o) {
      const b = await startNodeBackend({ ...o, serial: NODE_SERIAL, io })
      return {
        stop: async () => {
          await b.stop()
        },
        alive: () => b.process.exitCode === null && b.process.signalCode === null,
        output: () => b.output(),
        pid: b.process.pid,
      }
    },
  }
}

export const nodeBackend: BackendFactory = nodeBackendWith('node')

/** The Node disk with every pop's I/O on the threadpool (`--io threads`): the real-guest tests run it too. */
export const nodeThreadsBackend: BackendFactory = nodeBackendWith('node-threads', 'threads')

export const allBackends: BackendFactory[] = [qemuStorageDaemon, nodeBackend, nodeThreadsBackend]

/** The backends to test: all, or those named in VIRTIO_QUEUE_GUEST_BACKENDS (comma-separated). */
export function selectedBackends(): BackendFactory[] {
  const names = process.env.VIRTIO_QUEUE_GUEST_BACKENDS?.split(',').map((s) => s.trim())
  if (!names) return allBackends
  const unknown = names.filter((n) => !allBackends.some((b) => b.name === n))
  if (unknown.length) throw new Error(`VIRTIO_QUEUE_GUEST_BACKENDS names unknown backends: ${unknown.join(', ')}`)
  return allBackends.filter((b) => names.includes(b.name))
}
