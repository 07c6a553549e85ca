#!/usr/bin/env node
// `npm test`: every test runner, then one line totalling them all:
//   cargo test (the Rust that needs no Node), the type tests (tsc on
//   __test__ under strict: the ported example and the typings' conformance),
//   and the ava suite. Exits non-zero if anything failed.
//
//   node scripts/test.js [--only cargo,types,ava] [-- extra ava args]
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const bin = (name) => path.join(root, 'node_modules', '.bin', name)
const argv = process.argv.slice(2)
const dashdash = argv.indexOf('--')
const avaExtra = dashdash >= 0 ? argv.slice(dashdash + 1) : []
const onlyArg = argv.indexOf('--only')
const only = onlyArg >= 0 ? argv[onlyArg + 1].split(',') : ['cargo', 'types', 'ava']

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

if (only.includes('cargo')) {
  const r = run('cargo', 'cargo', ['test', '--offline', ...(process.env.VIRTIO_QUEUE_CRATES === 'crates-io' ? [] : ['--locked'])])
  let passed = 0
  let failed = 0
  for (const m of r.out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    passed += Number(m[1])
    failed += Number(m[2])
  }
  if (r.status !== 0 && failed === 0) failed = 1
  results.push(['cargo', passed, failed])
}

if (only.includes('types')) {
  // Each tsc project is one type test: it compiles cleanly or not.
  const projects = [['__test__/tsconfig.json', 'tests, ported example and typings conformance']]
  let passed = 0
  let failed = 0
  for (const [project, what] of projects) {
    const r = run(`types (${what})`, bin('tsc'), ['-p', project, '--noEmit'])
    if (r.status === 0) passed++
    else failed++
  }
  results.push(['types', passed, failed])
}

if (only.includes('ava')) {
  const r = run('ava', bin('ava'), ['--tap', ...avaExtra])
  const count = (re) => Number((r.out.match(re) || [])[1] || 0)
  const passed = count(/^# pass (\d+)/m)
  let failed = count(/^# fail (\d+)/m)
  if (r.status !== 0 && failed === 0) failed = 1
  results.push(['ava', passed, failed])
}

console.log('')
for (const [name, p, f] of results) console.log(`${name.padEnd(6)} ${p} passed, ${f} failed`)
const passed = results.reduce((n, r) => n + r[1], 0)
const failed = results.reduce((n, r) => n + r[2], 0)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
