// The vhost-user-blk backends the real-guest tests (__test__/guest.spec.ts) and the
// measurements (scripts/guest/measure.ts) run against. Each is a factory:
// given a disk FILE and a socket path, start serving FILE on the socket and resolve
// once the socket accepts connections. Adding a backend to every real-guest test is
// one entry in `allBackends`.
import { findRig } from './rig'
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
}

export interface BackendFactory {
  name: string
  /** null when it can run here, else why not (and how to fix it). */
  unavailable(): string | null
  start(o: BackendOptions): Promise<RunningBackend>
  /** The ID its device answers GET_ID with (the guest's /sys/block/vda/serial), when known. */
  serial?: string
}

/** qemu-storage-daemon serving the file (aio=threads, cache.direct=off unless told otherwise). */
export function storageDaemonBackend(
  name: string,
  tuning: Pick<StorageDaemonOptions, 'aio' | 'direct'> = {},
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
      const d = await startStorageDaemon({ bin: rig!.storageDaemon, ...tuning, ...o })
      return {
        stop: () => d.stop(),
        alive: () => d.process.exitCode === null && d.process.signalCode === null,
        output: () => d.output(),
      }
    },
  }
}

export const qemuStorageDaemon = storageDaemonBackend('qemu-storage-daemon')

// When the package's own backend lands (`npm run vhost-user-blk`), its factory goes here:
//   { name: 'node', unavailable: () => null, start: (o) => startNodeBackend(o) }
export const allBackends: BackendFactory[] = [qemuStorageDaemon]

/** The backends to test: all, or those named in VIRTIO_QUEUE_GUEST_BACKENDS (comma-separated). */
export function selectedBackends(): BackendFactory[] {
  const names = process.env.VIRTIO_QUEUE_GUEST_BACKENDS?.split(',').map((s) => s.trim())
  if (!names) return allBackends
  const unknown = names.filter((n) => !allBackends.some((b) => b.name === n))
  if (unknown.length) throw new Error(`VIRTIO_QUEUE_GUEST_BACKENDS names unknown backends: ${unknown.join(', ')}`)
  return allBackends.filter((b) => names.includes(b.name))
}
