// Finds and loads the native addon (virtio-queue.<platform>.node).
//
// Where it looks, in order:
//   1. VIRTIO_QUEUE_NATIVE_PATH, when set: that file and nothing else.
//   2. virtio-queue.<platform>.node at the package root: the file a build in
//      a checkout (`npm install`, `npm run build`) leaves there.
//   3. The optional-dependency package virtio-queue-<platform>, which npm
//      installs on the platform it was built for (os/cpu/libc in its
//      package.json) and which holds virtio-queue.<platform>.node.
// <platform> is napi-rs's naming: linux-x64-gnu, linux-x64-musl,
// darwin-arm64, win32-x64-msvc, ...
//
// When nothing loads, the error names the platform, every path and package
// it tried with the reason each failed, and how to build from source.
//
// The platform, arch and libc can be injected (loadBindingFrom), so the
// tests can check the error for a platform this machine is not.
import * as fs from 'node:fs'
import * as path from 'node:path'

export type Libc = 'glibc' | 'musl'

/** The binary packages this release publishes (package.json napi.targets). */
export const PREBUILT_PLATFORMS: readonly string[] = [
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-x64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
]

export const BINARY_NAME = 'virtio-queue'
export const ENV_NATIVE_PATH = 'VIRTIO_QUEUE_NATIVE_PATH'
export const ERR_NO_BINARY = 'ERR_VIRTIO_QUEUE_NO_BINARY'

/** The package root, as seen from the compiled lib/binding.js. */
const PACKAGE_ROOT = path.join(__dirname, '..')

/**
 * napi-rs's platform name for a platform/arch/libc triple, e.g.
 * linux-x64-gnu. Linux needs the libc (null: not known, taken as glibc).
 */
export function platformName(platform: string, arch: string, libc: Libc | null): string {
  switch (platform) {
    case 'linux':
      return `linux-${arch}-${libc === 'musl' ? 'musl' : 'gnu'}`
    case 'win32':
      return `win32-${arch}-msvc`
    default:
      return `${platform}-${arch}`
  }
}

export interface Candidate {
  /** Where this candidate comes from. */
  kind: 'env' | 'local' | 'package'
  /** An absolute file path (env, local) or a package name (package). */
  target: string
  /** How the error message introduces it. */
  label: string
}

export interface CandidateOptions {
  /** The environment to read VIRTIO_QUEUE_NATIVE_PATH from (default process.env). */
  env?: Record<string, string | undefined>
  /** The package root to look for a local build in (default: the package this file is in). */
  root?: string
}

/**
 * Every place the loader would try for this platform/arch/libc, in order.
 * When VIRTIO_QUEUE_NATIVE_PATH is set it is the only candidate: an explicit
 * choice never falls back to another binary.
 */
export function candidates(
  platform: string,
  arch: string,
  libc: Libc | null,
  options: CandidateOptions = {},
): Candidate[] {
  const env = options.env ?? process.env
  const root = options.root ?? PACKAGE_ROOT
  const override = env[ENV_NATIVE_PATH]
  if (override !== undefined && override !== '') {
    const target = path.resolve(override)
    return [{ kind: 'env', target, label: `${target} (from ${ENV_NATIVE_PATH})` }]
  }
  const name = platformName(platform, arch, libc)
  const local = path.join(root, `${BINARY_NAME}.${name}.node`)
  return [
    { kind: 'local', target: local, label: `${local} (local build)` },
    {
      kind: 'package',
      target: `${BINARY_NAME}-${name}`,
      label: `${BINARY_NAME}-${name} (optional dependency package)`,
    },
  ]
}

/** What loading one candidate came to. */
export interface Attempt {
  candidate: Candidate
  reason: string
}

export interface LoadOptions extends CandidateOptions {
  platform?: string
  arch?: string
  /** For Linux: the C library; detected when left out. Ignored elsewhere. */
  libc?: Libc | null
  /** The require to load with (default: this module's). */
  requireFn?: NodeJS.Require
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? String(err)
  return String(err)
}

