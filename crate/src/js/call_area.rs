//! `callArea()`: the environment's call area (`state::call_area`) handed to JavaScript.

use std::rc::Rc;

use super::state::call_area::SLOTS;
use super::Ctx;
use crate::engine::Result;
use crate::napi::Value;

/// `callArea()`: the environment's block as an ArrayBuffer of `SLOTS` doubles, or
/// `undefined` where Node does not allow external ArrayBuffers (the TypeScript
/// layer then passes arguments the usual way).
pub fn expose(ctx: &Ctx) -> Result<Value> {
    let area = &ctx.state().call_area;
    // SAFETY: the block lives as long as the Rc the ArrayBuffer holds.
    let ab = unsafe {
        ctx.external_arraybuffer(
            area.as_ptr(),
            SLOTS * std::mem::size_of::<f64>(),
            Rc::clone(area),
        )?
    };
    match ab {
        Some(ab) => Ok(ab),
        None => Ok(ctx.undefined()?),
    }
}
