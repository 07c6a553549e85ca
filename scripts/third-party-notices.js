#!/usr/bin/env node
// Writes THIRD_PARTY_NOTICES.md: the Rust crates compiled into the native
// addon, each with its name, version, license expression and license texts.
//
//   node scripts/third-party-notices.js            write THIRD_PARTY_NOTICES.md
//   node scripts/third-party-notices.js --check    fail if the crates listed in
//                                                  it differ from Cargo.lock's
//   options: --out FILE, --target TRIPLE (repeatable; default: package.json
//            napi.targets), --online (let cargo metadata use the network)
//
// The crates are the normal dependency closure of the virtio-queue-node
// crate, per target, from `cargo metadata --offline --filter-platform T`:
// dev-dependencies and build-dependencies are left out, and so are proc-macro
// crates and what only they depend on (they run inside the compiler and put
// no code of their own into the binary; they are listed by name as
// build-time tools). Run it after `bash scripts/fetch-crates.sh` (or a
// crates.io build), so that every crate's sources are on disk.
//
// License texts come from the crate's own LICENSE*/COPYING*/NOTICE* files.
// A crate that ships none (several rust-vmm crates don't) gets the copyright
// file of its Debian package when scripts/fetch-crates.sh downloaded one
// (.crates/apt/debs), else the standard text of its license, marked as such.
'use strict'
const { spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const ROOT_CRATE = 'virtio-queue-node'
const TABLE_HEADER = '| Crate | Version | License | Targets |'

// Exit codes: 1 the notices do not match (--check) or bad usage; 3 cargo
// metadata could not run (no crate sources here).
function die(msg, code = 1) {
  console.error(`third-party-notices: ${msg}`)
  process.exit(code)
}

function parseArgs(argv) {
  const opts = { out: path.join(root, 'THIRD_PARTY_NOTICES.md'), targets: [], check: false, online: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--check') opts.check = true
    else if (a === '--online') opts.online = true
    else if (a === '--out') opts.out = path.resolve(argv[++i] ?? die('--out needs a file'))
    else if (a === '--target') opts.targets.push(argv[++i] ?? die('--target needs a triple'))
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/third-party-notices.js [--check] [--out FILE] [--target TRIPLE]... [--online]')
      process.exit(0)
    } else die(`unknown argument ${a}`)
  }
  if (opts.targets.length === 0) {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    opts.targets = pkg.napi?.targets || ['x86_64-unknown-linux-gnu']
  }
  return opts
}

