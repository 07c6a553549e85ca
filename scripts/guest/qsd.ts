// qemu-storage-daemon as a vhost-user-blk backend: the reference backend the real-guest
// tests and measurements run against until (and beside) the package's own.
import { type BackendProcess, startBackendProcess } from './process'

export interface StorageDaemonOptions {
  /** qemu-storage-daemon's path (findRig().rig.storageDaemon). */
  bin: string
  /** The disk image (raw). */
  file: string
  /** The vhost-user socket path to listen on (removed first if it exists). */
  socket: string
  readOnly?: boolean
  /** num-queues of the export (default 1). */
  queues?: number
  /** QEMU's file driver aio mode (default threads). */
  aio?: 'threads' | 'io_uring' | 'native'
  /** cache.direct of the file node (default false: through the host page cache). */
  direct?: boolean
  /**
   * Run the export in an iothread (`--object iothread`) instead of the main loop, with
   * QEMU's adaptive polling up to `pollMaxNs` (QEMU's default 32768 when left out; 0 turns
   * it off). Only an iothread's AioContext can poll; qemu-storage-daemon's main loop never
   * does. (In QEMU 7.2 the export's kick handlers have no poll callback, which disables
   * polling for the whole context: these settings change nothing measurable.)
   */
  iothread?: { pollMaxNs?: number }
  /** Milliseconds to wait for the socket (default 10000). */
  timeoutMs?: number
}

/** Starts qemu-storage-daemon exporting `file` over vhost-user-blk and resolves once the socket exists. */
export function startStorageDaemon(o: StorageDaemonOptions): Promise<BackendProcess> {
  const aio = o.aio ?? 'threads'
  const direct = o.direct ? 'on' : 'off'
  // aio=native needs O_DIRECT; discard=unmap lets DISCARD punch holes in the file.
  const iothread = o.iothread
    ? ['--object', `iothread,id=io0${o.iothread.pollMaxNs === undefined ? '' : `,poll-max-ns=${o.iothread.pollMaxNs}`}`]
    : []
  const args = [
    ...iothread,
    '--blockdev',
    `driver=file,node-name=file0,filename=${o.file},aio=${aio},cache.direct=${direct},discard=unmap${o.readOnly ? ',read-only=on' : ''}`,
    '--blockdev',
    `driver=raw,node-name=disk0,file=file0,discard=unmap${o.readOnly ? ',read-only=on' : ''}`,
    '--export',
    `type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=${o.socket},writable=${o.readOnly ? 'off' : 'on'},num-queues=${o.queues ?? 1}${o.iothread ? ',iothread=io0' : ''}`,
  ]
  return startBackendProcess({ cmd: o.bin, args, socket: o.socket, timeoutMs: o.timeoutMs })
}
