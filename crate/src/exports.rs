//! Module registration: the table of exported functions.

use crate::error::{Error, Result};
use crate::napi::sys::*;
use crate::napi::{export, Body, Ctx};
use crate::{bench, call_area, instance, memory, memory_js, queue_js};

const FUNCTIONS: &[(&str, Body)] = &[
    ("init", init),
    ("memoryCreate", memory_js::memory_create),
    ("queueNew", queue_js::queue_new),
    ("queueFromState", queue_js::queue_from_state),
    ("queueState", queue_js::queue_state),
    ("isValid", queue_js::is_valid),
    ("reset", queue_js::reset),
    ("maxSize", queue_js::max_size),
    ("size", queue_js::size),
    ("setSize", queue_js::set_size),
    ("ready", queue_js::ready),
    ("setReady", queue_js::set_ready),
    ("setDescTableAddress", queue_js::set_desc_table_address),
    ("setAvailRingAddress", queue_js::set_avail_ring_address),
    ("setUsedRingAddress", queue_js::set_used_ring_address),
    ("setEventIdx", queue_js::set_event_idx),
    ("eventIdxEnabled", queue_js::event_idx_enabled),
    ("availIdx", queue_js::avail_idx),
    ("usedIdx", queue_js::used_idx),
    ("addUsed", queue_js::add_used),
    ("addUsedArea", queue_js::add_used_area),
    ("callArea", call_area::expose),
    ("enableNotification", queue_js::enable_notification),
    ("disableNotification", queue_js::disable_notification),
    ("needsNotification", queue_js::needs_notification),
    ("nextAvail", queue_js::next_avail),
    ("nextUsed", queue_js::next_used),
    ("setNextAvail", queue_js::set_next_avail),
    ("setNextUsed", queue_js::set_next_used),
    ("goToPreviousPosition", queue_js::go_to_previous_position),
    ("popChains", queue_js::pop_chains),
    ("addUsedBatch", queue_js::add_used_batch),
    ("benchNative", bench::bench_native),
    ("constants", constants),
    ("forcePanicForTesting", force_panic),
];

/// `init(VirtioQueueError)`: the class errors are thrown as in this environment.
fn init(ctx: &Ctx) -> Result<napi_value> {
    if ctx.type_of(ctx.arg(0))? != NAPI_FUNCTION {
        return Err(Error::ArgType {
            name: "errorClass",
            expected: "a class",
        });
    }
    instance::set_error_class(ctx.env, ctx.arg(0))?;
    Ok(ctx.undefined())
}

/// `constants()`: `[pageSize, addressLimit, batch header words, chain words, descriptor words, state words]`.
fn constants(ctx: &Ctx) -> Result<napi_value> {
    let values = [
        memory::PAGE_SIZE as f64,
        memory::ADDRESS_LIMIT as f64,
        crate::batch::HEADER_WORDS as f64,
        crate::batch::CHAIN_WORDS as f64,
        crate::batch::DESC_WORDS as f64,
        queue_js::STATE_WORDS as f64,
    ];
    let items = values
        .iter()
        .map(|v| ctx.number(*v))
        .collect::<Result<Vec<_>>>()?;
    ctx.array(&items)
}

/// Panics on purpose, so tests can show a panic becomes a JavaScript error.
fn force_panic(_ctx: &Ctx) -> Result<napi_value> {
    panic!("forced panic for testing");
}

/// Node's module entry point, called once per environment (main thread and each worker).
///
/// # Safety
/// Called by Node with a valid environment and exports object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let registered = std::panic::catch_unwind(|| -> Result<()> {
        instance::install(env)?;
        for (name, body) in FUNCTIONS {
            // SAFETY: `env` and `exports` come from Node's module registration.
            unsafe { export(env, exports, name, *body)? };
        }
        Ok(())
    });
    match registered {
        Ok(Ok(())) => exports,
        Ok(Err(e)) => {
            crate::napi::throw(env, &e);
            std::ptr::null_mut()
        }
        Err(_) => std::ptr::null_mut(),
    }
}

/// The Node-API version this addon is built against.
#[unsafe(no_mangle)]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    8
}