function cargoMetadata(target, online) {
  const args = ['metadata', '--format-version', '1', '--filter-platform', target]
  if (!online) args.splice(1, 0, '--offline')
  const r = spawnSync('cargo', args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  if (r.error) die(`could not run cargo: ${r.error.message}`, 3)
  if (r.status !== 0) {
    die(
      `cargo ${args.join(' ')} failed:\n${r.stderr}\n(run \`bash scripts/fetch-crates.sh\` first, or pass --online with VIRTIO_QUEUE_CRATES=crates-io)`,
      3,
    )
  }
  return JSON.parse(r.stdout)
}

/** The crates linked into the binary for one target, and the build-time-only ones. */
function closure(meta) {
  const byId = new Map(meta.packages.map((p) => [p.id, p]))
  const nodes = new Map(meta.resolve.nodes.map((n) => [n.id, n]))
  const rootPkg = meta.packages.find((p) => p.name === ROOT_CRATE && meta.workspace_members.includes(p.id))
  if (!rootPkg) die(`no workspace member named ${ROOT_CRATE}`)
  const isProcMacro = (p) => p.targets.some((t) => t.kind.includes('proc-macro'))
  const linked = new Set()
  const buildOnly = new Set()
  const queue = [rootPkg.id]
  const seen = new Set(queue)
  while (queue.length) {
    const id = queue.shift()
    for (const dep of nodes.get(id).deps) {
      // kind null: a normal dependency ("dev" and "build" are left out).
      if (!dep.dep_kinds.some((k) => k.kind === null)) continue
      if (seen.has(dep.pkg)) continue
      seen.add(dep.pkg)
      const pkg = byId.get(dep.pkg)
      if (isProcMacro(pkg)) {
        collectAll(dep.pkg, nodes, buildOnly)
        continue
      }
      linked.add(dep.pkg)
      queue.push(dep.pkg)
    }
  }
  for (const id of linked) buildOnly.delete(id)
  return { linked: [...linked].map((id) => byId.get(id)), buildOnly: [...buildOnly].map((id) => byId.get(id)) }
}

function collectAll(id, nodes, into) {
  if (into.has(id)) return
  into.add(id)
  for (const dep of nodes.get(id).deps) collectAll(dep.pkg, nodes, into)
}

const LICENSE_FILE = /^(licen[cs]e|copying|copyright|notice|unlicense)([-._].*)?$/i

function crateLicenseFiles(dir) {
  let names
  try {
    names = fs.readdirSync(dir)
  } catch {
    return []
  }
  return names
    .filter((n) => LICENSE_FILE.test(n) && fs.statSync(path.join(dir, n)).isFile())
    .sort()
    .map((n) => ({ title: n, source: `the crate's ${n}`, text: fs.readFileSync(path.join(dir, n), 'utf8') }))
}

/** The copyright file of the crate's Debian package, if fetch-crates.sh downloaded it. */
function debianCopyright(name, version) {
  const debs = path.join(root, '.crates', 'apt', 'debs')
  let files
  try {
    files = fs.readdirSync(debs)
  } catch {
    return []
  }
  const base = name
    .toLowerCase()
    .replace(/_/g, '-')
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const ver = version.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const re = new RegExp(`^(librust-${base}(-[0-9.]+)?-dev)_${ver}-[^_]+_[a-z0-9]+\\.deb$`)
  for (const f of files.sort()) {
    const m = re.exec(f)
    if (!m) continue
    const member = `./usr/share/doc/${m[1]}/copyright`
    const r = spawnSync(
      'sh',
      ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2"', 'sh', path.join(debs, f), member],
      {
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
      },
    )
    if (r.status === 0 && r.stdout.trim()) {
      return [
        {
          title: `Debian copyright file (${m[1]})`,
          source: `the copyright file of the Debian package ${m[1]} (the crate ships no license file)`,
          text: r.stdout,
        },
      ]
    }
  }
  return []
}

// Standard texts, for crates that ship no license file and have no Debian copyright file.
const MIT_TEXT = `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`

function standardTexts(pkg) {
  const ids = (pkg.license || '')
    .split(/[\s()/]+|\bOR\b|\bAND\b|\bWITH\b/)
    .filter((s) => /^[A-Za-z0-9.-]+$/.test(s) && !/^(OR|AND|WITH)$/.test(s))
  const holders = pkg.authors?.length ? pkg.authors.join(', ') : `the ${pkg.name} authors`
  const out = []
  for (const id of [...new Set(ids)]) {
    let text
    if (id === 'Apache-2.0') text = fs.readFileSync(path.join(root, 'LICENSE-APACHE'), 'utf8')
    else if (id === 'BSD-3-Clause') {
      text = fs
        .readFileSync(path.join(root, 'LICENSE-BSD-3-Clause'), 'utf8')
        .replace(/^Copyright .*\n/, `Copyright (c) ${holders}.\n`)
    } else if (id === 'MIT') text = `Copyright (c) ${holders}\n\n${MIT_TEXT}`
    else continue
    const note =
      id === 'Apache-2.0'
        ? 'the crate ships no copy of it'
        : 'the crate ships no license file; copyright holders from its Cargo.toml authors'
    out.push({ title: `${id} (standard text)`, source: `the standard ${id} text (${note})`, text })
  }
  return out
}

function fenceFor(text) {
  const runs = text.match(/`+/g) || []
  const longest = runs.reduce((n, r) => Math.max(n, r.length), 2)
  return '`'.repeat(longest + 1)
}

function render(crates, buildOnly, targets) {
  const lines = []
  lines.push('# Third-party notices', '')
  lines.push(
    'The native addon of virtio-queue (`virtio-queue.<platform>.node`, in the platform packages',
    "`virtio-queue-<platform>`) is compiled from this project's own Rust code (Apache-2.0 OR",
    'BSD-3-Clause: see LICENSE-APACHE and LICENSE-BSD-3-Clause) and the Rust crates below,',
    'which are statically linked into it. They are the normal dependency closure of the',
    `\`${ROOT_CRATE}\` crate as \`cargo metadata\` resolves it from Cargo.lock, for the targets`,
    targets.map((t) => `\`${t}\``).join(', ') + '.',
    '',
    'Generated by `scripts/third-party-notices.js`; do not edit by hand.',
    '',
    TABLE_HEADER,
    '| --- | --- | --- | --- |',
  )
  for (const c of crates) {
    const where = c.targets.length === targets.length ? 'all' : c.targets.join(', ')
    lines.push(`| ${c.pkg.name} | ${c.pkg.version} | ${c.pkg.license || 'unknown'} | ${where} |`)
  }
  lines.push('')
  if (buildOnly.length) {
    lines.push(
      'Used at build time only (procedural macros and their dependencies, which run inside the',
      'compiler and are not part of the binary): ' +
        buildOnly.map((p) => `${p.name} ${p.version} (${p.license})`).join(', ') +
        '.',
      '',
    )
  }
  lines.push(
    'The binary also contains parts of the Rust standard library (`std`, `core`, `alloc`),',
    'licensed MIT OR Apache-2.0 by the Rust project contributors; the Apache-2.0 text is in',
    'LICENSE-APACHE.',
    '',
  )
  const printed = new Map() // text hash -> "crate version, FILE"
  for (const c of crates) {
    const p = c.pkg
    lines.push(`## ${p.name} ${p.version}`, '')
    lines.push(`- License: ${p.license || 'unknown'}`)
    if (p.repository) lines.push(`- Repository: ${p.repository}`)
    if (p.authors?.length) lines.push(`- Authors: ${p.authors.join(', ')}`)
    lines.push('')
    if (c.texts.length === 0) {
      lines.push('No license text found for this crate.', '')
      continue
    }
    for (const t of c.texts) {
      // Texts that differ only in white space are printed once.
      const hash = crypto.createHash('sha256').update(t.text.replace(/\s+/g, ' ').trim()).digest('hex')
      lines.push(`### ${t.title}`, '')
      if (printed.has(hash)) {
        lines.push(`From ${t.source}: the same text as ${printed.get(hash)} above.`, '')
        continue
      }
      printed.set(hash, `${p.name} ${p.version}, ${t.title}`)
      const fence = fenceFor(t.text)
      lines.push(`From ${t.source}:`, '', `${fence}text`, t.text.replace(/\r\n/g, '\n').replace(/\s+$/, ''), fence, '')
    }
  }
  return lines.join('\n').replace(/\n+$/, '\n')
}

function tableRows(markdown) {
  const lines = markdown.split('\n')
  const start = lines.indexOf(TABLE_HEADER)
  if (start < 0) return null
  const rows = []
  for (let i = start + 2; i < lines.length && lines[i].startsWith('|'); i++) rows.push(lines[i])
  return rows
}

function main() {
  const opts = parseArgs(process.argv.slice(2))
  const byId = new Map()
  const buildOnlyById = new Map()
  for (const target of opts.targets) {
    const meta = cargoMetadata(target, opts.online)
    const { linked, buildOnly } = closure(meta)
    for (const pkg of linked) {
      if (!byId.has(pkg.id)) byId.set(pkg.id, { pkg, targets: [] })
      byId.get(pkg.id).targets.push(target)
    }
    for (const pkg of buildOnly) buildOnlyById.set(pkg.id, pkg)
  }
  for (const id of byId.keys()) buildOnlyById.delete(id)
  const byName = (a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version)
  const crates = [...byId.values()].sort((a, b) => byName(a.pkg, b.pkg))
  const buildOnly = [...buildOnlyById.values()].sort(byName)
  for (const c of crates) {
    const dir = path.dirname(c.pkg.manifest_path)
    c.texts = crateLicenseFiles(dir)
    if (c.texts.length === 0) {
      c.texts = debianCopyright(c.pkg.name, c.pkg.version)
      // Debian's copyright files refer to /usr/share/common-licenses for the
      // Apache-2.0 text instead of holding it: add it.
      if (c.texts.length) c.texts.push(...standardTexts(c.pkg).filter((t) => t.title.startsWith('Apache-2.0')))
    }
    if (c.texts.length === 0) c.texts = standardTexts(c.pkg)
  }
  const text = render(crates, buildOnly, opts.targets)
  const rel = path.relative(root, opts.out)
  if (opts.check) {
    let current
    try {
      current = fs.readFileSync(opts.out, 'utf8')
    } catch {
      die(`${rel} is missing: run node scripts/third-party-notices.js`)
    }
    const want = tableRows(text)
    const have = tableRows(current)
    if (!have || have.join('\n') !== want.join('\n')) {
      die(
        `${rel} does not list the crates Cargo.lock compiles in:\n  listed: ${(have || []).join('\n          ')}\n  wanted: ${want.join('\n          ')}\nRun node scripts/third-party-notices.js after scripts/fetch-crates.sh.`,
      )
    }
    console.error(`third-party-notices: ${rel} lists the ${want.length} crates compiled in`)
    return
  }
  fs.writeFileSync(opts.out, text)
  const missing = crates.filter((c) => c.texts.length === 0).map((c) => c.pkg.name)
  console.error(`third-party-notices: wrote ${rel}: ${crates.length} crates (${buildOnly.length} build-time only)`)
  if (missing.length) console.error(`third-party-notices: warning: no license text for ${missing.join(', ')}`)
}

main()
