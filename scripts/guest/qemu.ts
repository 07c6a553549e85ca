// Boots a real Linux guest under QEMU (TCG) with one virtio-blk disk, runs a shell
// script in it and returns what it reported. The disk is either a vhost-user-blk
// device on a backend's socket (any backend: qemu-storage-daemon, the package's own)
// or QEMU's built-in virtio-blk on a file (for comparison).
//
// The script runs as /test.sh under busybox sh, with $DISK the disk's device
// (/dev/vda) and PATH holding busybox, vqload (scripts/guest/vqload.c), mke2fs, e2fsck
// and blkdiscard. Lines "RESULT key=value ..." it prints are parsed; its exit status
// is `rc`. The guest can also read lines the host sends with send() (serial console).
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { cpioNewc } from './cpio'
import type { Rig } from './rig'

export type GuestDisk =
  | {
      kind: 'vhost-user'
      /** The backend's listening socket. */
      socket: string
      /** num-queues of vhost-user-blk-pci (default 1). */
      queues?: number
      /** The chardev's reconnect= seconds: QEMU reconnects when the backend goes away and comes back. */
      reconnect?: number
    }
  | {
      kind: 'virtio-blk'
      file: string
      readOnly?: boolean
      /** -drive aio= (default threads). */
      aio?: 'threads' | 'io_uring' | 'native'
      /** -drive cache= (default writeback: through the host page cache, like cache.direct=off). */
      cache?: 'none' | 'writeback' | 'writethrough' | 'directsync' | 'unsafe'
      queues?: number
    }

export interface GuestOptions {
  rig: Rig
  /** The shell script the guest runs. */
  script: string
  disk?: GuestDisk
  /** vCPUs (default 1). */
  smp?: number
  /** Guest RAM in MiB (default 512); shared memfd RAM, as vhost-user needs. */
  memoryMiB?: number
  /** Kill QEMU after this many ms (default 60000). */
  timeoutMs?: number
  /** Called with each line of the serial console as it arrives. */
  onLine?: (line: string) => void
}

export interface GuestResult {
  /** The script's exit status, or null when the guest did not get to the end (killed, timed out, crashed). */
  rc: number | null
  /** Every RESULT line, in order, as key/value maps. */
  results: Record<string, string>[]
  /** VQ-ERROR lines: the rig itself failed (a module that did not load...). */
  errors: string[]
  /** Guest uptime in seconds when the disk was ready and the script started (null if never). */
  bootSeconds: number | null
  /** The device the guest found (/dev/vda), or "none". */
  disk: string | null
  /** The whole serial console, and QEMU's own stderr. */
  serial: string
  stderr: string
  exit: { code: number | null; signal: NodeJS.Signals | null }
  timedOut: boolean
  /** True when kill() ended it. */
  killed: boolean
  wallMs: number
}

export interface Guest {
  /** The process id of coreutils `timeout`, whose child is QEMU. */
  pid: number | undefined
  /** Resolves with the first console line (past or future) that matches, rejects if QEMU ends first or after timeoutMs. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** Sends a line to the guest's console (the script reads it with `read`). */
  send(line: string): void
  /** Kills QEMU (SIGKILL by default): the guest dies mid-whatever. */
  kill(signal?: NodeJS.Signals): void
  done: Promise<GuestResult>
}

