#!/usr/bin/env bash
# Installs the packed tarballs (npm run package) into a fresh temporary
# project, as a user would, and uses them there:
#   - with cargo and rustc absent from PATH, and no registry: npm installs
#     offline from the two tarballs (main package + this platform's binary
#     package), with the registry pointed at a closed local port;
#   - (a) the QueueGuard example through require('virtio-queue'), from the
#     platform package's binary, which must export no test or benchmark hook,
#   - (b) the same through import, plus the ESM/CJS export parity and the
#     virtio-queue/driver entry,
#   - (c) type-checks TypeScript files using the API under module: node16
#     (a CommonJS .ts and an ESM .mts) and under moduleResolution: bundler,
#     with the repo's own TypeScript, against the typings tsc emitted into lib/
#     (internal members stripped, package-made classes not constructible);
#   - publint and @arethetypeswrong/cli on the main tarball.
#
# Usage: scripts/pack-smoke.sh [--package] [DIST_DIR]
#   --package   run `node scripts/package.js` first
#   DIST_DIR    where the tarballs are (default: dist)
# Environment: KEEP_SMOKE_DIR=1 keeps the temporary project.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'pack-smoke: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

do_package=0
dist="$root/dist"
for arg in "$@"; do
  case "$arg" in
    --package) do_package=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) dist="$(cd "$arg" && pwd)" ;;
  esac
done

if [ "$do_package" = 1 ]; then
  node "$root/scripts/package.js" --out "$dist"
fi

version="$(node -p "require('$root/package.json').version")"
platform="$(node -p "const b = require('$root/lib/binding.js'); b.platformName(process.platform, process.arch, b.detectLibc())")"
main_tgz="$dist/virtio-queue-$version.tgz"
plat_tgz="$dist/virtio-queue-$platform-$version.tgz"
for f in "$main_tgz" "$plat_tgz"; do
  [ -f "$f" ] || die "$f is missing: run npm run package first (or pass --package)"
done
tsc="$root/node_modules/typescript/bin/tsc"
[ -f "$tsc" ] || die "$tsc is missing: run npm install in the repo"

# PATH without any folder that holds cargo or rustc (node and npm must stay).
clean_path=""
IFS=':' read -r -a dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ]; then continue; fi
  clean_path="${clean_path:+$clean_path:}$d"
done
if PATH="$clean_path" command -v cargo >/dev/null 2>&1 || PATH="$clean_path" command -v rustc >/dev/null 2>&1; then
  die "could not make a PATH without cargo and rustc"
fi
PATH="$clean_path" command -v node >/dev/null || die "node is in a folder that also holds cargo or rustc"
PATH="$clean_path" command -v npm >/dev/null || die "npm is in a folder that also holds cargo or rustc"

work="$(mktemp -d "${TMPDIR:-/tmp}/virtio-queue-smoke.XXXXXX")"
if [ "${KEEP_SMOKE_DIR:-0}" = 1 ]; then
  say "keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi
proj="$work/project"
mkdir -p "$proj"
cd "$proj"

# Everything below runs without cargo/rustc, with an empty npm cache and a
# registry nobody listens on: a download or a native build would fail.
export PATH="$clean_path"
export npm_config_cache="$work/npm-cache"
export npm_config_registry="http://127.0.0.1:9/"
export npm_config_offline=true
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
export CARGO_HOME="$work/no-cargo" RUSTUP_HOME="$work/no-rustup"
# The installed package's own loader must choose the binary (never the testing build).
unset VIRTIO_QUEUE_NATIVE_PATH
unset VIRTIO_QUEUE_NATIVE_PATH || true

cat > package.json <<'JSON'
{ "name": "virtio-queue-smoke", "version": "1.0.0", "private": true }
JSON

say "npm install --offline $(basename "$main_tgz") $(basename "$plat_tgz") (cargo/rustc not on PATH)"
npm install --offline "$main_tgz" "$plat_tgz" > "$work/install.log" 2>&1 || { cat "$work/install.log" >&2; die "npm install from the tarballs failed"; }
if grep -qi 'install scripts\|prepare' "$work/install.log"; then cat "$work/install.log" >&2; die "npm reports install scripts in the tarballs"; fi
[ -f node_modules/virtio-queue/lib/index.js ] || die "virtio-queue is not installed"
[ -f "node_modules/virtio-queue-$platform/virtio-queue.$platform.node" ] || die "virtio-queue-$platform is not installed"
# Nothing was built: no build folders, no other binaries in the main package.
if [ -n "$(find node_modules/virtio-queue \( -name target -o -name '*.node' -o -name crate -o -name .crates \) -print -quit)" ]; then
  die "the installed main package holds build output"
fi
node -e '
  const s = require("virtio-queue/package.json").scripts || {}
  for (const k of ["preinstall", "install", "postinstall"]) if (s[k]) { console.error("install script " + k); process.exit(1) }
