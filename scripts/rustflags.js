// The codegen flag every release build of the addon gets (scripts/build.js; the
// release workflow sets the same in its env): LLVM's inline threshold raised from
// its default (250 at opt-level 3, the release profile's) to 1000.
//
// Why (README, "What limits the native path"): the hot functions of virtio-queue
// and vm-memory (`Bytes::read_slice`/`write_slice`/`read_obj` through
// `try_access`, `Queue::iter`, `AvailIter::next`) are generic, instantiated over the
// package's `GuestMem` and called from several places in the addon (the native
// loop, popChains, addUsedBatch, the single-entry exports), so LLVM keeps them out
// of line: a standalone executable of the same loop inlines what has one caller
// there. With the threshold at 1000 they are inlined into the hot loops: the native
// benchmark loop goes from 1146 to 858 instructions per chain, popChains +
// addUsedBatch from 804 to 625 (callgrind, bench/codegen.sh), for a larger addon.
// It is an LLVM option, not a CPU one: the output stays portable.
'use strict'

const CODEGEN_RUSTFLAGS = '-C llvm-args=-inline-threshold=1000'

/** `env` with CODEGEN_RUSTFLAGS appended to the caller's RUSTFLAGS (napi build appends its own after). */
function withCodegenFlags(env) {
  if (env.CARGO_ENCODED_RUSTFLAGS !== undefined) {
    // Cargo reads this one first and ignores RUSTFLAGS: append there (0x1f separated).
    const encoded = [env.CARGO_ENCODED_RUSTFLAGS, ...CODEGEN_RUSTFLAGS.split(' ')].filter((s) => s !== '')
    return { ...env, CARGO_ENCODED_RUSTFLAGS: encoded.join('\x1f') }
  }
  const own = env.RUSTFLAGS ?? env.CARGO_BUILD_RUSTFLAGS ?? ''
  return { ...env, RUSTFLAGS: `${own} ${CODEGEN_RUSTFLAGS}`.trim() }
}

module.exports = { CODEGEN_RUSTFLAGS, withCodegenFlags }
