// npm run bench:vhost-user -- --heap [options]: does the Node disk allocate per request?
// One long verified run per point (vu-loadgen --requests N) against `npm run vhost-user-blk
// -- --heap-stats S`, a fresh disk process per run; the disk prints, from inside its own
// process, a `heap-stats` line (examples/virtio-blk/heap-stats.ts) every S seconds and when
// the frontend connects and leaves: heap used after a forced full GC, RSS, V8 heap bytes
// allocated, scavenges, full collections V8 started itself.
//
//   --requests N        verified requests per run (default 10000000; k/m suffixes)
//   --qd N              queue depth per queue (default 32)
//   --queues 1,2        queue counts (default 1,2)
//   --rw read,rw70      request mixes, as vu-loadgen's --rw (default read,rw70)
//   --bs BYTES          request size (default 4096)
//   --interval S        seconds between heap-stats lines (default 1)
//   --disk-mib N        disk file size in /dev/shm (default 256)
//   --max-bytes B       exit 1 if a run's steady state allocates more than B bytes per request
//   --max-scavenges X   ... or runs more than X scavenges per million requests
//   --json              one JSON object on stdout
//
// The steady state of a run is from the first interval line at which 10% of its requests
// are done (prefill, connection and warm-up are behind) to the last interval line before the
// frontend leaves; a run too short for two such lines uses its connect and disconnect lines.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { HeapSample } from '../../examples/virtio-blk/heap-stats'
import { type Running, specs, stop, TARGET } from './backends'
import { cargoBuild, makeDisk } from './build'

interface HeapOptions {
  requests: number
  qd: number
  queues: number[]
  rw: string[]
  bs: number
  interval: number
  diskMib: number
  maxBytes: number | null
  maxScavenges: number | null
  json: boolean
}

