// npm run bench:vhost-user [-- options]: vhost-user-blk throughput of three backends on the same
// disk file, driven by vu-loadgen (a native frontend acting as a fast guest driver, every
// completion verified): the package's Node backend (npm run vhost-user-blk),
// qemu-storage-daemon, and vu-blk-native (the native ceiling of this crate stack).
//
//   --qd 1,8,32,128     queue depths per queue (default 1,8,32,128)
//   --queues 1,2        queue counts (default 1,2)
//   --bs BYTES          request size (default 4096)
//   --rw read|write|rwN (default read)
//   --seconds S         timed seconds per run (default 2), after --warmup S (default 0.5)
//   --rotations N       runs per backend and point, the backends' order rotating (default 3)
//   --backends a,b      node, qsd, native (default all)
//   --qsd-aio io_uring|threads   (default io_uring)
//   --no-qsd-iothread   run qemu-storage-daemon's export in its main loop, not an iothread
//                       (io_uring in an iothread was the fastest of the four here)
//   --node-io MODE      the Node disk's --io: sync, threads or auto (default: its own, auto)
//   --disk-mib N        disk file size in /dev/shm (default 256)
//   --smoke             CI: 3000 verified requests per backend and point (qd 1,32; queues 1,2),
//                       one rotation, a 64 MiB disk; then, on vu-blk-native, a run without
//                       indirect descriptors and a check that a wrong pattern fails
//   --json              one JSON object on stdout
//   --heap              instead of the comparison: whether the Node disk allocates per request,
//                       over long runs (10 M requests; options in bench/vhost-user/heap.ts)
//
// Each backend process serves every run of one queue count (all three are started per queue
// count; runs reconnect). IOPS is the median over rotations; "vs qsd" the median over
// rotations of (IOPS / qemu-storage-daemon's IOPS in the same rotation); cores are the
// backend's utime+stime over the timed part divided by its wall time (/proc/PID/stat).
// Exits 1 if any run fails or any completion does not verify; a backend that cannot run here
// (not installed, or not in this checkout) is listed with the reason and skipped.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { BACKENDS, type BackendName, type QsdAio, type Running, TARGET, specs, stop } from './backends'
import { cargoBuild, makeDisk } from './build'
import { heapMain } from './heap'

interface Options {
  qd: number[]
  queues: number[]
  bs: number
  rw: string
  seconds: number
  warmup: number
  rotations: number
  backends: BackendName[]
  qsdAio: QsdAio
  qsdIothread: boolean
  diskMib: number
  nodeIo: string | null
  smoke: boolean
  json: boolean
}

function parse(argv: string[]): Options {
  const o: Options = {
    qd: [1, 8, 32, 128],
    queues: [1, 2],
    bs: 4096,
    rw: 'read',
    seconds: 2,
    warmup: 0.5,
    rotations: 3,
    backends: [...BACKENDS],
    qsdAio: 'io_uring',
    qsdIothread: true,
    diskMib: 256,
    nodeIo: null,
    smoke: false,
    json: false,
  }
  const nums = (f: string, v = '') => {
    const xs = v.split(',').map(Number)
    if (!xs.every((x) => Number.isFinite(x) && x > 0)) throw new Error(`${f}: expected positive numbers, got ${v}`)
    return xs
  }
  for (let i = 0; i < argv.length; i++) {
    const [f, inline] = argv[i]!.split(/=(.*)/s)
    const v = () => inline ?? argv[++i]
    if (f === '--qd') o.qd = nums(f, v())
    else if (f === '--queues') o.queues = nums(f, v())
    else if (f === '--bs') o.bs = nums(f, v())[0]!
    else if (f === '--rw') o.rw = v() ?? ''
    else if (f === '--seconds') o.seconds = nums(f, v())[0]!
    else if (f === '--warmup') o.warmup = Number(v())
    else if (f === '--rotations') o.rotations = nums(f, v())[0]!
    else if (f === '--disk-mib') o.diskMib = nums(f, v())[0]!
    else if (f === '--node-io') {
      const m = v() ?? ''
      if (!['sync', 'threads', 'auto'].includes(m)) throw new Error(`--node-io: sync, threads or auto, not ${m}`)
      o.nodeIo = m
    } else if (f === '--backends') {
      const bs = (v() ?? '').split(',')
      for (const b of bs) if (!BACKENDS.includes(b as BackendName)) throw new Error(`--backends: unknown ${b}`)
      o.backends = bs as BackendName[]
    } else if (f === '--qsd-aio') {
      const a = v()
      if (a !== 'io_uring' && a !== 'threads') throw new Error(`--qsd-aio: io_uring or threads, not ${a}`)
      o.qsdAio = a
    } else if (f === '--qsd-iothread') o.qsdIothread = true
    else if (f === '--no-qsd-iothread') o.qsdIothread = false
    else if (f === '--smoke') o.smoke = true
    else if (f === '--json') o.json = true
    else throw new Error(`unknown option ${f} (see the head of bench/vhost-user/compare.ts)`)
  }
  if (o.smoke) Object.assign(o, { qd: [1, 32], queues: [1, 2], rotations: 1, diskMib: 64 })
  return o
}

