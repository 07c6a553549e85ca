#!/usr/bin/env bash
# Instructions per chain of the native benchmark loop (engine::bench::run over
# the blk workload), counted by callgrind, in the testing addon and in the
# standalone executable built from the same engine source (bench/standalone):
# what running inside the Node addon costs in code generation. Each count is
# taken at two round counts and differenced, so start-up and set-up cancel.
# The JS batch path's native calls (popChains + addUsedBatch, their exports
# only, the JS around them excluded) are counted the same way.
#
#   bash bench/codegen.sh [--no-build]     needs valgrind (apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --no-build ]; then
  node scripts/build.js --testing >&2
  cargo build --release --manifest-path bench/standalone/Cargo.toml --target-dir target/standalone >&2
fi
export VIRTIO_QUEUE_NATIVE_PATH="$PWD/build/testing/virtio-queue.linux-x64-gnu.node"
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
    'BEGIN { printf "%-40s %8.1f instructions/chain\n", l, (b - a) / n }'
}

count 'native loop, standalone executable' 'standalone::main' -- target/standalone/release/standalone
count 'native loop, testing addon' '*bench_native*' -- node --import tsx bench/callgrind.ts native
count 'batch path: popChains + addUsedBatch' '*js::queue::pop_chains*' '*js::queue::add_used_batch*' -- \
  node --import tsx bench/callgrind.ts batch