function parse(argv: string[]): HeapOptions {
  const o: HeapOptions = {
    requests: 10_000_000,
    qd: 32,
    queues: [1, 2],
    rw: ['read', 'rw70'],
    bs: 4096,
    interval: 1,
    diskMib: 256,
    maxBytes: null,
    maxScavenges: null,
    json: false,
  }
  const num = (f: string, v = '') => {
    const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v)
    const n = m ? Number(m[1]) * ({ k: 1e3, K: 1e3, m: 1e6, M: 1e6 }[m[2]!] ?? 1) : Number.NaN
    if (!(n >= 0)) throw new Error(`${f}: expected a number, got ${v}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const [f, inline] = argv[i]!.split(/=(.*)/s)
    const v = () => inline ?? argv[++i]
    if (f === '--heap') continue
    if (f === '--requests') o.requests = num(f, v())
    else if (f === '--qd') o.qd = num(f, v())
    else if (f === '--queues') o.queues = (v() ?? '').split(',').map((x) => num(f, x))
    else if (f === '--rw') o.rw = (v() ?? '').split(',')
    else if (f === '--bs') o.bs = num(f, v())
    else if (f === '--interval') o.interval = num(f, v())
    else if (f === '--disk-mib') o.diskMib = num(f, v())
    else if (f === '--max-bytes') o.maxBytes = num(f, v())
    else if (f === '--max-scavenges') o.maxScavenges = num(f, v())
    else if (f === '--json') o.json = true
    else throw new Error(`unknown option ${f} with --heap (see the head of bench/vhost-user/heap.ts)`)
  }
  return o
}

/** Figures between two heap-stats lines. */
export interface HeapWindow {
  requests: number
  seconds: number
  bytesPerRequest: number
  scavengesPerMillion: number
  markCompacts: number
  heapStart: number
  heapEnd: number
  rssStart: number
  rssEnd: number
}

export function window(a: HeapSample, b: HeapSample): HeapWindow {
  const requests = b.requests - a.requests
  return {
    requests,
    seconds: (b.ms - a.ms) / 1000,
    bytesPerRequest: (b.allocatedBytes - a.allocatedBytes) / requests,
    scavengesPerMillion: ((b.scavenges - a.scavenges) * 1e6) / requests,
    markCompacts: b.markCompacts - a.markCompacts,
    heapStart: a.heapUsedAfterGc,
    heapEnd: b.heapUsedAfterGc,
    rssStart: a.rss,
    rssEnd: b.rss,
  }
}

/** The steady-state window of one run's lines (see the head of the file), and the whole run. */
export function steadyState(lines: HeapSample[]): { steady: HeapWindow; whole: HeapWindow; fallback: boolean } {
  const connect = lines.find((l) => l.event === 'connect')
  const disconnect = [...lines].reverse().find((l) => l.event === 'disconnect')
  if (!connect || !disconnect) throw new Error('the disk printed no heap-stats connect/disconnect lines')
  const inRun = lines.filter((l) => l.event === 'interval' && l.ms > connect.ms && l.ms < disconnect.ms)
  const from = connect.requests + 0.1 * (disconnect.requests - connect.requests)
  const first = inRun.find((l) => l.requests >= from)
  const last = inRun.at(-1)
  const whole = window(connect, disconnect)
  if (!first || !last || last === first || last.requests === first.requests)
    return { steady: whole, whole, fallback: true }
  return { steady: window(first, last), whole, fallback: false }
}

/** Collects the `heap-stats` lines a running disk prints. */
function collect(r: Running): HeapSample[] {
  const out: HeapSample[] = []
  let partial = ''
  r.child.stdout!.on('data', (b: Buffer) => {
    const text = partial + b.toString()
    const lines = text.split('\n')
    partial = lines.pop()!
    for (const l of lines) if (l.startsWith('heap-stats ')) out.push(JSON.parse(l.slice(11)))
  })
  return out
}

function loadgen(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(path.join(TARGET, 'vu-loadgen'), [...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (b) => (stdout += b))
    c.stderr.on('data', (b) => (stderr += b))
    c.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

const MiB = 1 << 20
const fmt = (w: HeapWindow) =>
  `${(w.requests / 1e6).toFixed(2)} M in ${w.seconds.toFixed(1)} s: ${w.bytesPerRequest.toFixed(2)} B/request, ` +
  `${w.scavengesPerMillion.toFixed(1)} scavenges/M, ${w.markCompacts} mark-compacts; heap after GC ` +
  `${(w.heapStart / MiB).toFixed(2)} -> ${(w.heapEnd / MiB).toFixed(2)} MiB, RSS ${(w.rssStart / MiB).toFixed(0)} -> ${(w.rssEnd / MiB).toFixed(0)} MiB`

export async function heapMain(argv: string[]): Promise<number> {
  const o = parse(argv)
  const say = (s: string) => (o.json ? process.stderr : process.stdout).write(`${s}\n`)
  cargoBuild()
  const node = specs('io_uring', true).node
  if (node.unavailable !== null) {
    say(`node backend unavailable: ${node.unavailable}`)
    return 1
  }
  const disk = makeDisk(o.diskMib)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vu-heap-'))
  const seed = Date.now()
  const load0 = os.loadavg()[0]!
  say(
    `${os.cpus().length} CPUs; Node ${process.version}; ${o.requests} requests per run, qd ${o.qd}, ${o.bs} B; ` +
      `heap-stats every ${o.interval} s; load average ${load0.toFixed(2)}`,
  )
  const runs: Array<Record<string, unknown>> = []
  let failures = 0
  let prefilled = false
  try {
    for (const rw of o.rw) {
      for (const queues of o.queues) {
        const label = `${rw} ${queues}q qd${o.qd}`
        const r = await node.start(path.join(dir, 'node.sock'), disk, queues, ['--heap-stats', `${o.interval}`])
        const lines = collect(r)
        let result: Awaited<ReturnType<typeof loadgen>>
        try {
          const args = ['--socket', r.socket, '--qd', `${o.qd}`, '--queues', `${queues}`, '--bs', `${o.bs}`]
          args.push('--rw', rw, '--seed', `${seed}`, '--requests', `${o.requests}`, '--mem', '256', '--label', 'node')
          args.push('--backend-pid', `${r.pid}`, ...(prefilled ? ['--no-prefill'] : []))
          result = await loadgen(args)
          // The disconnect line follows the frontend's exit.
          const end = Date.now() + 5000
          while (!lines.some((l) => l.event === 'disconnect') && Date.now() < end)
            await new Promise((res) => setTimeout(res, 20))
        } finally {
          await stop(r)
        }
        if (result.status !== 0) {
          failures++
          say(`${label}: FAILED: vu-loadgen exit ${result.status}: ${result.stderr.trim()}`)
          continue
        }
        prefilled = true
        const point = JSON.parse(result.stdout).points[0]
        const { steady, whole, fallback } = steadyState(lines)
        const bad =
          (o.maxBytes !== null && steady.bytesPerRequest > o.maxBytes) ||
          (o.maxScavenges !== null && steady.scavengesPerMillion > o.maxScavenges)
        if (bad) failures++
        say(`\n${label}: ${Math.round(point.iops)} IOPS, every completion verified`)
        say(`  steady state${fallback ? ' (whole run: too short for two interval lines)' : ''}: ${fmt(steady)}`)
        say(`  whole run:    ${fmt(whole)}`)
        if (bad) say(`  FAILED: above --max-bytes ${o.maxBytes} / --max-scavenges ${o.maxScavenges}`)
        runs.push({ rw, queues, qd: o.qd, iops: point.iops, steady, whole, fallback, samples: lines })
      }
    }
  } finally {
    fs.rmSync(disk, { force: true })
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const load1 = os.loadavg()[0]!
  say(`load average ${load0.toFixed(2)} before, ${load1.toFixed(2)} after (${os.cpus().length} CPUs)`)
  if (o.json) {
    const out = { cpus: os.cpus().length, node: process.version, loadAverage: [load0, load1], options: o, runs }
    process.stdout.write(`${JSON.stringify(out)}\n`)
  }
  say(failures === 0 ? 'vhost-user heap: done' : `vhost-user heap: ${failures} failure(s)`)
  return failures === 0 ? 0 : 1
}
