//! The call area: the scalar arguments of a hot call, passed through memory.
//!
//! Reading one argument through Node-API (`napi_get_value_double` and its
//! checks) costs about 12 ns here, and `addUsed`, called once per chain, has
//! three: more than the crate's own work. So each environment owns a small
//! block of native memory, handed to JavaScript once as an ArrayBuffer. The
//! TypeScript layer checks in JavaScript that the arguments are numbers,
//! writes them there and calls the function without arguments; the function
//! reads and validates them exactly as it would validate Node-API arguments.
//!
//! The block belongs to Rust and is shared (`Rc`) by the environment and the
//! ArrayBuffer: detaching the ArrayBuffer in JavaScript cannot free it, and a
//! call reads it only while JavaScript is paused in that call.

use std::cell::UnsafeCell;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::napi::sys::*;
use crate::napi::Ctx;

/// Number of `f64` slots.
pub const SLOTS: usize = 4;

/// One environment's argument block.
#[derive(Default)]
pub struct CallArea(UnsafeCell<[f64; SLOTS]>);

impl CallArea {
    /// Slot `i` as JavaScript last wrote it.
    fn get(&self, i: usize) -> f64 {
        // SAFETY: the block lives as long as `self`; JavaScript writes it only while no
        // native call runs (same thread), so this read races with nothing.
        unsafe { (*self.0.get())[i] }
    }

    /// Slot `i` validated as an integer argument `name` from 0 to `max`, with the same
    /// error as a Node-API argument (`Ctx::uint`).
    pub fn uint(&self, i: usize, name: &'static str, max: u64) -> Result<u64> {
        crate::napi::uint_value(self.get(i), name, max)
    }
}

/// The block of this call's environment.
fn shared(ctx: &Ctx) -> Result<&'static Rc<CallArea>> {
    crate::instance::call_area(ctx.env).ok_or(Error::Napi(NAPI_GENERIC_FAILURE))
}

/// The block of this call's environment, for reading arguments.
pub fn of(ctx: &Ctx) -> Result<&'static CallArea> {
    shared(ctx).map(|area| &**area)
}

/// `callArea()`: the environment's block as an ArrayBuffer of `SLOTS` doubles, or
/// `undefined` where Node does not allow external ArrayBuffers (the TypeScript
/// layer then passes arguments the usual way).
pub fn expose(ctx: &Ctx) -> Result<napi_value> {
    let area = shared(ctx)?;
    // SAFETY: the block lives as long as the Rc the ArrayBuffer holds.
    let ab = unsafe {
        ctx.external_arraybuffer(
            area.0.get() as *mut u8,
            SLOTS * std::mem::size_of::<f64>(),
            Rc::clone(area),
        )?
    };
    Ok(ab.unwrap_or_else(|| ctx.undefined()))
}