interface Run {
  iops: number
  p50Us: number
  p99Us: number
  p999Us: number
  backendCores: number | null
  loadgenCores: number | null
  kicksPerRequest: number
  wakeupsPerRequest: number
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function loadgen(args: string[]): { run: Run | null; error: string | null } {
  const r = spawnSync(path.join(TARGET, 'vu-loadgen'), [...args, '--json'], { encoding: 'utf8', timeout: 600_000 })
  if (r.status !== 0) return { run: null, error: (r.stderr || r.error?.message || `exit ${r.status}`).trim() }
  const p = JSON.parse(r.stdout).points[0]
  return { run: p, error: null }
}

async function main(): Promise<number> {
  if (process.argv.includes('--heap')) return heapMain(process.argv.slice(2))
  const o = parse(process.argv.slice(2))
  const say = (s: string) => (o.json ? process.stderr : process.stdout).write(`${s}\n`)
  cargoBuild()
  const all = specs(o.qsdAio, o.qsdIothread)
  const live = o.backends.filter((b) => all[b].unavailable === null)
  for (const b of o.backends) {
    const s = all[b]
    say(`${b.padEnd(6)} ${s.unavailable === null ? s.describe : `unavailable: ${s.unavailable}`}`)
  }
  const disk = makeDisk(o.diskMib)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vu-bench-'))
  const seed = Date.now()
  let prefilled = false
  let failures = 0
  const load0 = os.loadavg()[0]!
  const results: Record<string, Record<string, Run[]>> = {}
  const errors: string[] = []
  say(
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}); ${o.rw} ${o.bs} B, ` +
      (o.smoke ? '3000 requests per run' : `${o.seconds} s per run after ${o.warmup} s warm-up`) +
      `, ${o.rotations} rotation(s); disk ${o.diskMib} MiB at ${disk}; load average ${load0.toFixed(2)}`,
  )
  try {
    for (const queues of o.queues) {
      const running = new Map<BackendName, Running>()
      try {
        for (const b of live) {
          try {
            const extra = b === 'node' && o.nodeIo !== null ? ['--io', o.nodeIo] : []
            running.set(b, await all[b].start(path.join(dir, `${b}.sock`), disk, queues, extra))
          } catch (e) {
            failures++
            errors.push(`${b} (${queues} queues) did not start: ${(e as Error).message}`)
          }
        }
        for (const qd of o.qd) {
          const key = `${queues}q qd${qd}`
          results[key] = {}
          for (let rot = 0; rot < o.rotations; rot++) {
            const order = [...running.keys()]
            for (let k = 0; k < rot % Math.max(1, order.length); k++) order.push(order.shift()!)
            for (const b of order) {
              const r = running.get(b)!
              const args = ['--socket', r.socket, '--qd', `${qd}`, '--queues', `${queues}`, '--bs', `${o.bs}`]
              args.push('--rw', o.rw, '--seed', `${seed}`, '--label', b, '--backend-pid', `${r.pid}`, '--mem', '256')
              args.push(
                ...(o.smoke ? ['--requests', '3000'] : ['--seconds', `${o.seconds}`, '--warmup', `${o.warmup}`]),
              )
              // The disk keeps the pattern of the first run's prefill: later runs only verify it.
              if (prefilled) args.push('--no-prefill')
              const { run, error } = loadgen(args)
              if (run === null) {
                failures++
                errors.push(`${b} ${key}: ${error}\n${r.log.join('').slice(-2000)}`)
                continue
              }
              prefilled = true
              ;(results[key][b] ??= []).push(run)
            }
          }
          if (!o.json) printPoint(key, results[key]!, live)
        }
      } finally {
        for (const r of running.values()) await stop(r)
      }
    }
    if (o.smoke && live.includes('native')) failures += extraChecks(disk, dir, seed, say, errors)
  } finally {
    fs.rmSync(disk, { force: true })
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const load1 = os.loadavg()[0]!
  say(`load average ${load0.toFixed(2)} before, ${load1.toFixed(2)} after (${os.cpus().length} CPUs)`)
  for (const e of errors) say(`FAILED: ${e}`)
  if (o.json) {
    const unavailable = Object.fromEntries(
      o.backends.filter((b) => all[b].unavailable).map((b) => [b, all[b].unavailable]),
    )
    const points = Object.entries(results).map(([key, byBackend]) => ({ point: key, ...summary(byBackend) }))
    const out = { cpus: os.cpus().length, loadAverage: [load0, load1], options: o, unavailable, points, errors }
    process.stdout.write(`${JSON.stringify(out)}\n`)
  }
  say(failures === 0 ? 'vhost-user bench: every completion verified' : `vhost-user bench: ${failures} failure(s)`)
  return failures === 0 ? 0 : 1
}

function summary(byBackend: Record<string, Run[]>) {
  const qsd = byBackend.qsd
  return Object.fromEntries(
    Object.entries(byBackend).map(([b, runs]) => [
      b,
      {
        iops: Math.round(median(runs.map((r) => r.iops))),
        min: Math.round(Math.min(...runs.map((r) => r.iops))),
        max: Math.round(Math.max(...runs.map((r) => r.iops))),
        vsQsd: qsd && qsd.length === runs.length ? median(runs.map((r, i) => r.iops / qsd[i]!.iops)) : null,
        p50Us: median(runs.map((r) => r.p50Us)),
        p99Us: median(runs.map((r) => r.p99Us)),
        p999Us: median(runs.map((r) => r.p999Us)),
        backendCores: median(runs.map((r) => r.backendCores ?? Number.NaN)),
        loadgenCores: median(runs.map((r) => r.loadgenCores ?? Number.NaN)),
        kicksPerRequest: median(runs.map((r) => r.kicksPerRequest)),
        wakeupsPerRequest: median(runs.map((r) => r.wakeupsPerRequest)),
      },
    ]),
  )
}

/** Cores, or '-' when the run was too short to tell (--smoke). */
const cores = (c: number) => (Number.isNaN(c) ? '-' : c.toFixed(2)).padStart(14)

function printPoint(key: string, byBackend: Record<string, Run[]>, live: BackendName[]): void {
  const s = summary(byBackend)
  console.log(`\n${key}`)
  console.log('  backend        IOPS (min..max)          vs qsd   p50 µs   p99 µs  backend cores  loadgen cores')
  for (const b of live) {
    const r = s[b]
    if (!r) {
      console.log(`  ${b.padEnd(8)} failed`)
      continue
    }
    const range = `${r.iops} (${r.min}..${r.max})`
    console.log(
      `  ${b.padEnd(8)} ${range.padStart(26)} ${(r.vsQsd === null ? '-' : r.vsQsd.toFixed(2)).padStart(8)} ` +
        `${r.p50Us.toFixed(1).padStart(8)} ${r.p99Us.toFixed(1).padStart(8)} ${cores(r.backendCores)} ${cores(r.loadgenCores)}`,
    )
  }
}

/** Runs vu-loadgen with `args` against a fresh vu-blk-native on `disk`. */
function againstNative(disk: string, dir: string, args: string[]): { status: number | null; stderr: string } {
  const socket = path.join(dir, 'check.sock')
  const r = spawnSync(
    'bash',
    [
      '-c',
      '"$1" --socket "$2" --disk "$3" >/dev/null 2>&1 & pid=$!; lg=$4; sock=$2; shift 4; "$lg" --socket "$sock" "$@"; rc=$?; kill $pid; wait $pid 2>/dev/null; exit $rc',
      'check',
      path.join(TARGET, 'vu-blk-native'),
      socket,
      disk,
      path.join(TARGET, 'vu-loadgen'),
      ...args,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  )
  return { status: r.status, stderr: r.stderr }
}

/**
 * --smoke's extra checks against vu-blk-native: requests made of three ring descriptors
 * (indirect descriptors not negotiated) verify too; and the verification can fail: reading
 * the disk under a seed it was not filled with must exit 1.
 */
function extraChecks(disk: string, dir: string, seed: number, say: (s: string) => void, errors: string[]): number {
  let failures = 0
  const common = ['--qd', '32', '--queues', '1', '--no-prefill', '--json']
  const direct = againstNative(disk, dir, [...common, '--requests', '3000', '--seed', `${seed}`, '--no-indirect'])
  if (direct.status === 0) say('direct descriptors (--no-indirect): 3000 requests verified')
  else {
    failures++
    errors.push(`direct descriptors: exit ${direct.status}: ${direct.stderr}`)
  }
  const wrong = againstNative(disk, dir, [...common, '--requests', '100', '--seed', `${seed + 1}`])
  if (wrong.status === 1 && /data differs/.test(wrong.stderr))
    say('negative check: a disk holding another seed fails verification (exit 1, "data differs"), as it must')
  else {
    failures++
    errors.push(`negative check: expected exit 1 with "data differs", got ${wrong.status}: ${wrong.stderr}`)
  }
  return failures
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
