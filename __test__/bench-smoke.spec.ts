// The benchmark's smoke run (npm run bench -- --smoke): every path runs and is
// verified (used entries, header checksum, notification counts, written data),
// and --json prints one object of the documented shape. No timing assertions.
// The benchmark measures the compiled lib/, which the test build provides.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

const root = path.join(__dirname, '..')

interface BenchJson {
  results: Array<{ workload: string; eventIdx: boolean; path: string; chainsPerSec: number; min: number; max: number }>
  ratios: Array<{ workload: string; eventIdx: boolean; batch: number | null; iterator: number | null }>
  memory: Array<{ path: string; chains: number }>
  machine: { cpu: string; cores: number; node: string }
  config: { mode: string }
  verified: boolean
}

function bench(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join('bench', 'main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('bench --smoke --json: every workload, both event idx settings, all three paths, verified', (t) => {
  const r = bench('--smoke', '--json')
  t.is(r.status, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.is(lines.length, 1, 'exactly one JSON line on stdout')
  const j = JSON.parse(lines[0]!) as BenchJson
  t.true(j.verified)
  t.is(j.config.mode, 'smoke')
  t.is(j.results.length, 4 * 2 * 3)
  for (const workload of ['blk', 'blk4k', 'single', 'indirect']) {
    for (const eventIdx of [false, true]) {
      const paths = j.results.filter((x) => x.workload === workload && x.eventIdx === eventIdx).map((x) => x.path)
      t.deepEqual(paths.sort(), ['batch', 'iterator', 'native'])
    }
  }
  for (const x of j.results) {
    t.true(x.chainsPerSec > 0 && x.min > 0 && x.min <= x.chainsPerSec && x.chainsPerSec <= x.max, JSON.stringify(x))
  }
  t.is(j.ratios.length, 8)
  t.true(j.memory.every((m) => m.chains > 0))
  t.true(typeof j.machine.cpu === 'string' && j.machine.cores >= 1 && j.machine.node === process.version)
})

test('bench: the SplitQueueDriver variant and a fixed chain count run and verify', (t) => {
  const r = bench(
    '--smoke',
    '--json',
    '--workload',
    'indirect',
    '--event-idx',
    'on',
    '--driver',
    'sqd',
    '--chains',
    '2048',
  )
  t.is(r.status, 0, r.stderr)
  const j = JSON.parse(r.stdout) as BenchJson
  t.is(j.results.length, 3)
  // --chains N runs at least N chains per path (whole rounds of 128).
  t.true(
    j.memory.every((m) => m.chains >= 2048),
    JSON.stringify(j.memory),
  )
})

test('bench: unknown options are refused', (t) => {
  const r = bench('--smoke', '--workload', 'nope')
  t.not(r.status, 0)
  t.regex(r.stderr, /unknown nope/)
})

test('bench --help: every option with its default, and a legend of the columns', (t) => {
  const r = bench('--help')
  t.is(r.status, 0, r.stderr)
  for (const [option, dflt] of [
    ['--runs N', 'default 5'],
    ['--duration S', 'default 0.3'],
    ['--warmup S', 'default 0.2'],
    ['--chains N', 'default: off'],
    ['--workload a,b', 'default: all four'],
    ['--event-idx X', 'default both'],
    ['--paths a,b', 'default: all three'],
    ['--batch N', 'default 128'],
    ['--driver D', 'default'],
  ]) {
    const line = r.stdout.split('\n').findIndex((l) => l.trimStart().startsWith(option))
    t.not(line, -1, option)
    // The default is on the option's line or the next one.
    t.regex(
      r.stdout
        .split('\n')
        .slice(line, line + 2)
        .join(' '),
      new RegExp(dflt!.replace(/[.]/g, '\\.')),
      option,
    )
  }
  for (const flag of ['--json', '--smoke', '--help']) t.regex(r.stdout, new RegExp(`^  ${flag}`, 'm'))
  t.regex(r.stdout, /^ {2}heap B\/M +growth of V8's heapUsed/m)
  t.regex(r.stdout, /^ {2}RSS B\/M +the same for the process's resident set size/m)
})
