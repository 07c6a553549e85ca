#!/usr/bin/env node
// `npm run package`: installable tarballs of the main package and of the
// platform binary packages, in dist/ (ignored).
//
//   node scripts/package.js [options]
//     --out DIR            where the tarballs go (default dist)
//     --platforms LIST     platform packages to stage and pack: names as in
//                          npm/ (linux-x64-gnu,...), or "all"; default: this
//                          machine's platform
//     --stage-only         copy the binaries, license files and notices into
//                          npm/<platform>/ and check them; pack nothing (the
//                          release workflow publishes from those folders)
//     --no-build           use lib/ and the binary as they are (default: build
//                          the TypeScript layer, and the addon if it is missing)
//     --sync-versions      after a version bump in package.json: set that
//                          version in npm/*/package.json, optionalDependencies
//                          and package-lock.json, then stop
//
// Steps: check that the versions agree (package.json, its
// optionalDependencies, npm/*/package.json); build; regenerate
// THIRD_PARTY_NOTICES.md when cargo can (else keep the committed one); copy
// the built virtio-queue.<platform>.node, the license files and the notices
// into each chosen npm/<platform>/; `npm pack --pack-destination` each of
// them and the main package (with --ignore-scripts, so `prepare` does not
// rebuild); then check what each tarball holds.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
/** Exports of the testing build only (cargo feature `testing`). */
const TESTING_HOOKS = [
  'benchNative',
  'forcePanicForTesting',
  'frontendCalls',
  'frontendKick',
  'frontendRequest',
  'frontendResult',
  'frontendStart',
]
const LICENSE_FILES = ['LICENSE-APACHE', 'LICENSE-BSD-3-Clause', 'THIRD_PARTY_NOTICES.md']
const TRIPLE_TO_PLATFORM = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
}

function say(msg) {
  console.error(`package: ${msg}`)
}
function die(msg) {
  say(`error: ${msg}`)
  process.exit(1)
}
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'))

function run(cmd, args, opts = {}) {
  say(`${cmd} ${args.join(' ')}${opts.cwd && opts.cwd !== root ? ` (in ${path.relative(root, opts.cwd)})` : ''}`)
  const r = spawnSync(cmd, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: opts.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    ...opts,
  })
  if (r.error) die(`could not run ${cmd}: ${r.error.message}`)
  if (r.status !== 0 && !opts.allowFail) die(`${cmd} ${args.join(' ')} failed (exit ${r.status})`)
  return r
}

function parseArgs(argv) {
  const opts = { out: path.join(root, 'dist'), platforms: null, stageOnly: false, build: true, syncVersions: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--out') opts.out = path.resolve(argv[++i] ?? die('--out needs a folder'))
    else if (a === '--platforms') opts.platforms = argv[++i] ?? die('--platforms needs a list')
    else if (a === '--stage-only') opts.stageOnly = true
    else if (a === '--no-build') opts.build = false
    else if (a === '--sync-versions') opts.syncVersions = true
    else if (a === '-h' || a === '--help') {
      console.log(
        fs
          .readFileSync(__filename, 'utf8')
          .split('\n')
          .slice(1, 18)
          .map((l) => l.replace(/^\/\/ ?/, ''))
          .join('\n'),
      )
      process.exit(0)
    } else die(`unknown argument ${a}`)
  }
  return opts
}

/** This machine's napi-rs platform name, as the loader computes it. */
function hostPlatform() {
  const { platformName, detectLibc } = require(path.join(root, 'lib', 'binding.js'))
  return platformName(process.platform, process.arch, detectLibc())
}

function checkVersions(pkg) {
  const declared = pkg.napi?.targets || []
  const problems = []
  const platforms = []
  for (const triple of declared) {
    const platform = TRIPLE_TO_PLATFORM[triple]
    if (!platform) {
      problems.push(`napi.targets has ${triple}, which scripts/package.js does not know`)
      continue
    }
    platforms.push(platform)
    const name = `virtio-queue-${platform}`
    const dir = path.join(root, 'npm', platform)
    if (!fs.existsSync(path.join(dir, 'package.json'))) {
      problems.push(`npm/${platform}/package.json is missing`)
      continue
    }
    const sub = readJson(path.join(dir, 'package.json'))
    if (sub.name !== name) problems.push(`npm/${platform}/package.json is named ${sub.name}, not ${name}`)
    if (sub.version !== pkg.version)
      problems.push(`npm/${platform}/package.json has version ${sub.version}, package.json ${pkg.version}`)
    if (sub.main !== `virtio-queue.${platform}.node`) problems.push(`npm/${platform}/package.json main is ${sub.main}`)
    const dep = pkg.optionalDependencies?.[name]
    if (dep !== pkg.version) problems.push(`optionalDependencies.${name} is ${dep}, not ${pkg.version}`)
  }
  for (const name of Object.keys(pkg.optionalDependencies || {})) {
    if (!platforms.some((p) => `virtio-queue-${p}` === name))
      problems.push(`optionalDependencies has ${name}, which no napi target builds`)
  }
  if (problems.length) die(`the packages disagree:\n  ${problems.join('\n  ')}`)
  return platforms
}

