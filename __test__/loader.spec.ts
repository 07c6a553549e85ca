// The native-addon loader (src/binding.ts): the candidates it tries, the
// error when none loads (for platforms this machine is not), the
// VIRTIO_QUEUE_NATIVE_PATH override, and the real load on this machine.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

import {
  ERR_NO_BINARY,
  PREBUILT_PLATFORMS,
  candidates,
  detectLibc,
  loadBinding,
  loadBindingFrom,
  platformName,
  type NoBinaryError,
} from '../src/binding'

const root = path.join(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  napi: { targets: string[] }
  optionalDependencies?: Record<string, string>
  version: string
}

function thrown(fn: () => unknown): NoBinaryError {
  try {
    fn()
  } catch (err) {
    return err as NoBinaryError
  }
  throw new Error('expected a throw')
}

test('platform names follow napi-rs', (t) => {
  t.is(platformName('linux', 'x64', 'glibc'), 'linux-x64-gnu')
  t.is(platformName('linux', 'x64', null), 'linux-x64-gnu')
  t.is(platformName('linux', 'x64', 'musl'), 'linux-x64-musl')
  t.is(platformName('linux', 'arm64', 'glibc'), 'linux-arm64-gnu')
  t.is(platformName('darwin', 'arm64', null), 'darwin-arm64')
  t.is(platformName('darwin', 'x64', null), 'darwin-x64')
  t.is(platformName('win32', 'x64', null), 'win32-x64-msvc')
  t.is(platformName('freebsd', 'riscv64', null), 'freebsd-riscv64')
})

test('candidates: the local build at the package root, then the platform package', (t) => {
  const list = candidates('darwin', 'arm64', null, { env: {}, root: '/pkg' })
  t.deepEqual(
    list.map((c) => [c.kind, c.target]),
    [
      ['local', path.join('/pkg', 'virtio-queue.darwin-arm64.node')],
      ['package', 'virtio-queue-darwin-arm64'],
    ],
  )
  // The default root is the package root (lib/.. once compiled, src/.. here).
  t.is(candidates('linux', 'x64', 'glibc', { env: {} })[0]!.target, path.join(root, 'virtio-queue.linux-x64-gnu.node'))
})

test('VIRTIO_QUEUE_NATIVE_PATH is the only candidate when set', (t) => {
  const list = candidates('linux', 'x64', 'musl', { env: { VIRTIO_QUEUE_NATIVE_PATH: 'some/where.node' } })
  t.is(list.length, 1)
  t.is(list[0]!.kind, 'env')
  t.is(list[0]!.target, path.resolve('some/where.node'))
})

test('every prebuilt platform has a target in package.json and an optional dependency at the same version', (t) => {
  const triples: Record<string, string> = {
    'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
    'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
    'linux-x64-musl': 'x86_64-unknown-linux-musl',
    'darwin-x64': 'x86_64-apple-darwin',
    'darwin-arm64': 'aarch64-apple-darwin',
    'win32-x64-msvc': 'x86_64-pc-windows-msvc',
  }
  t.deepEqual([...PREBUILT_PLATFORMS].sort(), Object.keys(triples).sort())
  t.deepEqual([...pkg.napi.targets].sort(), Object.values(triples).sort())
  for (const name of PREBUILT_PLATFORMS) {
    t.is(pkg.optionalDependencies?.[`virtio-queue-${name}`], pkg.version, name)
    const sub = JSON.parse(fs.readFileSync(path.join(root, 'npm', name, 'package.json'), 'utf8')) as {
      name: string
      version: string
      main: string
    }
    t.is(sub.name, `virtio-queue-${name}`)
    t.is(sub.version, pkg.version)
    t.is(sub.main, `virtio-queue.${name}.node`)
  }
})

test('an unsupported platform: the error names it, what was tried and why, and how to build', (t) => {
  const err = thrown(() =>
    loadBindingFrom({ platform: 'freebsd', arch: 'riscv64', env: {}, root: '/nonexistent-root' }),
  )
  t.is(err.code, ERR_NO_BINARY)
  t.is(err.platform, 'freebsd')
  t.is(err.arch, 'riscv64')
  t.is(err.libc, null)
  t.is(err.attempts.length, 2)
  const msg = err.message
  t.regex(msg, /platform=freebsd arch=riscv64 libc=n\/a \(freebsd-riscv64\)/)
  t.regex(msg, /No prebuilt binary is published for freebsd-riscv64; prebuilt: linux-x64-gnu, linux-arm64-gnu/)
  t.true(
    msg.includes(`${path.join('/nonexistent-root', 'virtio-queue.freebsd-riscv64.node')} (local build): no such file`),
  )
  t.regex(msg, /virtio-queue-freebsd-riscv64 \(optional dependency package\): not installed/)
  t.regex(msg, /Rust >= 1\.82/)
  t.regex(msg, /`npm install`/)
  t.regex(msg, /README section "Building from source"/)
  t.regex(msg, /VIRTIO_QUEUE_NATIVE_PATH/)
})

