// The three vhost-user-blk backends compared by compare.ts: how each is found, started on a
// socket and a disk file, told apart from its launcher (the PID whose CPU time counts), and
// stopped. A backend that cannot run here is "unavailable" with the reason, not an error.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

export const ROOT = path.resolve(__dirname, '..', '..')
export const BACKENDS = ['node', 'qsd', 'native'] as const
export type BackendName = (typeof BACKENDS)[number]

export interface Running {
  name: BackendName
  socket: string
  /** The process doing the work (for the Node backend: the node process under npm). */
  pid: number
  child: ChildProcess
  log: string[]
}

export interface Spec {
  name: BackendName
  /** Why it cannot run here, or null. */
  unavailable: string | null
  describe: string
  /** `extra`: more command-line arguments (the Node disk's --heap-stats). */
  start(socket: string, disk: string, queues: number, extra?: string[]): Promise<Running>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Resolves once `ready(log)` holds, rejects when the process exits first or after `ms`. */
async function started(
  name: BackendName,
  child: ChildProcess,
  socket: string,
  ready: (log: string) => boolean,
  ms: number,
): Promise<Running> {
  const log: string[] = []
  const take = (b: Buffer) => {
    log.push(b.toString())
    if (log.length > 200) log.shift()
  }
  child.stdout?.on('data', take)
  child.stderr?.on('data', take)
  let exited: string | null = null
  child.on('exit', (code, signal) => (exited = `exited (${signal ?? code}) before it was ready`))
  child.on('error', (e) => (exited = e.message))
  const end = Date.now() + ms
  while (!ready(log.join(''))) {
    if (exited !== null) throw new Error(`${name}: ${exited}\n${log.join('')}`)
    if (Date.now() > end) {
      child.kill('SIGKILL')
      throw new Error(`${name}: not ready after ${ms} ms\n${log.join('')}`)
    }
    await sleep(20)
  }
  return { name, socket, pid: child.pid!, child, log }
}

/** Every descendant of `pid` (from the parent field of /proc/N/stat). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>()
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8')
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const out: number[] = []
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp !== p) continue
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

function commandName(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return ''
  }
}

export async function stop(r: Running): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return
  const gone = new Promise<void>((res) => r.child.once('exit', () => res()))
  // The whole group: npm's child is the node process.
  try {
    process.kill(-r.child.pid!, 'SIGTERM')
  } catch {
    r.child.kill('SIGTERM')
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-r.child.pid!, 'SIGKILL')
    } catch {}
  }, 5000)
  await gone
  clearTimeout(timer)
}

function nodeBackend(): Spec {
  const example = path.join(ROOT, 'examples', 'virtio-blk', 'vhost-user.ts')
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  let unavailable: string | null = null
  if (!fs.existsSync(example)) unavailable = 'examples/virtio-blk/vhost-user.ts is not in this checkout'
  else if (!pkg.exports?.['./vhost-user']) unavailable = "package.json exports no './vhost-user' subpath"
  else if (!pkg.scripts?.['vhost-user-blk']) unavailable = 'package.json has no vhost-user-blk script'
  return {
    name: 'node',
    unavailable,
    describe: 'npm run vhost-user-blk (the package: examples/virtio-blk over virtio-queue/vhost-user)',
    async start(socket, disk, queues, extra = []) {
      const child = spawn(
        'npm',
        [
          'run',
          '--silent',
          'vhost-user-blk',
          '--',
          '--socket',
          socket,
          '--disk',
          disk,
          '--queues',
          `${queues}`,
          ...extra,
        ],
        {
          cwd: ROOT,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      const r = await started('node', child, socket, (l) => l.includes('listening on'), 60_000)
      // The work is done by the node process npm started (through sh; a launcher such as the
      // tsx CLI may start another under it): count the deepest one.
      const node = descendants(r.pid)
        .filter((p) => commandName(p) === 'node')
        .at(-1)
      return { ...r, pid: node ?? r.pid }
    },
  }
}

export type QsdAio = 'io_uring' | 'threads'

function qsdBackend(aio: QsdAio, iothread: boolean): Spec {
  const found = spawnSync('qemu-storage-daemon', ['--version'], { encoding: 'utf8' })
  const unavailable =
    found.status === 0 ? null : 'qemu-storage-daemon not found (Debian: apt-get install -y qemu-system-common)'
  const args = (socket: string, disk: string, queues: number | string) => [
    ...(iothread ? ['--object', 'iothread,id=io0'] : []),
    '--blockdev',
    `driver=file,node-name=disk,filename=${disk},cache.direct=off,aio=${aio}`,
    '--export',
    `type=vhost-user-blk,id=exp,node-name=disk,addr.type=unix,addr.path=${socket},num-queues=${queues},writable=on${iothread ? ',iothread=io0' : ''}`,
  ]
  return {
    name: 'qsd',
    unavailable,
    describe: `qemu-storage-daemon ${(found.stdout ?? '').split('\n')[0]?.replace(/^qemu-storage-daemon version /, '')} ${args('SOCKET', 'DISK', 'N').join(' ')}`,
    async start(socket, disk, queues) {
      fs.rmSync(socket, { force: true })
      const child = spawn('qemu-storage-daemon', args(socket, disk, queues), {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      // It prints nothing when ready: the socket appears.
      return started('qsd', child, socket, () => fs.existsSync(socket), 10_000)
    },
  }
}

export const TARGET = path.join(ROOT, 'target', 'release')

function nativeBackend(): Spec {
  return {
    name: 'native',
    unavailable: null,
    describe: 'vu-blk-native (bench/vhost-user: vhost-user-backend 0.17 + virtio-queue Reader/Writer)',
    async start(socket, disk, queues) {
      const child = spawn(
        path.join(TARGET, 'vu-blk-native'),
        ['--socket', socket, '--disk', disk, '--queues', `${queues}`],
        {
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      return started('native', child, socket, (l) => l.includes('listening on'), 10_000)
    },
  }
}

export function specs(aio: QsdAio, iothread: boolean): Record<BackendName, Spec> {
  return { node: nodeBackend(), qsd: qsdBackend(aio, iothread), native: nativeBackend() }
}