/**
 * Makes the platform packages, optionalDependencies and package-lock.json
 * carry package.json's version. The lock gets an entry for each platform
 * package (as npm writes for a platform package it did not install), so
 * that `npm ci` accepts the optional dependencies even before they are
 * published: npm then skips the ones for other platforms and, for this one,
 * an optional dependency it cannot fetch.
 */
function syncVersions(pkg) {
  const version = pkg.version
  const platforms = (pkg.napi.targets || []).map((t) => TRIPLE_TO_PLATFORM[t] || die(`unknown target ${t}`))
  const pkgFile = path.join(root, 'package.json')
  const manifest = readJson(pkgFile)
  manifest.optionalDependencies = manifest.optionalDependencies || {}
  const lockFile = path.join(root, 'package-lock.json')
  const lock = readJson(lockFile)
  lock.packages[''].optionalDependencies = lock.packages[''].optionalDependencies || {}
  for (const p of platforms) {
    const name = `virtio-queue-${p}`
    const subFile = path.join(root, 'npm', p, 'package.json')
    const sub = readJson(subFile)
    if (sub.version !== version) {
      sub.version = version
      fs.writeFileSync(subFile, JSON.stringify(sub, null, 2) + '\n')
      say(`npm/${p}/package.json: version ${version}`)
    }
    manifest.optionalDependencies[name] = version
    lock.packages[''].optionalDependencies[name] = version
    const key = `node_modules/${name}`
    const old = lock.packages[key]
    if (!old || old.version !== version) {
      const entry = { version, cpu: sub.cpu, license: sub.license, optional: true, os: sub.os }
      if (sub.libc) entry.libc = sub.libc
      if (sub.engines) entry.engines = sub.engines
      lock.packages[key] = entry
    }
  }
  fs.writeFileSync(pkgFile, JSON.stringify(manifest, null, 2) + '\n')
  fs.writeFileSync(lockFile, JSON.stringify(lock, null, 2) + '\n')
  // Let npm put the lock in its own order (it keeps the entries above).
  run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'])
  say(`version ${version} everywhere`)
}

function build(opts) {
  if (!opts.build) return
  const host = path.join(root, 'lib', 'binding.js')
  const hasAddon = fs.existsSync(host) && fs.existsSync(path.join(root, `virtio-queue.${hostPlatform()}.node`))
  run(process.execPath, [path.join('scripts', 'build.js'), ...(hasAddon ? ['--ts-only'] : [])])
}

/**
 * THIRD_PARTY_NOTICES.md (committed) is generated from the Debian crate
 * sources, whose copyright files carry the upstream copyright lines that some
 * crates' own sources lack. With those sources here (scripts/fetch-crates.sh
 * ran), regenerate it; otherwise (crates.io builds) only check that it lists
 * the crates Cargo.lock compiles in.
 */
function notices() {
  const script = path.join('scripts', 'third-party-notices.js')
  const debian =
    process.env.VIRTIO_QUEUE_CRATES !== 'crates-io' && fs.existsSync(path.join(root, '.crates', 'registry'))
  const r = run(process.execPath, debian ? [script] : [script, '--check'], { allowFail: true })
  if (r.status === 0) return
  if (!fs.existsSync(path.join(root, 'THIRD_PARTY_NOTICES.md'))) die('THIRD_PARTY_NOTICES.md is missing')
  if (r.status === 1) die('THIRD_PARTY_NOTICES.md does not match Cargo.lock (see above)')
  say('warning: could not run cargo metadata (see above); packing THIRD_PARTY_NOTICES.md unchecked')
}

function stage(platform, hostName) {
  const dir = path.join(root, 'npm', platform)
  const binary = `virtio-queue.${platform}.node`
  const built = path.join(root, binary)
  if (platform === hostName && fs.existsSync(built)) {
    fs.copyFileSync(built, path.join(dir, binary))
    say(`copied ${binary} into npm/${platform}/`)
  }
  if (!fs.existsSync(path.join(dir, binary))) {
    die(
      `npm/${platform}/${binary} is missing: build it on that platform (napi build --platform --release --target ...) and put it there`,
    )
  }
  // The product build only: the testing build's hooks (scripts/testing-addon.js) never ship.
  const bytes = fs.readFileSync(path.join(dir, binary))
  for (const hook of TESTING_HOOKS) {
    if (bytes.includes(hook)) die(`npm/${platform}/${binary} contains ${hook}: it is a testing build, not the product`)
  }
  for (const f of LICENSE_FILES) fs.copyFileSync(path.join(root, f), path.join(dir, f))
}

