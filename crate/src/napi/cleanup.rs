//! Environment teardown: an asynchronous cleanup hook, for native resources
//! whose release needs the event loop (libuv handles close in a later loop
//! turn). Node runs the hook when the environment is torn down (the process
//! exits, a worker ends) and keeps the loop running until the hook says it
//! is done.

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::rc::Rc;

use super::env::{check, Env};
use super::error::Result;
use super::sys::*;

struct State {
    handle: napi_async_cleanup_hook_handle,
    hook: Option<Box<dyn FnOnce(CleanupDone)>>,
    fired: bool,
}

/// A registered hook; `remove` unregisters it when the resource was released
/// before teardown.
pub struct AsyncCleanupHook(Rc<RefCell<State>>);

/// Given to a running hook: `finish` tells Node the cleanup is complete.
pub struct CleanupDone(napi_async_cleanup_hook_handle);

impl CleanupDone {
    pub fn finish(self) {
        // SAFETY: the handle of a hook that fired and was not removed yet.
        unsafe { napi_remove_async_cleanup_hook(self.0) };
    }
}

unsafe extern "C" fn fire(handle: napi_async_cleanup_hook_handle, arg: *mut c_void) {
    // SAFETY: `arg` is the Rc clone leaked by `add_async_cleanup_hook`; Node
    // runs the hook at most once, and `remove` does not run after it.
    let state = unsafe { Rc::from_raw(arg as *const RefCell<State>) };
    let hook = {
        let mut s = state.borrow_mut();
        s.fired = true;
        s.hook.take()
    };
    match hook {
        Some(h) => {
            if catch_unwind(AssertUnwindSafe(|| h(CleanupDone(handle)))).is_err() {
                // SAFETY: the hook panicked before finishing; say it is done.
                unsafe { napi_remove_async_cleanup_hook(handle) };
            }
        }
        // SAFETY: as above.
        None => unsafe {
            napi_remove_async_cleanup_hook(handle);
        },
    }
}

impl Env {
    /// Registers `hook` to run at this environment's teardown, on its thread.
    pub fn add_async_cleanup_hook(
        self,
        hook: impl FnOnce(CleanupDone) + 'static,
    ) -> Result<AsyncCleanupHook> {
        let state = Rc::new(RefCell::new(State {
            handle: null_mut(),
            hook: Some(Box::new(hook)),
            fired: false,
        }));
        let arg = Rc::into_raw(state.clone()) as *mut c_void;
        let mut handle = null_mut();
        // SAFETY: `arg` stays valid until the hook fires or is removed.
        let status =
            unsafe { napi_add_async_cleanup_hook(self.raw(), Some(fire), arg, &mut handle) };
        if let Err(e) = check(status) {
            // SAFETY: not registered: the leaked clone is still ours.
            drop(unsafe { Rc::from_raw(arg as *const RefCell<State>) });
            return Err(e);
        }
        state.borrow_mut().handle = handle;
        Ok(AsyncCleanupHook(state))
    }
}

impl AsyncCleanupHook {
    /// Unregisters the hook (nothing to clean up at teardown any more).
    pub fn remove(self) {
        let (fired, handle) = {
            let s = self.0.borrow();
            (s.fired, s.handle)
        };
        if fired {
            return;
        }
        // SAFETY: a registered hook that has not fired: unregister it, then
        // take back the Rc clone its argument held.
        unsafe {
            napi_remove_async_cleanup_hook(handle);
            drop(Rc::from_raw(Rc::as_ptr(&self.0)));
        }
    }
}
