// A backend process serving a vhost-user socket: started, watched until it is ready (the
// socket exists, and a ready line was printed when one is expected), and stopped.
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'

export interface BackendProcess {
  socket: string
  process: ChildProcess
  pid?: number
  /** Everything it printed (stdout and stderr) so far. */
  output(): string
  alive(): boolean
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited and its socket is gone. May be called again. */
  stop(): Promise<void>
}

export interface BackendProcessOptions {
  cmd: string
  args: string[]
  socket: string
  /** Also wait for a line of its output matching this (e.g. /listening on/). */
  readyLine?: RegExp
  /** Milliseconds to wait for readiness (default 10000). */
  timeoutMs?: number
}

/** Starts the command (after removing a stale socket) and resolves once it is ready; rejects with its output if it exits or times out first. */
export async function startBackendProcess(o: BackendProcessOptions): Promise<BackendProcess> {
  fs.rmSync(o.socket, { force: true })
  const child = spawn(o.cmd, o.args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  let exited: string | null = null
  const gone = new Promise<void>((resolve) => {
    child.on('error', (e) => {
      exited = `could not start: ${e.message}`
      resolve()
    })
    child.on('exit', (code, signal) => {
      exited = `exit code ${code} signal ${signal}`
      resolve()
    })
  })
  const handle: BackendProcess = {
    socket: o.socket,
    process: child,
    pid: child.pid,
    output: () => out,
    alive: () => exited === null,
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
  const what = `${o.cmd} ${o.args.join(' ')}`
  const timeoutMs = o.timeoutMs ?? 10000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited !== null) throw new Error(`${what} ended (${exited}) before it was ready: ${out.trim()}`)
    let ready = false
    try {
      ready = fs.statSync(o.socket).isSocket() && (!o.readyLine || o.readyLine.test(out))
    } catch {}
    if (ready) return handle
    if (Date.now() > deadline) {
      await handle.stop()
      throw new Error(`${what} was not ready (socket ${o.socket}) within ${timeoutMs} ms: ${out.trim()}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}
