// The package's own vhost-user-blk backend as a real-guest test backend: `npm run
// vhost-user-blk` (examples/virtio-blk/vhost-user.ts) in a child process, ready once it
// prints "listening on PATH".
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import { repoRoot } from './rig'

export interface NodeBackendOptions {
  file: string
  socket: string
  readOnly?: boolean | undefined
  queues?: number | undefined
  serial?: string | undefined
  /** `--io` (where file I/O runs; the CLI's default is auto). */
  io?: 'sync' | 'threads' | 'auto' | undefined
  /** Milliseconds to wait for "listening on" (default 20000: tsx compiles on first start). */
  timeoutMs?: number
}

export interface NodeBackendProcess {
  process: ChildProcess
  output(): string
  /** SIGTERM (the CLI drains, flushes and exits 0), then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** The command line the backend runs with (also what the README shows). */
export function nodeBackendArgs(o: NodeBackendOptions): string[] {
  return [
    '--import',
    'tsx',
    path.join('examples', 'virtio-blk', 'vhost-user.ts'),
    '--socket',
    o.socket,
    '--disk',
    o.file,
    ...(o.readOnly ? ['--read-only'] : []),
    '--queues',
    String(o.queues ?? 1),
    ...(o.serial ? ['--serial', o.serial] : []),
    ...(o.io ? ['--io', o.io] : []),
  ]
}

/** Starts the backend and resolves once it listens; rejects with its output if it exits or stays silent. */
export async function startNodeBackend(o: NodeBackendOptions): Promise<NodeBackendProcess> {
  const child = spawn(process.execPath, nodeBackendArgs(o), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null
  const gone = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal }
      resolve(exited)
    }),
  )
  const backend: NodeBackendProcess = {
    process: child,
    output: () => out,
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), 5000)
        await gone
        clearTimeout(t)
      }
      fs.rmSync(o.socket, { force: true })
      return exited!
    },
  }
  const timeoutMs = o.timeoutMs ?? 20000
  const deadline = Date.now() + timeoutMs
  while (!/^listening on /m.test(out)) {
    if (exited !== null)
      throw new Error(`vhost-user-blk ended before listening (${JSON.stringify(exited)}): ${out.trim()}`)
    if (Date.now() > deadline) {
      await backend.stop()
      throw new Error(`vhost-user-blk printed no "listening on" within ${timeoutMs} ms: ${out.trim()}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  return backend
}
