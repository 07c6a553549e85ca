// npm run bench [-- options]: device-side throughput of the three paths
// (native Rust, JS batch, JS iterator) over the same GuestMemory in one process.
// See bench/paths.ts for exactly what each path does per round.
//
//   --json             print exactly one JSON object on stdout
//   --smoke, --quick   tiny runs for CI: checks every path works, no timing assertions
//   --runs N           timed runs per path (default 5)
//   --duration S       seconds per run (default 0.3)
//   --warmup S         seconds of untimed warm-up per path (default 0.2)
//   --chains N         run N chains per path (split over the runs) instead of --duration,
//                      e.g. --chains 10000000 --workload blk for the memory-growth check
//   --workload a,b     blk, blk4k, single, indirect (default all)
//   --event-idx X      off, on or both (default both)
//   --paths a,b        native, batch, iterator (default all)
//   --batch N          chains per ChainBatch pop on the batch path (default 128)
//   --driver D         guest driver of the JS paths: recycle (default; as cheap as the
//                      native path's) or sqd (the package's SplitQueueDriver)
//
// Exits non-zero when a path misbehaves: wrong used entries, checksum, notification
// counts or data in the writable buffers.
//
// chains/s is the median (and min, max) over the runs; runs of the three paths are
// interleaved, rotating their order, so a busy machine slows them alike. "vs native" is
// paired: the median over runs of (the path's rate / native's rate in the same rotation). Memory growth:
// gc() before and after every run, the heapUsed/RSS differences summed per path and
// divided by its chains; JSON memory[].heapAfterRuns/rssAfterRuns show the levels.
// npm prints a banner line on stdout before the script: use `npm run -s bench -- --json`
// when a program reads the JSON.
import * as os from 'node:os'
import * as v8 from 'node:v8'
import * as vm from 'node:vm'
import { staleLibFiles } from './api'
import {
  PATHS,
  FILL,
  type DriverKind,
  type PathName,
  type Runner,
  batchRunner,
  iteratorRunner,
  nativeRunner,
} from './paths'
import {
  AREA_BYTES,
  IN_FLIGHT,
  QUEUE_SIZE,
  WORKLOADS,
  type WorkloadName,
  createMemory,
  setupArea,
  verifyData,
} from './workloads'

interface Options {
  json: boolean
  smoke: boolean
  runs: number
  duration: number
  warmup: number
  chains: number | null
  workloads: WorkloadName[]
  eventIdx: boolean[]
  paths: PathName[]
  batch: number
  driver: DriverKind
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    json: false,
    smoke: false,
    runs: 5,
    duration: 0.3,
    warmup: 0.2,
    chains: null,
    workloads: Object.keys(WORKLOADS) as WorkloadName[],
    eventIdx: [false, true],
    paths: [...PATHS],
    batch: 128,
    driver: 'recycle',
  }
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v)
    if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${name} needs a number ≥ ${min}, got ${v}`)
    return n
  }
  const list = <T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T[] => {
    const items = (v ?? '').split(',').filter(Boolean)
    for (const i of items)
      if (!allowed.includes(i as T)) throw new Error(`${name}: unknown ${i} (use ${allowed.join(', ')})`)
    if (items.length === 0) throw new Error(`${name} needs a value`)
    return items as T[]
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const value = (): string | undefined => inline ?? argv[++i]
    switch (flag) {
      case '--json':
        o.json = true
        break
      case '--smoke':
      case '--quick':
        o.smoke = true
        break
      case '--runs':
        o.runs = Math.round(num(flag, value(), 1))
        break
      case '--duration':
        o.duration = num(flag, value(), 0.001)
        break
      case '--warmup':
        o.warmup = num(flag, value(), 0)
        break
      case '--chains':
        o.chains = Math.round(num(flag, value(), 1))
        break
      case '--workload':
      case '--workloads':
        o.workloads = list(flag, value(), Object.keys(WORKLOADS) as WorkloadName[])
        break
      case '--paths':
      case '--path':
        o.paths = list(flag, value(), PATHS)
        break
      case '--batch':
        o.batch = Math.round(num(flag, value(), 1))
        break
      case '--driver':
        o.driver = list(flag, value(), ['recycle', 'sqd'] as const)[0]!
        break
      case '--event-idx': {
        const v = value()
        if (v === 'on') o.eventIdx = [true]
        else if (v === 'off') o.eventIdx = [false]
        else if (v === 'both') o.eventIdx = [false, true]
        else throw new Error(`--event-idx takes on, off or both, got ${v}`)
        break
      }
      case '--help':
      case '-h':
        process.stdout.write(readUsage())
        return process.exit(0)
      default:
        throw new Error(`unknown option ${a} (see --help)`)
    }
  }
  if (o.smoke) {
    o.runs = Math.min(o.runs, 2)
    o.duration = 0.01
    o.warmup = 0.005
  }
  return o
}

function readUsage(): string {
  return `usage: npm run bench -- [options]

