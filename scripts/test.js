#!/usr/bin/env node
// `npm test`: every test runner, then one line totalling them all:
//   format (cargo fmt --check on the Rust, biome check on the TypeScript and
//   JavaScript: formatting and lints), cargo test (the Rust that needs no
//   Node), the type tests (tsc builds lib/ and its typings from src/; tsc on
//   __test__ under strict: the ported example and the typings' conformance;
//   typedoc builds the API reference without warnings), the ava suite, and the
//   real-guest tests. Exits non-zero if
//   anything failed. `npm run format` rewrites the tree in the checked format.
//
//   node scripts/test.js [--only format,cargo,types,ava,guests] [-- extra ava args]
//
// `guests` boots real Linux guests under QEMU against vhost-user-blk backends
// (__test__/guest.spec.ts, scripts/guest/); it runs by default unless extra ava
// args narrow the run (then only with --only guests, which passes them on).
//
// Before ava (and the extras that run JavaScript) it builds the testing addon
// and lib/ (`node scripts/build.js --testing`; cargo rebuilds only what
// changed): the suite runs on that addon (scripts/testing-addon.js). With
// VIRTIO_QUEUE_NATIVE_PATH set, it builds nothing and the suite uses that file.
//
// Extra runners, listed in VIRTIO_QUEUE_TEST_EXTRAS (comma-separated), and by
// default when CI=true (as .ci/run sets it): `node:<major>` runs the ava suite
// on that Node major (scripts/test-matrix.js installs it from the npm
// registry), `bench` the benchmark's smoke run, `vhost-user-bench` the
// vhost-user benchmark's smoke run (npm run bench:vhost-user -- --smoke: a few
// thousand verified requests per backend; a backend not installed or not in the
// checkout is reported and skipped, a verification error fails) and a brief run of its
// --heap mode (200 k requests against the Node disk), `pack` the
// packed-tarball smoke test (scripts/pack-smoke.sh --package), `clippy` the
// Rust lints (cargo clippy on every target, warnings as errors).
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const bin = (name) => path.join(root, 'node_modules', '.bin', name)
const argv = process.argv.slice(2)
const dashdash = argv.indexOf('--')
const avaExtra = dashdash >= 0 ? argv.slice(dashdash + 1) : []
const onlyArg = argv.indexOf('--only')
// The real-guest tests run by default only when no ava arguments narrow the run.
const only =
  onlyArg >= 0
    ? argv[onlyArg + 1].split(',')
    : ['format', 'cargo', 'types', 'ava', ...(avaExtra.length ? [] : ['guests'])]

