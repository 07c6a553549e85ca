//! The call area: the scalar arguments of a hot call, passed through memory.
//!
//! Reading one argument through Node-API (`napi_get_value_double` and its
//! checks) costs about 12 ns here, and `addUsed`, called once per chain, has
//! three: more than the crate's own work (`chainFileIo`, once per request of a
//! disk, takes its six-number span here too). So each environment owns a small
//! block of native memory, handed to JavaScript once as an ArrayBuffer. The
//! TypeScript layer checks in JavaScript that the arguments are numbers,
//! writes them there and calls the function without arguments; the function
//! reads and validates them exactly as it would validate Node-API arguments.
//!
//! The block belongs to Rust and is shared (`Rc`) by the environment and the
//! ArrayBuffer: detaching the ArrayBuffer in JavaScript cannot free it, and a
//! call reads it only while JavaScript is paused in that call.

use std::cell::UnsafeCell;

use crate::engine::Result;
use crate::napi::uint_value;

/// Number of `f64` slots.
pub const SLOTS: usize = 8;

/// One environment's argument block.
#[derive(Default)]
pub struct CallArea(UnsafeCell<[f64; SLOTS]>);

impl CallArea {
    /// The block's first byte, for the ArrayBuffer JavaScript writes it through.
    pub fn as_ptr(&self) -> *mut u8 {
        self.0.get() as *mut u8
    }

    /// This call's arguments, as JavaScript wrote them. The slots are then
    /// poisoned (NaN, which every integer check refuses), so a later call that
    /// did not write them is refused rather than served with these numbers.
    pub fn take(&self) -> Args {
        // SAFETY: the block lives as long as `self`; JavaScript writes it only while no
        // native call runs (same thread), and no other reference to it exists during the
        // call, so this access races with nothing.
        let slots = unsafe { &mut *self.0.get() };
        Args(std::mem::replace(slots, [f64::NAN; SLOTS]))
    }
}

/// The arguments one call took from the call area.
pub struct Args([f64; SLOTS]);

impl Args {
    /// Slot `i` validated as an integer argument `name` from 0 to `max`, with the same
    /// error as a Node-API argument (`Env::uint`).
    pub fn uint(&self, i: usize, name: &'static str, max: u64) -> Result<u64> {
        Ok(uint_value(self.0[i], name, max)?)
    }
}
