//! Calling JavaScript from outside a call from JavaScript (a libuv callback):
//! a handle scope for the values made meanwhile, and `napi_make_callback`
//! with an async context, so that Node runs the microtasks and `nextTick`s the
//! function queued (as it does after any I/O callback). An exception thrown
//! by the function is taken (cleared) and returned, never left pending.

use std::ptr::null_mut;

use super::env::{check, Env, Value};
use super::error::Result;
use super::sys::*;

/// A handle scope: values made while it is open are released when it drops.
pub struct HandleScope {
    env: Env,
    raw: napi_handle_scope,
}

impl HandleScope {
    pub fn open(env: Env) -> Result<Self> {
        let mut raw = null_mut();
        // SAFETY: plain Node-API call on the environment's thread.
        check(unsafe { napi_open_handle_scope(env.raw(), &mut raw) })?;
        Ok(HandleScope { env, raw })
    }
}

impl Drop for HandleScope {
    fn drop(&mut self) {
        // SAFETY: opened on this environment, closed once, innermost first (RAII).
        unsafe { napi_close_handle_scope(self.env.raw(), self.raw) };
    }
}

/// An async context (async_hooks resource) for callbacks into JavaScript.
pub struct AsyncContext {
    env: Env,
    raw: napi_async_context,
}

impl AsyncContext {
    /// A context named `name` (what async_hooks reports as its type).
    pub fn new(env: Env, name: &str) -> Result<Self> {
        let name = env.string(name)?;
        let mut raw = null_mut();
        // SAFETY: values of this environment; a NULL resource makes Node create one.
        check(unsafe { napi_async_init(env.raw(), null_mut(), name.0, &mut raw) })?;
        Ok(AsyncContext { env, raw })
    }
}

impl Drop for AsyncContext {
    fn drop(&mut self) {
        // SAFETY: created on this environment, destroyed once.
        unsafe { napi_async_destroy(self.env.raw(), self.raw) };
    }
}

/// What calling a function came to.
pub enum Called {
    Returned(Value),
    /// It threw this value (taken: no exception is left pending).
    Threw(Value),
}

impl Env {
    /// The global object (the receiver for `make_callback`: `undefined` fails there).
    pub fn global(self) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_get_global(self.raw(), &mut v) })?;
        Ok(Value(v))
    }

    /// Calls `func(...args)` with `this` = the global object, as an I/O callback
    /// (microtasks and ticks run when the outermost such call returns).
    pub fn make_callback(self, ctx: &AsyncContext, func: Value, args: &[Value]) -> Result<Called> {
        let recv = self.global()?;
        let mut result = null_mut();
        // SAFETY: values of this environment; `Value` is a transparent
        // `napi_value`, so `args` is an array of `args.len()` handles (no copy:
        // nothing is allocated per call).
        let status = unsafe {
            napi_make_callback(
                self.raw(),
                ctx.raw,
                recv.0,
                func.0,
                args.len(),
                args.as_ptr() as *const napi_value,
                &mut result,
            )
        };
        self.called(status, result)
    }

    /// Calls `func(...args)` with `this` = the global object, from a callback
    /// Node already runs in a callback scope (an async work's completion): an
    /// exception it throws is taken and returned. Fails (`Status`) when the
    /// environment can no longer run JavaScript (it is being torn down).
    pub fn call_function(self, func: Value, args: &[Value]) -> Result<Called> {
        let recv = self.global()?;
        let mut result = null_mut();
        // SAFETY: values of this environment; `Value` is a transparent `napi_value`,
        // so `args` is an array of `args.len()` handles.
        let status = unsafe {
            napi_call_function(
                self.raw(),
                recv.0,
                func.0,
                args.len(),
                args.as_ptr() as *const napi_value,
                &mut result,
            )
        };
        self.called(status, result)
    }

    /// What a call that returned `status` (and `result`) did: returned, or threw
    /// the exception now taken; any other failure is the status.
    fn called(self, status: napi_status, result: napi_value) -> Result<Called> {
        if status == NAPI_OK {
            return Ok(Called::Returned(Value(result)));
        }
        match self.take_exception()? {
            Some(e) => Ok(Called::Threw(e)),
            None => Err(super::error::Error::Status(status)),
        }
    }

    /// Reports `error` as uncaught (process `'uncaughtException'`, as for an
    /// exception thrown by any I/O callback): for an exception taken from a
    /// callback no JavaScript frame can catch.
    pub fn fatal_exception(self, error: Value) -> Result<()> {
        // SAFETY: a value of this environment.
        check(unsafe { napi_fatal_exception(self.raw(), error.0) })
    }

    /// The pending exception, cleared; `None` when there is none.
    pub fn take_exception(self) -> Result<Option<Value>> {
        if !self.is_exception_pending() {
            return Ok(None);
        }
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_get_and_clear_last_exception(self.raw(), &mut v) })?;
        Ok(Some(Value(v)))
    }

    /// `String(v)`, as Rust text; a `toString` that throws gives a placeholder
    /// (and its exception is cleared).
    pub fn string_of(self, v: Value) -> String {
        let text = || -> Result<String> {
            let mut s = null_mut();
            // SAFETY: values of this environment.
            check(unsafe { napi_coerce_to_string(self.raw(), v.0, &mut s) })?;
            let mut len = 0usize;
            // SAFETY: a NULL buffer asks for the length.
            check(unsafe { napi_get_value_string_utf8(self.raw(), s, null_mut(), 0, &mut len) })?;
            let mut buf = vec![0u8; len + 1];
            // SAFETY: `buf` has room for `len` bytes and the NUL.
            check(unsafe {
                napi_get_value_string_utf8(
                    self.raw(),
                    s,
                    buf.as_mut_ptr() as *mut _,
                    buf.len(),
                    &mut len,
                )
            })?;
            buf.truncate(len);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        };
        text().unwrap_or_else(|_| {
            let _ = self.take_exception();
            "(a value whose conversion to a string threw)".into()
        })
    }

    /// A bigint holding `x`.
    pub fn bigint_u64(self, x: u64) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_create_bigint_uint64(self.raw(), x, &mut v) })?;
        Ok(Value(v))
    }

    /// Detaches an ArrayBuffer (made detachable, as external ones are): its
    /// views then have length 0.
    pub fn detach_arraybuffer(self, v: Value) -> Result<()> {
        // SAFETY: a value of this environment; Node checks it is a detachable ArrayBuffer.
        check(unsafe { napi_detach_arraybuffer(self.raw(), v.0) })
    }
}