function run(label, cmd, args) {
  console.log(`\n== ${label}: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28, env: process.env })
  if (r.error) {
    console.log(`could not run ${cmd}: ${r.error.message}`)
    return { status: 1, out: '' }
  }
  process.stdout.write(r.stdout)
  process.stderr.write(r.stderr)
  return { status: r.status, out: r.stdout + r.stderr }
}

const results = []
// The vhost-user benchmark's programs: a cargo workspace of their own (see the root Cargo.toml),
// tested, linted and formatted beside the addon's, built into the same target folder.
const BENCH_MANIFEST = path.join('bench', 'vhost-user', 'Cargo.toml')
const benchCargo = ['--manifest-path', BENCH_MANIFEST, '--target-dir', 'target']
// The current LTS (Node 26 since October 2026) besides the machine's Node 20.
const CI_EXTRAS = 'node:26,bench,vhost-user-bench,pack,clippy'

if (only.includes('format')) {
  // Each check is one test: the tree is formatted (and lint-clean) or not.
  const checks = [
    ['rustfmt', 'cargo', ['fmt', '--all', '--check']],
    ['rustfmt (bench/vhost-user)', 'cargo', ['fmt', '--check', '--manifest-path', BENCH_MANIFEST]],
    ['biome', bin('biome'), ['check', '--error-on-warnings', '.']],
  ]
  let passed = 0
  let failed = 0
  for (const [label, cmd, args] of checks) {
    if (run(`format (${label})`, cmd, args).status === 0) passed++
    else failed++
  }
  results.push(['format', passed, failed])
}

if (only.includes('cargo')) {
  const locked = process.env.VIRTIO_QUEUE_CRATES === 'crates-io' ? [] : ['--locked']
  let passed = 0
  let failed = 0
  for (const args of [
    ['test', '--offline', '--features', 'testing', ...locked],
    ['test', '--offline', ...locked, ...benchCargo],
  ]) {
    const r = run('cargo', 'cargo', args)
    let runFailed = 0
    for (const m of r.out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
      passed += Number(m[1])
      runFailed += Number(m[2])
    }
    if (r.status !== 0 && runFailed === 0) runFailed = 1
    failed += runFailed
  }
  results.push(['cargo', passed, failed])
}

if (only.includes('types')) {
  // Each step is one type test: it compiles cleanly or not. The build comes first: it emits
  // the public typings (lib/*.d.ts) from src/, which the conformance tests then check.
  const steps = [
    ['src/ and its emitted typings (lib/)', bin('tsc'), ['-p', 'tsconfig.json']],
    ['tests, ported example and typings conformance', bin('tsc'), ['-p', '__test__/tsconfig.json', '--noEmit']],
  ]
  let passed = 0
  let failed = 0
  for (const [what, cmd, args] of steps) {
    if (run(`types (${what})`, cmd, args).status === 0) passed++
    else failed++
  }
  // The API reference (npm run docs) builds without a warning: every public member has
  // TSDoc, every {@link} resolves and nothing public refers to an unexported type.
  // Rendered to a temporary folder.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-queue-docs-'))
  try {
    const r = run('types (API reference: typedoc)', bin('typedoc'), ['--out', out, '--logLevel', 'Warn'])
    if (r.status === 0 && !/\[warning\]|\[error\]/.test(r.out)) passed++
    else failed++
  } finally {
    fs.rmSync(out, { recursive: true, force: true })
  }
  results.push(['types', passed, failed])
}

const extras = (process.env.VIRTIO_QUEUE_TEST_EXTRAS ?? (process.env.CI === 'true' ? CI_EXTRAS : ''))
  .split(',')
  .map((x) => x.trim())
  .filter(Boolean)

let testingBuilt = true
if (process.env.VIRTIO_QUEUE_NATIVE_PATH) {
  // An explicit binary (CI passes the testing addon it built for its target): use it as is.
  console.log(`\n== build (testing addon): skipped, VIRTIO_QUEUE_NATIVE_PATH=${process.env.VIRTIO_QUEUE_NATIVE_PATH}`)
} else if (only.includes('ava') || extras.some((x) => x.startsWith('node:') || x === 'bench')) {
  const r = run('build (testing addon)', process.execPath, [path.join('scripts', 'build.js'), '--testing'])
  testingBuilt = r.status === 0
  if (!testingBuilt) results.push(['build', 0, 1])
}

if (only.includes('ava') && testingBuilt) {
  const r = run('ava', bin('ava'), ['--tap', ...avaExtra])
  const count = (re) => Number((r.out.match(re) || [])[1] || 0)
  const passed = count(/^# pass (\d+)/m)
  let failed = count(/^# fail (\d+)/m)
  if (r.status !== 0 && failed === 0) failed = 1
  results.push(['ava', passed, failed])
}

if (only.includes('guests')) {
  // Real Linux guests under QEMU (__test__/guest.spec.ts), one at a time and apart from the
  // main suite. Without the rig (scripts/guest/prepare.sh) they skip, saying so; with CI=true
  // or VIRTIO_QUEUE_REQUIRE_GUESTS=1 a missing rig fails.
  const r = run('guests', bin('ava'), [
    '--config',
    path.join('scripts', 'guest', 'ava.config.mjs'),
    '--serial',
    '--tap',
    ...(onlyArg >= 0 ? avaExtra : []),
  ])
  const count = (re) => Number((r.out.match(re) || [])[1] || 0)
  const passed = count(/^# pass (\d+)/m)
  let failed = count(/^# fail (\d+)/m)
  const skipped = count(/^# skip (\d+)/m)
  if (r.status !== 0 && failed === 0) failed = 1
  if (skipped > 0) {
    const why = (r.out.match(/^SKIPPED: (.*)$/m) || [])[1] || 'see the output above'
    console.log(`\n== guests: ${skipped} skipped: ${why}`)
  }
  results.push(['guests', passed, failed])
}

for (const extra of extras) {
  if (extra.startsWith('node:')) {
    const major = extra.slice(5)
    const r = run(`ava on Node ${major}`, process.execPath, [
      path.join('scripts', 'test-matrix.js'),
      '--majors',
      major,
      ...(avaExtra.length ? ['--', ...avaExtra] : []),
    ])
    const m = r.out.match(/matrix: (\d+) passed, (\d+) failed/)
    const passed = m ? Number(m[1]) : 0
    let failed = m ? Number(m[2]) : 0
    if (r.status !== 0 && failed === 0) failed = 1
    results.push([`node${major}`, passed, failed])
  } else if (extra === 'bench') {
    const r = run('bench smoke', 'npm', ['run', '--silent', 'bench', '--', '--smoke'])
    results.push(['bench', r.status === 0 ? 1 : 0, r.status === 0 ? 0 : 1])
  } else if (extra === 'vhost-user-bench') {
    if (process.platform !== 'linux') {
      console.log('\n== vhost-user bench smoke: Linux only; not run')
      results.push(['vhost-user-bench', 0, 0])
      continue
    }
    const r = run('vhost-user bench smoke', 'npm', ['run', '--silent', 'bench:vhost-user', '--', '--smoke'])
    // The --heap mode, briefly (a few seconds): the disk's heap-stats lines are read and verified.
    const heapArgs = '--heap --requests 200k --queues 1 --rw rw70 --interval 0.2 --disk-mib 32'.split(' ')
    const h = run('vhost-user heap smoke', 'npm', ['run', '--silent', 'bench:vhost-user', '--', ...heapArgs])
    const ok = (r.status === 0 ? 1 : 0) + (h.status === 0 ? 1 : 0)
    results.push(['vhost-user-bench', ok, 2 - ok])
  } else if (extra === 'clippy') {
    // Clippy comes with rustup's default profile; a toolchain without it cannot lint, which
    // is said plainly (and counted as neither passed nor failed) rather than failing CI.
    if (spawnSync('cargo', ['clippy', '--version'], { cwd: root, encoding: 'utf8' }).status !== 0) {
      console.log('\n== clippy: not installed with this Rust toolchain (rustup component add clippy); not run')
      results.push(['clippy', 0, 0])
      continue
    }
    const locked = process.env.VIRTIO_QUEUE_CRATES === 'crates-io' ? [] : ['--locked']
    const r = run('clippy', 'cargo', [
      'clippy',
      '--offline',
      ...locked,
      '--all-targets',
      '--features',
      'testing',
      '--',
      '-D',
      'warnings',
    ])
    const b = run('clippy (bench/vhost-user)', 'cargo', [
      'clippy',
      '--offline',
      ...locked,
      '--all-targets',
      ...benchCargo,
      '--',
      '-D',
      'warnings',
    ])
    const ok = r.status === 0 && b.status === 0
    results.push(['clippy', ok ? 1 : 0, ok ? 0 : 1])
  } else if (extra === 'pack') {
    const r = run('packed tarballs', 'bash', [path.join('scripts', 'pack-smoke.sh'), '--package'])
    results.push(['pack', r.status === 0 ? 1 : 0, r.status === 0 ? 0 : 1])
  } else {
    console.log(`unknown extra runner ${extra}`)
    results.push([extra, 0, 1])
  }
}

console.log('')
for (const [name, p, f] of results) console.log(`${name.padEnd(6)} ${p} passed, ${f} failed`)
const passed = results.reduce((n, r) => n + r[1], 0)
const failed = results.reduce((n, r) => n + r[2], 0)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