Device-side throughput of three paths over the same guest memory, in one process:
native (a Rust loop), batch (popChains/addUsedBatch) and iterator (iter()/addUsed).

options:
  --json             print exactly one JSON object on stdout (use npm run -s bench -- --json)
  --smoke, --quick   tiny runs for CI: every path works and is verified, no timing claims
                     (at most 2 runs of 0.01 s, 0.005 s warm-up)
  --runs N           timed runs per path (default 5)
  --duration S       seconds per run (default 0.3)
  --warmup S         seconds of untimed warm-up per path (default 0.2)
  --chains N         run N chains per path, split over the runs, instead of --duration
                     (default: off; --chains 10000000 --workload blk is the memory-growth check)
  --workload a,b     blk, blk4k, single, indirect (default: all four)
  --event-idx X      off, on or both (default both)
  --paths a,b        native, batch, iterator (default: all three)
  --batch N          chains per ChainBatch pop on the batch path (default 128)
  --driver D         guest driver of the JS paths: recycle (default; as cheap as the native
                     path's) or sqd (the package's SplitQueueDriver)
  --help, -h         this text

columns:
  chains/s, min, max  median, lowest and highest rate over the runs
  ns/chain            1e9 / the median rate
  vs native           median over runs of (this path's rate / native's rate in the same round)
  heap B/M            growth of V8's heapUsed, measured after gc() around every run, in bytes
                      per million chains (near 0, or negative: no per-chain leak)
  RSS B/M             the same for the process's resident set size (includes native memory)
