// qemu-storage-daemon as a vhost-user-blk backend: the reference backend the real-guest
// tests and measurements run against until (and beside) the package's own.
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'

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
  /** Milliseconds to wait for the socket (default 10000). */
  timeoutMs?: number
}

export interface StorageDaemon {
  socket: string
  process: ChildProcess
  /** Everything it printed so far. */
  output(): string
  /** SIGTERM, then SIGKILL after 3 s; resolves when it has exited. */
  stop(): Promise<void>
}

/** Starts qemu-storage-daemon exporting `file` over vhost-user-blk and resolves once the socket exists. */
export async function startStorageDaemon(o: StorageDaemonOptions): Promise<StorageDaemon> {
  fs.rmSync(o.socket, { force: true })
  const aio = o.aio ?? 'threads'
  const direct = o.direct ? 'on' : 'off'
  // aio=native needs O_DIRECT; discard=unmap lets DISCARD punch holes in the file.
  const args = [
    '--blockdev',
    `driver=file,node-name=file0,filename=${o.file},aio=${aio},cache.direct=${direct},discard=unmap${o.readOnly ? ',read-only=on' : ''}`,
    '--blockdev',
    `driver=raw,node-name=disk0,file=file0,discard=unmap${o.readOnly ? ',read-only=on' : ''}`,
    '--export',
    `type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=${o.socket},writable=${o.readOnly ? 'off' : 'on'},num-queues=${o.queues ?? 1}`,
  ]
  const child = spawn(o.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  let exited: string | null = null
  const gone = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exited = `exit code ${code} signal ${signal}`
      resolve()
    }),
  )
  const daemon: StorageDaemon = {
    socket: o.socket,
    process: child,
    output: () => out,
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), 3000)
        await gone
        clearTimeout(t)
      }
      fs.rmSync(o.socket, { force: true })
    },
  }
  const deadline = Date.now() + (o.timeoutMs ?? 10000)
  for (;;) {
    if (exited !== null) throw new Error(`qemu-storage-daemon ${args.join(' ')} ended (${exited}): ${out.trim()}`)
    try {
      if (fs.statSync(o.socket).isSocket()) return daemon
    } catch {}
    if (Date.now() > deadline) {
      await daemon.stop()
      throw new Error(`qemu-storage-daemon made no socket at ${o.socket} within ${o.timeoutMs ?? 10000} ms: ${out}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}