function isModuleNotFound(err: unknown, request: string): boolean {
  if (!(err instanceof Error) || (err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') return false
  return err.message.includes(`'${request}'`)
}

function tryLoad(candidate: Candidate, req: NodeJS.Require): { binding: unknown } | { reason: string } {
  if (candidate.kind === 'package') {
    let resolved: string
    try {
      resolved = req.resolve(candidate.target)
    } catch (err) {
      if (isModuleNotFound(err, candidate.target)) {
        return {
          reason:
            'not installed (npm installs it only on its own platform, and not with --omit=optional or --no-optional)',
        }
      }
      return { reason: errorMessage(err) }
    }
    try {
      return { binding: req(resolved) }
    } catch (err) {
      return { reason: `${resolved}: ${errorMessage(err)}` }
    }
  }
  if (!fs.existsSync(candidate.target)) return { reason: 'no such file' }
  try {
    return { binding: req(candidate.target) }
  } catch (err) {
    return { reason: errorMessage(err) }
  }
}

/** The error thrown when no binary loads, with code ERR_VIRTIO_QUEUE_NO_BINARY. */
export interface NoBinaryError extends Error {
  code: typeof ERR_NO_BINARY
  platform: string
  arch: string
  libc: Libc | null
  attempts: Attempt[]
}

export function noBinaryError(platform: string, arch: string, libc: Libc | null, attempts: Attempt[]): NoBinaryError {
  const name = platformName(platform, arch, libc)
  const libcText = platform === 'linux' ? (libc ?? 'unknown (taken as glibc)') : 'n/a'
  const lines = [
    `virtio-queue: could not load the native addon for platform=${platform} arch=${arch} libc=${libcText} (${name}).`,
  ]
  if (attempts.some((a) => a.candidate.kind === 'env')) {
    lines.push(`${ENV_NATIVE_PATH} is set, so only that file was tried.`)
  } else if (!PREBUILT_PLATFORMS.includes(name)) {
    lines.push(`No prebuilt binary is published for ${name}; prebuilt: ${PREBUILT_PLATFORMS.join(', ')}.`)
  }
  lines.push('Tried:')
  for (const a of attempts) lines.push(`  - ${a.candidate.label}: ${a.reason}`)
  lines.push(
    'To build from source: in a checkout of virtio-queue with Rust >= 1.82 and cargo installed, run `npm install`',
    `(it builds ${BINARY_NAME}.${name}.node at the checkout's root); then use that checkout, or point ${ENV_NATIVE_PATH}`,
    'at the built file. See the README section "Building from source".',
  )
  const err = new Error(lines.join('\n')) as NoBinaryError
  err.code = ERR_NO_BINARY
  err.platform = platform
  err.arch = arch
  err.libc = libc
  err.attempts = attempts
  return err
}

/** Loads the binding for the given (or this) platform, or throws a NoBinaryError. */
export function loadBindingFrom(options: LoadOptions = {}): unknown {
  const platform = options.platform ?? process.platform
  const arch = options.arch ?? process.arch
  const libc = platform === 'linux' ? (options.libc !== undefined ? options.libc : detectLibc()) : null
  const req = options.requireFn ?? require
  const attempts: Attempt[] = []
  for (const candidate of candidates(platform, arch, libc, options)) {
    const result = tryLoad(candidate, req)
    if ('binding' in result) return result.binding
    attempts.push({ candidate, reason: result.reason })
  }
  throw noBinaryError(platform, arch, libc, attempts)
}

let cached: unknown

/** The native addon for this process's platform (loaded once). */
export function loadBinding(): unknown {
  if (cached === undefined) cached = loadBindingFrom()
  return cached
}

let detectedLibc: Libc | null | undefined

/**
 * The C library of this Linux process: glibc or musl (null when neither
 * check can tell; not Linux: null). Reads /usr/bin/ldd, a script on glibc
 * systems and the musl loader itself on musl ones, then falls back to the
 * process report (glibcVersionRuntime and the loaded shared objects).
 */
export function detectLibc(): Libc | null {
  if (process.platform !== 'linux') return null
  if (detectedLibc !== undefined) return detectedLibc
  detectedLibc = libcFromLdd() ?? libcFromReport()
  return detectedLibc
}

function libcFromLdd(): Libc | null {
  let text: string
  try {
    // Only the start: enough for a glibc script's header or musl's strings.
    const fd = fs.openSync('/usr/bin/ldd', 'r')
    try {
      const buf = Buffer.alloc(64 * 1024)
      const n = fs.readSync(fd, buf, 0, buf.length, 0)
      text = buf.subarray(0, n).toString('latin1')
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return null
  }
  if (text.includes('musl')) return 'musl'
  if (text.includes('GNU C Library') || text.includes('GLIBC') || text.includes('glibc')) return 'glibc'
  return null
}

function libcFromReport(): Libc | null {
  const report = process.report as { excludeNetwork?: boolean; getReport(): unknown } | undefined
  if (!report || typeof report.getReport !== 'function') return null
  try {
    // Skip the network part of the report (slow where DNS is): Node >= 20.13.
    const saved = report.excludeNetwork
    if (typeof saved === 'boolean') report.excludeNetwork = true
    let data: { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] }
    try {
      data = report.getReport() as typeof data
    } finally {
      if (typeof saved === 'boolean') report.excludeNetwork = saved
    }
    if (data.header?.glibcVersionRuntime) return 'glibc'
    if (Array.isArray(data.sharedObjects) && data.sharedObjects.some((f) => /ld-musl-|libc\.musl-/.test(f)))
      return 'musl'
  } catch {
    // no report: unknown
  }
  return null
}