test('a supported platform whose package is missing (linux-x64-musl here): libc is in the message', (t) => {
  const err = thrown(() => loadBindingFrom({ platform: 'linux', arch: 'x64', libc: 'musl', env: {} }))
  t.is(err.code, ERR_NO_BINARY)
  t.regex(err.message, /platform=linux arch=x64 libc=musl \(linux-x64-musl\)/)
  t.false(err.message.includes('No prebuilt binary is published'))
  t.regex(err.message, /virtio-queue\.linux-x64-musl\.node \(local build\): no such file/)
  t.regex(err.message, /virtio-queue-linux-x64-musl \(optional dependency package\): not installed/)
})

test('a file that is not a loadable addon: the reason is the load error', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vq-loader-'))
  try {
    const bogus = path.join(dir, 'virtio-queue.linux-x64-gnu.node')
    fs.writeFileSync(bogus, 'not an ELF file')
    const err = thrown(() => loadBindingFrom({ platform: 'linux', arch: 'x64', libc: 'glibc', env: {}, root: dir }))
    t.is(err.code, ERR_NO_BINARY)
    const local = err.attempts[0]!
    t.is(local.candidate.kind, 'local')
    t.not(local.reason, 'no such file')
    t.true(err.message.includes(`${bogus} (local build): ${local.reason}`))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('VIRTIO_QUEUE_NATIVE_PATH naming a missing file fails without falling back', (t) => {
  const missing = path.join(os.tmpdir(), 'no-such-virtio-queue.node')
  const err = thrown(() => loadBindingFrom({ env: { VIRTIO_QUEUE_NATIVE_PATH: missing } }))
  t.is(err.code, ERR_NO_BINARY)
  t.is(err.attempts.length, 1)
  t.regex(err.message, /VIRTIO_QUEUE_NATIVE_PATH is set, so only that file was tried/)
  t.true(err.message.includes(`${missing} (from VIRTIO_QUEUE_NATIVE_PATH): no such file`))
})

const isNativeHost = process.platform === 'linux' && process.arch === 'x64'
const builtHere = path.join(root, 'virtio-queue.linux-x64-gnu.node')

test('libc detection on this machine', (t) => {
  if (process.platform !== 'linux') {
    t.is(detectLibc(), null)
    return
  }
  const report = process.report.getReport() as { header: { glibcVersionRuntime?: string } }
  t.is(detectLibc(), report.header.glibcVersionRuntime ? 'glibc' : 'musl')
})

function looksLikeBinding(t: { is: (a: unknown, b: unknown, m?: string) => void }, binding: unknown) {
  const b = binding as Record<string, unknown>
  for (const name of ['memoryCreate', 'queueNew', 'popChains', 'addUsed']) t.is(typeof b[name], 'function', name)
}

test('the real load works', (t) => {
  const binding = loadBinding()
  looksLikeBinding(t, binding)
  t.is(loadBinding(), binding, 'loaded once')
})

test('VIRTIO_QUEUE_NATIVE_PATH loads the file it names', (t) => {
  if (!isNativeHost || !fs.existsSync(builtHere)) {
    t.pass('no local linux-x64-gnu build to point at')
    return
  }
  const binding = loadBindingFrom({ env: { VIRTIO_QUEUE_NATIVE_PATH: builtHere } })
  looksLikeBinding(t, binding)
})

// index.mjs, driver.mjs and vhost-user.mjs list the CommonJS entries' names by hand: they
// must not drift (this needs the compiled lib/, as the entries load it).
for (const entry of ['index', 'driver', 'vhost-user']) {
  test(`${entry}.mjs exports every name of ${entry}.js, the same objects`, async (t) => {
    const cjs = require(path.join(root, `${entry}.js`)) as Record<string, unknown>
    const esm = (await import(pathToFileURL(path.join(root, `${entry}.mjs`)).href)) as Record<string, unknown>
    t.deepEqual(Object.keys(esm).sort(), Object.keys(cjs).sort())
    for (const name of Object.keys(cjs)) t.is(esm[name], cjs[name], name)
  })
}

// package.json "sideEffects" tells bundlers which modules must run even when none of their
// exports is used: lib/native.js loads and initialises the addon on import; the rest of
// lib/ only defines things (those importing native.js reach it through that import).
const addonLoadedBy = (file: string): boolean => {
  const script = `require(${JSON.stringify(file)}); process.stdout.write(String(Object.keys(require.cache).some((f) => f.endsWith('.node'))))`
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }) === 'true'
}

test('package.json sideEffects lists the module that loads the addon, and only shipped files', (t) => {
  const { sideEffects, files } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    sideEffects: unknown
    files: string[]
  }
  t.true(Array.isArray(sideEffects), 'a list of files, not a boolean')
  const listed = sideEffects as string[]
  t.true(listed.includes('./lib/native.js'))
  for (const f of listed) {
    t.true(fs.existsSync(path.join(root, f)), `${f} exists`)
    t.true(
      files.some((shipped) => path.normalize(f).startsWith(path.normalize(shipped))),
      `${f} is in the package`,
    )
    t.true(addonLoadedBy(path.join(root, f)), `importing ${f} loads the addon (a side effect)`)
  }
})

test('the driver entry has no side effect: importing it loads no addon', (t) => {
  t.false(addonLoadedBy(path.join(root, 'driver.js')))
  t.true(addonLoadedBy(path.join(root, 'index.js')), 'while the main entry does')
})
