#!/usr/bin/env bash
# Runs a focused workload under valgrind memcheck and fails on any invalid
# read or write (or, with MEMCHECK_UNDEF=1, any use of uninitialised memory)
# anywhere in the process, the addon included.
#
#   scripts/memcheck.sh                 the workload (__test__/fixtures/memcheck-workload.js), 2 rounds
#   scripts/memcheck.sh --rounds N      N rounds of it
#   scripts/memcheck.sh --fuzz N        also N hostile-guest and N operation-sequence fuzz cases
#                                       (helpers/fuzz-campaign.ts through tsx; slow: about 1 s per case)
#
# Node runs with --jitless, so V8 generates no machine code for valgrind to
# mistake (no --smc-check needed, no JIT false positives). Leak checking is
# off: V8 keeps its heap until exit by design. The one suppression is V8's
# conservative stack scan, which reads uninitialised stack slots on purpose;
# it only matters with MEMCHECK_UNDEF=1. The valgrind log is kept in
# $MEMCHECK_LOG_DIR (default: a temporary directory) and its error lines are
# printed on failure.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
rounds=2
fuzz=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --fuzz) fuzz="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--fuzz N]" >&2; exit 2 ;;
  esac
done

command -v valgrind >/dev/null || { echo "memcheck: valgrind is not installed" >&2; exit 2; }
logs="${MEMCHECK_LOG_DIR:-$(mktemp -d)}"
mkdir -p "$logs"
supp="$logs/v8.supp"
cat > "$supp" <<'EOF'
{
   v8-conservative-stack-scan-cond
   Memcheck:Cond
   fun:*IteratePointersInStack*
}
{
   v8-conservative-stack-scan-value8
   Memcheck:Value8
   fun:*IteratePointersInStack*
}
EOF

undef=no
[ "${MEMCHECK_UNDEF:-0}" = 1 ] && undef=yes

status=0
# memcheck NAME COMMAND...: runs the command under valgrind, reports, records failure.
memcheck() {
  local name="$1"; shift
  local log="$logs/$name.log"
  local start=$SECONDS
  echo "memcheck: $name: $*"
  set +e
  RUST_BACKTRACE=0 valgrind --tool=memcheck --error-exitcode=97 --leak-check=no --errors-for-leak-kinds=none \
    --undef-value-errors="$undef" --suppressions="$supp" --num-callers=40 --log-file="$log" "$@"
  local rc=$?
  set -e
  local summary
  summary="$(grep -E 'ERROR SUMMARY' "$log" | tail -1 | sed 's/^==[0-9]*== //')"
  local invalid
  invalid="$(grep -cE 'Invalid (read|write)|Invalid free|Mismatched free|overlap|uninitialised' "$log" || true)"
  local addon
  addon="$(grep -cE 'virtio.queue|virtio_queue' "$log" || true)"
  echo "memcheck: $name: exit $rc after $((SECONDS - start)) s; $summary; error lines $invalid; stack lines in the addon $addon (log $log)"
  if [ "$rc" -ne 0 ] || [ "$invalid" -ne 0 ]; then
    grep -E -A 20 'Invalid (read|write)|Invalid free|Mismatched free|overlap|uninitialised' "$log" | head -120 || true
    status=1
  fi
}

memcheck workload node --jitless --expose-gc "$root/__test__/fixtures/memcheck-workload.js" "$rounds"
if [ "$fuzz" -gt 0 ]; then
  VIRTIO_QUEUE_FUZZ_RUNS="$fuzz" memcheck fuzz node --jitless --import tsx "$root/__test__/helpers/fuzz-campaign.ts" guest ops
fi

if [ "$status" -eq 0 ]; then echo "memcheck: OK (no invalid reads or writes)"; else echo "memcheck: FAILED"; fi
exit "$status"