`
}

function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g) return g
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

interface PathResult {
  workload: WorkloadName
  eventIdx: boolean
  path: PathName
  rates: number[]
  chains: number
  heapDelta: number
  rssDelta: number
  externalDelta: number
  /** heapUsed and RSS (after gc) at the end of each run, to show growth levelling off. */
  heapAfter: number[]
  rssAfter: number[]
}

function main(): void {
  const o = parseArgs(process.argv.slice(2))
  const gc = getGc()
  const log = (s: string): void => {
    if (!o.json) process.stderr.write(s)
  }
  const stale = staleLibFiles()
  if (stale.length > 0) {
    process.stderr.write(
      `bench: warning: lib/ is older than src/ (${stale.join(', ')}); run npm run build:ts (npm run bench does)\n`,
    )
  }
  if (os.endianness() !== 'LE')
    throw new Error('the JS driver accesses the rings with host-endian typed arrays: little-endian hosts only')
  const memory = createMemory(PATHS.length)
  const results: PathResult[] = []

  for (const wname of o.workloads) {
    const w = WORKLOADS[wname]
    for (const eventIdx of o.eventIdx) {
      log(`${wname} event idx ${eventIdx ? 'on ' : 'off'}:`)
      const runners: Runner[] = o.paths.map((p) => {
        const area = setupArea(memory, AREA_BYTES * (1 + PATHS.indexOf(p)), w, eventIdx, p !== 'native')
        if (p === 'native') return nativeRunner(memory, area, w)
        if (p === 'batch') return batchRunner(memory, area, w, o.driver, o.batch)
        return iteratorRunner(memory, area, w, o.driver)
      })
      const rec = new Map<PathName, PathResult>()
      for (const r of runners) {
        rec.set(r.path, {
          workload: wname,
          eventIdx,
          path: r.path,
          rates: [],
          chains: 0,
          heapDelta: 0,
          rssDelta: 0,
          externalDelta: 0,
          heapAfter: [],
          rssAfter: [],
        })
        r.run(o.warmup)
      }
      const roundsPerRun = o.chains === null ? undefined : Math.max(1, Math.ceil(o.chains / o.runs / IN_FLIGHT))
      for (let run = 0; run < o.runs; run++) {
        // Interleaved, rotating the order, so drift on a shared machine hits every path alike.
        for (let k = 0; k < runners.length; k++) {
          const r = runners[(run + k) % runners.length]!
          const res = rec.get(r.path)!
          gc()
          const m0 = process.memoryUsage()
          const { chains, ns } = r.run(o.duration, roundsPerRun)
          gc()
          const m1 = process.memoryUsage()
          res.rates.push((chains * 1e9) / ns)
          res.chains += chains
          res.heapDelta += m1.heapUsed - m0.heapUsed
          res.rssDelta += m1.rss - m0.rss
          res.externalDelta += m1.external - m0.external
          res.heapAfter.push(m1.heapUsed)
          res.rssAfter.push(m1.rss)
        }
        log('.')
      }
      for (const r of runners) {
        r.verify()
        verifyData(memory, r.area, FILL[r.path], r.path)
        r.area.guard?.release()
        results.push(rec.get(r.path)!)
      }
      log(' ok\n')
    }
  }
  report(o, results)
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    totalMemoryBytes: os.totalmem(),
  }
}

function report(o: Options, results: PathResult[]): void {
  const perM = (bytes: number, chains: number): number => (chains > 0 ? Math.round((bytes / chains) * 1e6) : 0)
  const rows = results.map((r) => ({
    workload: r.workload,
    eventIdx: r.eventIdx,
    path: r.path,
    chainsPerSec: Math.round(median(r.rates)),
    min: Math.round(Math.min(...r.rates)),
    max: Math.round(Math.max(...r.rates)),
  }))
  // Paired ratios: run k of every path belongs to the same rotation (adjacent in time), so
  // the ratio of run k's rates is compared within one stretch of machine weather; the
  // median over runs of those ratios is what "vs native" reports.
  const pairedRatio = (r: PathResult): number | null => {
    const n = results.find((x) => x.workload === r.workload && x.eventIdx === r.eventIdx && x.path === 'native')
    if (!n || n.rates.length !== r.rates.length) return null
    return median(r.rates.map((v, k) => v / n.rates[k]!))
  }
  const ratioOf = results.map(pairedRatio)
  const ratios = o.workloads.flatMap((w) =>
    o.eventIdx.map((e) => {
      const ratio = (p: PathName): number | null => {
        const i = results.findIndex((r) => r.workload === w && r.eventIdx === e && r.path === p)
        const v = i < 0 ? null : ratioOf[i]!
        return v === null ? null : Math.round(v * 1000) / 1000
      }
      return { workload: w, eventIdx: e, batch: ratio('batch'), iterator: ratio('iterator') }
    }),
  )
  const memory = results.map((r) => ({
    workload: r.workload,
    eventIdx: r.eventIdx,
    path: r.path,
    chains: r.chains,
    heapBytesPerMillionChains: perM(r.heapDelta, r.chains),
    rssBytesPerMillionChains: perM(r.rssDelta, r.chains),
    externalBytesPerMillionChains: perM(r.externalDelta, r.chains),
    heapBytesTotal: r.heapDelta,
    rssBytesTotal: r.rssDelta,
    heapAfterRuns: r.heapAfter,
    rssAfterRuns: r.rssAfter,
  }))
  const config = {
    mode: o.smoke ? 'smoke' : o.chains !== null ? 'chains' : 'duration',
    runs: o.runs,
    secondsPerRun: o.chains === null ? o.duration : null,
    chainsPerPath: o.chains,
    warmupSeconds: o.warmup,
    batchChains: o.batch,
    jsDriver: o.driver,
    queueSize: QUEUE_SIZE,
    inFlight: IN_FLIGHT,
    workloads: Object.fromEntries(o.workloads.map((w) => [w, WORKLOADS[w].description])),
  }
  if (o.json) {
    process.stdout.write(
      JSON.stringify({ results: rows, ratios, memory, machine: machine(), config, verified: true }) + '\n',
    )
    return
  }
  const m = machine()
  const out: string[] = []
  out.push(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node} (${m.platform}-${m.arch})`)
  out.push(
    `${config.mode}: ${o.runs} runs per path, ${o.chains === null ? `${o.duration} s each` : `${o.chains} chains in all`}; median (min..max)`,
  )
  out.push('')
  const head = ['workload', 'evt idx', 'path', 'chains/s', 'min', 'max', 'ns/chain', 'vs native', 'heap B/M', 'RSS B/M']
  const table = rows.map((r, i) => {
    const ratio = ratioOf[i]
    return [
      r.workload,
      r.eventIdx ? 'on' : 'off',
      r.path,
      fmtRate(r.chainsPerSec),
      fmtRate(r.min),
      fmtRate(r.max),
      (1e9 / r.chainsPerSec).toFixed(1),
      ratio !== null && ratio !== undefined ? `${(ratio * 100).toFixed(1)}%` : '-',
      String(memory[i]!.heapBytesPerMillionChains),
      String(memory[i]!.rssBytesPerMillionChains),
    ]
  })
  const widths = head.map((h, c) => Math.max(h.length, ...table.map((row) => row[c]!.length)))
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  out.push(line(head))
  out.push(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const row of table) out.push(line(row))
  const blk = ratios.filter((r) => r.workload === 'blk')
  if (blk.length > 0 && !o.smoke) {
    out.push('')
    for (const r of blk) {
      const t = (v: number | null, goal: number): string =>
        v === null ? 'n/a' : `${(v * 100).toFixed(1)}% (target ${goal * 100}%: ${v >= goal ? 'met' : 'missed'})`
      out.push(`blk, event idx ${r.eventIdx ? 'on' : 'off'}: batch ${t(r.batch, 0.6)}, iterator ${t(r.iterator, 0.3)}`)
    }
  }
  out.push('')
  out.push('every path verified: used ids and lengths, header checksum, notification counts, written data')
  process.stdout.write(out.join('\n') + '\n')
}

function fmtRate(v: number): string {
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(1)}k`
}

try {
  main()
} catch (e) {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`)
  process.exit(1)
}
