//! Exports for the tests and the benchmark only, built with the cargo feature
//! `testing` (scripts/build.js --testing); the published addon has none of them.

#[cfg(target_os = "linux")]
pub mod frontend;

use std::rc::Rc;
use std::sync::Once;

use super::queue::{let_queue, queue_at};
use super::state::memory::MemoryHandle;
use super::Ctx;
use crate::engine::bench::{run, Params};
use crate::engine::{Error, Result};
use crate::napi::Value;

/// Words of the `io` array of `benchNative`.
pub const IO_WORDS: usize = 16;

/// `benchNative(memory, queue, io: Uint32Array(16)) -> chains`: `io[0..5]` are
/// rounds, fill byte, expected used len, head stride, chains in flight;
/// `io[8..14]` receive chains, checksum, interrupts, kicks, bad used entries,
/// rechecks. The queue must work on `memory`, and no QueueGuard may hold
/// prefetched chains of it. The loop is `engine::bench::run`.
pub fn bench_native(ctx: &Ctx) -> Result<Value> {
    let memory = Rc::clone(&ctx.external_arg::<MemoryHandle>(0, "memory")?.0);
    let_queue!(mut q = queue_at(ctx, 1)?);
    if !Rc::ptr_eq(&memory, &q.memory) {
        return Err(Error::range(
            "queue",
            "the queue works on another guest memory",
        ));
    }
    // SAFETY: `io` is the only typed-array argument, taken once.
    let io = unsafe { ctx.u32_slice_arg(2, "io")? };
    if io.len() < IO_WORDS {
        return Err(Error::range("io", format!("expected {IO_WORDS} words")));
    }
    let p = Params {
        rounds: io[0],
        fill: io[1] as u8,
        expect_len: io[2],
        stride: io[3],
        in_flight: io[4],
    };
    let s = run(&mut q.queue, memory.get()?, &p)?;
    io[8..14].copy_from_slice(&[s.chains, s.check, s.interrupts, s.kicks, s.bad, s.rechecks]);
    Ok(ctx.number(s.chains as f64)?)
}

/// The message of the forced panic.
const FORCED_PANIC: &str = "forced panic for testing";

/// `forcePanicForTesting()`: panics on purpose, so tests can show a panic becomes a
/// JavaScript error. The panic is expected, so it is not printed: a panic hook,
/// installed at the first forced panic, drops the report of this one panic
/// message and hands every other panic to the hook that was there before (Rust's
/// default: real panics still print, with their backtrace).
pub fn force_panic(_ctx: &Ctx) -> Result<Value> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&FORCED_PANIC) {
                previous(info);
            }
        }));
    });
    // panic_any: the payload is exactly FORCED_PANIC (a `&'static str`), which the hook matches.
    std::panic::panic_any(FORCED_PANIC);
}