/**
 * A copy of the main package as it will be published: the files `npm pack`
 * takes, with a package.json that has no `scripts`. They only work in a
 * checkout (scripts/ is not shipped), and `prepare` (the native build) would
 * make npm list the package as having install scripts, though npm runs
 * `prepare` only for git and folder installs, never for a tarball.
 */
function stageMain(out) {
  const stageDir = path.join(out, '.stage', 'virtio-queue')
  fs.rmSync(stageDir, { recursive: true, force: true })
  const r = run('npm', ['pack', '.', '--dry-run', '--json', '--ignore-scripts'], { capture: true })
  for (const { path: f } of JSON.parse(r.stdout)[0].files) {
    fs.mkdirSync(path.dirname(path.join(stageDir, f)), { recursive: true })
    fs.copyFileSync(path.join(root, f), path.join(stageDir, f))
  }
  const manifest = readJson(path.join(root, 'package.json'))
  delete manifest.scripts
  fs.writeFileSync(path.join(stageDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
  return stageDir
}

/** npm pack --json: the tarball's name and the files in it. */
function pack(dir, out, extra) {
  const r = run('npm', ['pack', dir, '--pack-destination', out, '--json', ...extra], { capture: true })
  const info = JSON.parse(r.stdout)[0]
  return {
    file: path.join(out, info.filename),
    files: info.files.map((f) => f.path),
    size: info.size,
    unpacked: info.unpackedSize,
  }
}

function checkContents(label, files, { must, mustNot }) {
  const problems = []
  for (const m of must) if (!files.includes(m)) problems.push(`lacks ${m}`)
  for (const f of files) for (const re of mustNot) if (re.test(f)) problems.push(`holds ${f}`)
  if (problems.length) die(`${label}: ${problems.join(', ')}`)
}

function main() {
  const opts = parseArgs(process.argv.slice(2))
  const pkg = readJson(path.join(root, 'package.json'))
  if (opts.syncVersions) return syncVersions(pkg)
  const declared = checkVersions(pkg)
  build(opts)
  if (!fs.existsSync(path.join(root, 'lib', 'index.js'))) die('lib/index.js is missing: run npm run build')
  const host = hostPlatform()
  let chosen
  if (!opts.platforms) chosen = [host]
  else if (opts.platforms === 'all') chosen = declared
  else
    chosen = opts.platforms
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  for (const p of chosen) if (!declared.includes(p)) die(`${p} is not a declared platform (${declared.join(', ')})`)

  notices()
  for (const p of chosen) stage(p, host)
  if (opts.stageOnly) {
    say(`staged ${chosen.map((p) => `npm/${p}`).join(', ')}`)
    return
  }

  fs.mkdirSync(opts.out, { recursive: true })
  const results = []
  const forbidden = [
    /^crate\//,
    /^\.crates\//,
    /^target\//,
    /^src\//,
    /^__test__\//,
    /^scripts\//,
    /^npm\//,
    /\.node$/,
    /^Cargo\./,
    /^\.cargo\//,
    /\.tgz$/,
  ]
  const main = pack(stageMain(opts.out), opts.out, ['--ignore-scripts'])
  fs.rmSync(path.join(opts.out, '.stage'), { recursive: true, force: true })
  checkContents(path.basename(main.file), main.files, {
    must: [
      'package.json',
      'README.md',
      'CHANGELOG.md',
      'index.js',
      'index.mjs',
      'index.d.mts',
      'driver.js',
      'driver.mjs',
      'driver.d.ts',
      'driver.d.mts',
      'vhost-user.js',
      'vhost-user.mjs',
      'vhost-user.d.ts',
      'vhost-user.d.mts',
      'file.js',
      'file.mjs',
      'file.d.ts',
      'file.d.mts',
      'lib/index.js',
      'lib/index.d.ts',
      'lib/driver/index.js',
      'lib/driver/index.d.ts',
      'lib/vhost-user/index.js',
      'lib/vhost-user/index.d.ts',
      'lib/file/index.js',
      'lib/file/index.d.ts',
      'lib/binding.js',
      ...LICENSE_FILES,
    ],
    mustNot: forbidden,
  })
  results.push(main)
  for (const p of chosen) {
    const r = pack(`./npm/${p}`, opts.out, [])
    checkContents(path.basename(r.file), r.files, {
      must: ['package.json', 'README.md', `virtio-queue.${p}.node`, ...LICENSE_FILES],
      mustNot: [/^(?!virtio-queue\.[a-z0-9-]+\.node$).*\.node$/, /\.tgz$/],
    })
    results.push(r)
  }
  // Installing the main package must run nothing: no install scripts.
  for (const s of ['preinstall', 'install', 'postinstall'])
    if (pkg.scripts?.[s]) die(`package.json has a ${s} script: installing the tarball would run it`)
  for (const r of results) {
    console.log(
      `${path.relative(root, r.file)}  ${r.files.length} files, ${(r.size / 1024).toFixed(1)} KiB (${(r.unpacked / 1024).toFixed(1)} KiB unpacked)`,
    )
  }
}

main()