/** Parses "RESULT a=1 b=x" into { a: '1', b: 'x' }. */
export function parseResult(line: string): Record<string, string> | null {
  const m = /^RESULT (.*)$/.exec(line.trim())
  if (!m) return null
  const r: Record<string, string> = {}
  for (const kv of m[1].split(/\s+/)) {
    const i = kv.indexOf('=')
    if (i > 0) r[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return r
}

export function qemuArgs(o: GuestOptions, initrd: string): string[] {
  const mem = o.memoryMiB ?? 512
  const args = [
    '-accel',
    'tcg',
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    '-smp',
    String(o.smp ?? 1),
    '-m',
    `${mem}M`,
    '-object',
    `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    '-machine',
    'memory-backend=mem',
    '-kernel',
    o.rig.kernel,
    '-initrd',
    initrd,
    '-append',
    'console=ttyS0 quiet panic=-1',
  ]
  const d = o.disk
  if (d?.kind === 'vhost-user') {
    args.push('-chardev', `socket,id=c0,path=${d.socket}${d.reconnect ? `,reconnect=${d.reconnect}` : ''}`)
    args.push('-device', `vhost-user-blk-pci,chardev=c0,num-queues=${d.queues ?? 1}`)
  } else if (d?.kind === 'virtio-blk') {
    const aio = d.aio ?? 'threads'
    const cache = d.cache ?? (aio === 'native' ? 'none' : 'writeback')
    args.push(
      '-drive',
      `file=${d.file},if=none,id=d0,format=raw,cache=${cache},aio=${aio},discard=unmap${d.readOnly ? ',readonly=on' : ''}`,
    )
    args.push('-device', `virtio-blk-pci,drive=d0,num-queues=${d.queues ?? 1}`)
  }
  return args
}

/** Boots the guest; see Guest. */
export function startGuest(o: GuestOptions): Guest {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-guest-'))
  const initrd = path.join(tmp, 'initrd.cpio')
  fs.writeFileSync(
    initrd,
    Buffer.concat([fs.readFileSync(o.rig.initrd), cpioNewc([{ name: 'test.sh', data: o.script }])]),
  )
  const started = Date.now()
  const timeoutMs = o.timeoutMs ?? 60000
  // coreutils timeout bounds QEMU's life even if this process dies without killing it; it
  // leads its own process group, so kill() ends both at once.
  const child = spawn(
    'timeout',
    ['-s', 'KILL', String(Math.ceil(timeoutMs / 1000) + 10), o.rig.qemu, ...qemuArgs(o, initrd)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  )
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      child.kill(signal)
    }
  }
  const lines: string[] = []
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = []
  let serial = ''
  let stderr = ''
  let partial = ''
  let timedOut = false
  let killed = false
  let ended = false
  const onEnd: (() => void)[] = []

  const onLineInternal = (line: string) => {
    lines.push(line)
    o.onLine?.(line)
    for (let i = waiters.length - 1; i >= 0; i--) {
      const m = waiters[i].re.exec(line)
      if (m) {
        waiters[i].resolve(m)
        waiters.splice(i, 1)
      }
    }
  }
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (d: string) => {
    serial += d
    partial += d
    const parts = partial.split(/\r?\n/)
    partial = parts.pop() ?? ''
    for (const p of parts) onLineInternal(p.replace(/\r/g, ''))
  })
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => (stderr += d))
  child.stdin!.on('error', () => {}) // QEMU gone: nothing to send to

  const timer = setTimeout(() => {
    timedOut = true
    killGroup('SIGKILL')
  }, timeoutMs)

  const done = new Promise<GuestResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      ended = true
      if (partial) onLineInternal(partial)
      for (const f of onEnd) f()
      fs.rmSync(tmp, { recursive: true, force: true })
      const results: Record<string, string>[] = []
      const errors: string[] = []
      let rc: number | null = null
      let bootSeconds: number | null = null
      let disk: string | null = null
      for (const l of lines) {
        const r = parseResult(l)
        if (r) results.push(r)
        const e = /^VQ-ERROR (.*)/.exec(l)
        if (e) errors.push(e[1])
        const x = /^VQ-EXIT rc=(\d+)/.exec(l)
        if (x) rc = Number(x[1])
        const ready = /^VQ-READY uptime=([\d.]+) disk=(\S+)/.exec(l)
        if (ready) {
          bootSeconds = Number(ready[1])
          disk = ready[2]
        }
      }
      resolve({
        rc,
        results,
        errors,
        bootSeconds,
        disk,
        serial,
        stderr,
        exit: { code, signal },
        timedOut,
        killed,
        wallMs: Date.now() - started,
      })
    })
  })

  return {
    done,
    pid: child.pid,
    send(line: string) {
      if (!ended) child.stdin!.write(line + '\n')
    },
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      killed = true
      killGroup(signal)
    },
    waitFor(re: RegExp, timeoutMs = 30000) {
      for (const l of lines) {
        const m = re.exec(l)
        if (m) return Promise.resolve(m)
      }
      if (ended) return Promise.reject(new Error(`guest ended before printing ${re}\n${serial}`))
      return new Promise((resolve, reject) => {
        const w = {
          re,
          resolve: (m: RegExpMatchArray) => {
            clearTimeout(t)
            resolve(m)
          },
        }
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1)
          reject(new Error(`no console line matching ${re} within ${timeoutMs} ms\n${serial}`))
        }, timeoutMs)
        waiters.push(w)
        onEnd.push(() => {
          if (waiters.includes(w)) {
            clearTimeout(t)
            reject(new Error(`guest ended before printing ${re}\n${serial}\n${stderr}`))
          }
        })
      })
    },
  }
}

/** Boots the guest, runs the script to its end (or the timeout) and returns what happened. */
export function runGuest(o: GuestOptions): Promise<GuestResult> {
  return startGuest(o).done
}

/** The last RESULT line whose op= is `op` (or that has key `op` when it has no op=). */
export function resultOf(r: GuestResult, op: string): Record<string, string> | undefined {
  for (let i = r.results.length - 1; i >= 0; i--) {
    if (r.results[i].op === op || (r.results[i].op === undefined && op in r.results[i])) return r.results[i]
  }
  return undefined
}
