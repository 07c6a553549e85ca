#!/usr/bin/env bash
# Instructions per chain of the native hot path, counted by callgrind, with and
# without the codegen flags of scripts/rustflags.js (README, "What limits the
# native path"):
#   - the native benchmark loop (engine::bench::run over the blk workload) in the
#     testing addon, and in the standalone executable built from the same engine
#     source (bench/standalone): what running inside the Node addon costs;
#   - the JS batch path's native calls (popChains + addUsedBatch, the exports
#     only: the JavaScript around them is not counted).
# Each count is taken at two round counts and differenced, so start-up and
# set-up cancel. Instruction counts repeat from run to run; times on a shared
# machine do not.
#
#   bash bench/codegen.sh        needs valgrind (apt-get install valgrind); ~4 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
flags=$(node -p "require('./scripts/rustflags').CODEGEN_RUSTFLAGS")
plat=$(node -p "require('./lib/binding.js').platformName(process.platform, process.arch, require('./lib/binding.js').detectLibc())")
addon="virtio-queue.$plat.node"

# The testing addon as shipped builds make it (with the flags), and without them.
node scripts/build.js --testing >&2
env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS node_modules/.bin/napi build --platform --release \
  --manifest-path crate/Cargo.toml --features testing --target-dir target/codegen-default \
  --output-dir build/codegen-default --no-js >&2
sa() {
  cargo build --release --manifest-path bench/standalone/Cargo.toml --target-dir "$1" >&2
}
RUSTFLAGS= sa target/standalone
RUSTFLAGS="$flags" sa target/standalone-flags

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
A=100 B=300 CHAINS=128

# count <label> <toggle-collect pattern...> -- <command...>: prints Ir per chain.
count() {
  local label=$1 toggles=() ir=()
  shift
  while [ "$1" != -- ]; do toggles+=("--toggle-collect=$1"); shift; done
  shift
  for r in $A $B; do
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$r" "${toggles[@]}" "$@" "$r" >/dev/null 2>"$out/log.$r" \
      || { cat "$out/log.$r" >&2; exit 1; }
    ir+=("$(sed -n 's/.*Collected : //p' "$out/log.$r")")
  done
  awk -v l="$label" -v a="${ir[0]}" -v b="${ir[1]}" -v n=$(((B - A) * CHAINS)) \
    'BEGIN { printf "%-58s %7.1f instructions/chain\n", l, (b - a) / n }'
}

default="$PWD/build/codegen-default/$addon"
flagged="$PWD/build/testing/$addon"

echo "codegen flags: $flags"
count 'native loop, standalone executable, default flags' 'standalone::main' -- target/standalone/release/standalone
count 'native loop, standalone executable, codegen flags' 'standalone::main' -- target/standalone-flags/release/standalone
VIRTIO_QUEUE_NATIVE_PATH=$default count 'native loop, testing addon, default flags' '*bench_native*' -- node --import tsx bench/callgrind.ts native
VIRTIO_QUEUE_NATIVE_PATH=$flagged count 'native loop, testing addon, codegen flags' '*bench_native*' -- node --import tsx bench/callgrind.ts native
VIRTIO_QUEUE_NATIVE_PATH=$default count 'batch path popChains + addUsedBatch, default flags' \
  '*js::queue::pop_chains*' '*js::queue::add_used_batch*' -- node --import tsx bench/callgrind.ts batch
VIRTIO_QUEUE_NATIVE_PATH=$flagged count 'batch path popChains + addUsedBatch, codegen flags' \
  '*js::queue::pop_chains*' '*js::queue::add_used_batch*' -- node --import tsx bench/callgrind.ts batch