' || die "the installed package has install scripts"
say "installed: $(node -p 'require("virtio-queue/package.json").version') + virtio-queue-$platform"

example='
m.writeU16(0x2002, 3)
let n = 0
for (;;) {
  g.disableNotification()
  for (const chain of g.iter()) {
    g.addUsed(chain.headIndex, 0x100)
    n++
    g.needsNotification()
  }
  if (!g.enableNotification()) break
}
if (n !== 3) throw new Error("expected 3 chains, got " + n)
'
setup='
const m = GuestMemory.fromRanges([[0, 0x10000]])
const q = new Queue(m, 1024)
const g = q.lockWithMemory()
g.setSize(8)
g.setDescTableAddress(0x1000)
g.setAvailRingAddress(0x2000)
g.setUsedRingAddress(0x3000)
g.setEventIdx(true)
g.setReady(true)
if (!g.isValid()) throw new Error("invalid")
'

# (a) CommonJS
cat > smoke.cjs <<JS
const { GuestMemory, Queue } = require('virtio-queue')
$setup
$example
// The binary came from the platform package, not from a checkout.
const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'))
const want = require('path').join('node_modules', 'virtio-queue-$platform', 'virtio-queue.$platform.node')
if (loaded.length !== 1 || !loaded[0].endsWith(want)) throw new Error('loaded ' + JSON.stringify(loaded) + ', expected ' + want)
// The product build: no test or benchmark hook (those are in the testing build only).
const binding = require(loaded[0])
for (const hook of ['benchNative', 'forcePanicForTesting', 'frontendStart', 'frontendRequest']) if (hook in binding) throw new Error('the packed binary exports ' + hook)
console.log('require: ' + n + ' chains, binary ' + loaded[0].slice(process.cwd().length + 1))
JS
node smoke.cjs || die "(a) require('virtio-queue') failed"

# (b) ESM
cat > smoke.mjs <<JS
import { GuestMemory, Queue } from 'virtio-queue'
import * as esm from 'virtio-queue'
import * as driver from 'virtio-queue/driver'
import * as vhostUser from 'virtio-queue/vhost-user'
import * as file from 'virtio-queue/file'
import { createRequire } from 'node:module'
$setup
$example
const require = createRequire(import.meta.url)
const same = (a, b) => JSON.stringify(Object.keys(a).sort()) === JSON.stringify(Object.keys(b).sort())
const cjs = require('virtio-queue')
if (!same(esm, cjs)) throw new Error('ESM exports ' + Object.keys(esm).sort() + ' differ from CJS ' + Object.keys(cjs).sort())
if (esm.GuestMemory !== cjs.GuestMemory) throw new Error('ESM and CJS load different module instances')
const cjsDriver = require('virtio-queue/driver')
if (!same(driver, cjsDriver)) throw new Error('ESM driver exports ' + Object.keys(driver).sort() + ' differ from CJS ' + Object.keys(cjsDriver).sort())
if (typeof driver.SplitQueueDriver !== 'function') throw new Error('no SplitQueueDriver')
const cjsVhostUser = require('virtio-queue/vhost-user')
if (!same(vhostUser, cjsVhostUser)) throw new Error('ESM vhost-user exports ' + Object.keys(vhostUser).sort() + ' differ from CJS ' + Object.keys(cjsVhostUser).sort())
if (vhostUser.VhostUserBackend !== cjsVhostUser.VhostUserBackend) throw new Error('no VhostUserBackend, or two module instances')
const cjsFile = require('virtio-queue/file')
if (!same(file, cjsFile)) throw new Error('ESM file exports ' + Object.keys(file).sort() + ' differ from CJS ' + Object.keys(cjsFile).sort())
if (file.punchHole !== cjsFile.punchHole) throw new Error('no punchHole, or two module instances')
if (file.SystemError !== esm.SystemError || typeof esm.SystemError !== 'function') throw new Error('virtio-queue/file and virtio-queue export different SystemError classes')
console.log('import: ' + n + ' chains; ' + Object.keys(esm).length + ' exports, driver ' + Object.keys(driver).length + ', same as CJS')
JS
node smoke.mjs || die "(b) import 'virtio-queue' failed"

