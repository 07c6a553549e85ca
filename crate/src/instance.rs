//! Per-environment state (the main thread and every worker have their own):
//! the `VirtioQueueError` class errors are thrown as, the queue table and the
//! call area.

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::rc::Rc;

use crate::call_area::CallArea;
use crate::error::Result;
use crate::napi::sys::*;
use crate::napi::{check, Ref};
use crate::queue_js::QueueHandle;
use crate::slots::Slots;

/// The queues of one environment; queue anchors share it (see `slots`).
pub type QueueTable = Rc<RefCell<Slots<QueueHandle>>>;

#[derive(Default)]
struct Instance {
    error_class: Option<Ref>,
    queues: QueueTable,
    call_area: Rc<CallArea>,
}

/// Installs empty instance data for a new environment.
pub fn install(env: napi_env) -> Result<()> {
    unsafe extern "C" fn finalize(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `data` is the Box<Instance> leaked in `install`, finalized once.
            drop(unsafe { Box::from_raw(data as *mut Instance) });
        }));
    }
    let raw = Box::into_raw(Box::<Instance>::default());
    // SAFETY: ownership of `raw` passes to the environment, which finalizes it.
    check(unsafe { napi_set_instance_data(env, raw as *mut c_void, Some(finalize), null_mut()) })
}

fn get(env: napi_env) -> Option<&'static mut Instance> {
    let mut p = null_mut();
    // SAFETY: plain Node-API call; the data is the Box<Instance> from `install`,
    // alive as long as the environment, and used only on its thread.
    unsafe {
        napi_get_instance_data(env, &mut p);
        (p as *mut Instance).as_mut()
    }
}

/// Remembers the class errors are thrown as.
pub fn set_error_class(env: napi_env, class: napi_value) -> Result<()> {
    if let Some(inst) = get(env) {
        inst.error_class = Some(Ref::new(env, class)?);
    }
    Ok(())
}

/// The class errors are thrown as, once the JavaScript layer has set it.
pub fn error_class(env: napi_env) -> Option<napi_value> {
    get(env)?.error_class.as_ref()?.value().ok()
}

/// This environment's queue table.
pub fn queues(env: napi_env) -> Option<&'static QueueTable> {
    get(env).map(|inst| &inst.queues)
}

/// This environment's call area (see `call_area`).
pub fn call_area(env: napi_env) -> Option<&'static Rc<CallArea>> {
    get(env).map(|inst| &inst.call_area)
}