# (c) TypeScript: the API's types, under node16 (CJS .ts and ESM .mts) and bundler.
ts_body='
const m: GuestMemory = GuestMemory.fromRanges([[0, 0x10000]])
const q: Queue = new Queue(m, 1024)
const g: QueueGuard = q.lockWithMemory()
g.setSize(8)
g.setDescTableAddress(0x1000)
g.setAvailRingAddress(0x2000)
g.setUsedRingAddress(0x3000)
g.setEventIdx(true)
g.setReady(true)
if (!g.isValid()) throw new VirtioQueueError("invalid queue", "InvalidSize")
m.writeU16(0x2002, 3)
let n = 0
for (;;) {
  g.disableNotification()
  for (const chain of g.iter()) {
    const c: DescriptorChain = chain
    const head: number = c.headIndex
    g.addUsed(head, 0x100)
    n++
    const notify: boolean = g.needsNotification()
    void notify
  }
  if (!g.enableNotification()) break
}
const state: QueueState = q.state()
const pageSize: number = PAGE_SIZE
// @ts-expect-error: sizes are numbers
g.setSize("8")
// @ts-expect-error: readers come from chain.reader(), not a constructor
void new Reader()
// @ts-expect-error: internal members are not in the typings
void m.handle
const layout: SplitQueueLayout = splitQueueLayout(0x1000, 8)
void layout, state, pageSize, SplitQueueDriver
const zeroed: Promise<void> = punchHole(0, 0n, 4096)
const how: ZeroRangeMethod = "zero-range"
// @ts-expect-error: lengths are numbers or bigints
void zeroRangeSync(0, 0, "4096")
declare const failure: unknown
if (failure instanceof SystemError && failure instanceof MainSystemError) {
  const code: `E${string}` = failure.code
  const errno: number = failure.errno
  const call: "preadv" | "pwritev" | "fdatasync" | "fallocate" | "pwrite" = failure.syscall
  void code, errno, call
}
void zeroed, how
const io = new FileIoBatch(4)
const run: Promise<FileIoBatch> = io.runAsync()
void run
export const chains: number = n
'
ts_imports_values='GuestMemory, Queue, Reader, VirtioQueueError, SystemError as MainSystemError, PAGE_SIZE, FileIoBatch'
ts_imports_types='type QueueGuard, type DescriptorChain, type QueueState'
{
  echo "import { $ts_imports_values, $ts_imports_types } from 'virtio-queue'"
  echo "import { SplitQueueDriver, splitQueueLayout, type SplitQueueLayout } from 'virtio-queue/driver'"
  echo "import { VhostUserBackend, type VhostUserDevice, type Vring } from 'virtio-queue/vhost-user'"
  echo "import { punchHole, zeroRangeSync, SystemError, type ZeroRangeMethod } from 'virtio-queue/file'"
  echo "$ts_body"
} > api.ts
cp api.ts api-esm.mts
common_opts='"strict": true, "noEmit": true, "skipLibCheck": false, "target": "es2022", "typeRoots": ["'"$root"'/node_modules/@types"], "types": ["node"]'
cat > tsconfig.node16.json <<JSON
{ "compilerOptions": { "module": "node16", "moduleResolution": "node16", $common_opts }, "files": ["api.ts", "api-esm.mts"] }
JSON
cat > tsconfig.bundler.json <<JSON
{ "compilerOptions": { "module": "esnext", "moduleResolution": "bundler", $common_opts }, "files": ["api.ts"] }
JSON
for cfg in node16 bundler; do
  node "$tsc" -p "tsconfig.$cfg.json" --listFiles > "$work/tsc-$cfg.log" 2>&1 || { cat "$work/tsc-$cfg.log" >&2; die "(c) tsc under $cfg failed"; }
  used="$(grep -o 'node_modules/virtio-queue/[a-z./-]*\.d\.m\?ts' "$work/tsc-$cfg.log" | sort -u | tr '\n' ' ')"
  # The API's typings are the ones tsc emitted from src/ into lib/ (the root .d.mts/.d.ts
  # files only re-export them), with the @internal members stripped.
  case "$used" in *node_modules/virtio-queue/lib/index.d.ts*) ;; *) die "(c) tsc under $cfg did not read lib/index.d.ts: $used" ;; esac
  say "tsc ($cfg): ok, types from $(tr ' ' '\n' <<< "$used" | grep -v '/lib/' | tr '\n' ' ')+ $(tr ' ' '\n' <<< "$used" | grep -c '/lib/') emitted lib/ declarations"
done

# publint and arethetypeswrong on the main tarball (the repo's copies).
publint="$root/node_modules/publint/src/cli.js"
attw="$root/node_modules/@arethetypeswrong/cli/dist/index.js"
if [ -f "$publint" ] && [ -f "$attw" ]; then
  node "$publint" run "$main_tgz" --strict > "$work/publint.log" 2>&1 || { cat "$work/publint.log" >&2; die "publint failed"; }
  say "publint: $(grep -E 'All good|problem|uggestion|arning|rror' "$work/publint.log" | tr '\n' ' ' | tr -s ' ')"
  node "$attw" "$main_tgz" --format ascii > "$work/attw.log" 2>&1 || { cat "$work/attw.log" >&2; die "@arethetypeswrong/cli failed"; }
  say "attw: no problems"
else
  say "publint/attw not installed in the repo: skipped"
fi

say "all passed"
