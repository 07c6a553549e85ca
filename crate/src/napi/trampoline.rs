//! Registration and the one native entry point every exported function goes
//! through: it reads the arguments and the function's callback data, runs
//! the body with panics caught, and throws the body's error. No Rust panic
//! crosses into Node.
//!
//! Per-environment state (`S`, chosen by the addon) is given once, at
//! registration; the layer owns it as the environment's instance data (so it
//! is dropped when the environment is torn down) and hands it to every call
//! through the function's callback data: no lookup per call.

use std::ffi::c_void;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use super::args::{TypedArray, TypedArrayKind};
use super::env::{check, Env, Value};
use super::error::{Error, Result};
use super::external::{drop_box, Tagged};
use super::sys::*;

/// The most arguments any exported function takes.
const MAX_ARGS: usize = 6;

/// The signature of every exported function's body.
pub type Body<S, E> = fn(&Ctx<'_, S>) -> std::result::Result<Value, E>;

/// One call from JavaScript: the environment, the arguments and the state.
pub struct Ctx<'a, S> {
    env: Env,
    /// Borrowed, not copied: napi_get_cb_info has just written it with 8-byte stores,
    /// and copying it with wider loads stalls on store forwarding (measured: about 10 ns
    /// per call).
    argv: &'a [napi_value; MAX_ARGS],
    state: &'a S,
}

impl<S> Deref for Ctx<'_, S> {
    type Target = Env;

    fn deref(&self) -> &Env {
        &self.env
    }
}

impl<'a, S> Ctx<'a, S> {
    pub fn env(&self) -> Env {
        self.env
    }

    /// The per-environment state given at registration.
    pub fn state(&self) -> &'a S {
        self.state
    }

    /// The `i`th argument (`undefined` when the caller passed fewer: Node fills
    /// the rest of `argv`). `i` must be below `MAX_ARGS`.
    pub fn arg(&self, i: usize) -> Value {
        Value(self.argv[i])
    }

    pub fn is_nullish_arg(&self, i: usize) -> Result<bool> {
        self.env.is_nullish(self.arg(i))
    }

    /// A number argument that is an integer in `0..=max`.
    pub fn uint_arg(&self, i: usize, name: &'static str, max: u64) -> Result<u64> {
        self.env.uint(self.arg(i), name, max)
    }

    pub fn u32_arg(&self, i: usize, name: &'static str) -> Result<u32> {
        self.uint_arg(i, name, u32::MAX as u64).map(|v| v as u32)
    }

    pub fn u16_arg(&self, i: usize, name: &'static str) -> Result<u16> {
        self.uint_arg(i, name, u16::MAX as u64).map(|v| v as u16)
    }

    /// An optional `u32`: `undefined` or `null` give `None`.
    pub fn opt_u32_arg(&self, i: usize, name: &'static str) -> Result<Option<u32>> {
        if self.is_nullish_arg(i)? {
            Ok(None)
        } else {
            self.u32_arg(i, name).map(Some)
        }
    }

    pub fn bool_arg(&self, i: usize, name: &'static str) -> Result<bool> {
        self.env.bool(self.arg(i), name)
    }

    /// A guest address or size: a non-negative safe integer, or a bigint that fits in 64 bits.
    pub fn u64_arg(&self, i: usize, name: &'static str) -> Result<u64> {
        self.env.u64(self.arg(i), name)
    }

    /// An integer from 0 to `max`, as a number (a safe integer) or a bigint.
    pub fn uint_or_bigint_arg(&self, i: usize, name: &'static str, max: u64) -> Result<u64> {
        self.env.uint_or_bigint(self.arg(i), name, max)
    }

    pub fn typed_array_arg(
        &self,
        i: usize,
        name: &'static str,
        kind: TypedArrayKind,
    ) -> Result<TypedArray> {
        self.env.typed_array(self.arg(i), name, kind)
    }

    /// The `u32` elements of a `Uint32Array` argument, valid for this call only:
    /// JavaScript cannot run (and so cannot detach or resize the buffer) until
    /// the call returns.
    ///
    /// # Safety
    /// No other reference to the same memory may be alive while the slice is:
    /// call it at most once per call, for the call's only typed-array argument
    /// (JavaScript could pass one array as two arguments).
    // The memory is JavaScript's, not `self`'s: the exclusive borrow is the caller's promise.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn u32_slice_arg(&self, i: usize, name: &'static str) -> Result<&mut [u32]> {
        let ta = self.typed_array_arg(i, name, TypedArrayKind::Uint32)?;
        if ta.byte_len == 0 || ta.data.is_null() {
            return Ok(&mut []);
        }
        // SAFETY: a Uint32Array's data is 4-byte aligned and `byte_len` long; nothing
        // else accesses it while this synchronous call runs (the caller's promise).
        Ok(unsafe { std::slice::from_raw_parts_mut(ta.data as *mut u32, ta.byte_len / 4) })
    }

    /// The native object behind an external argument created by `new_external::<T>`.
    pub fn external_arg<T: Tagged>(&self, i: usize, name: &'static str) -> Result<&T> {
        let p = self.env.external_ptr::<T>(self.arg(i), name)?;
        // SAFETY: the tag proves this external was created by `new_external::<T>`, whose
        // data is a `Box<T>` that lives until the external is collected, which cannot
        // happen while it is an argument of this call; only shared references to it are
        // ever made.
        Ok(unsafe { &*p })
    }
}

/// How an addon's error type reaches JavaScript. The trampoline converts the
/// layer's errors with `From`, turns a caught panic into `from_panic`, and
/// calls `throw` unless an exception is already pending.
///
/// `S` is the per-environment state given at registration (it may hold, for
/// example, the class the addon's errors are constructed with).
pub trait Throw<S>: From<Error> {
    /// A Rust panic caught at the boundary, with its message.
    fn from_panic(message: String) -> Self;

    /// Throws `self` as a JavaScript exception in `env`.
    fn throw(&self, env: Env, state: &S) -> Result<()>;
}

/// What a function's callback data points to.
struct Record<S, E> {
    body: Body<S, E>,
    state: *const S,
}

/// The environment's instance data: the state and the functions' records.
struct Registration<S, E> {
    state: S,
    records: Vec<Record<S, E>>,
}

/// Sets `exports[name]` to a function running `body` for every `(name, body)`,
/// each receiving `state` (owned by the environment from now on).
///
/// # Safety
/// `env` and `exports` must be the values Node passed to module registration.
pub unsafe fn register<S: 'static, E: Throw<S> + 'static>(
    env: napi_env,
    exports: napi_value,
    state: S,
    functions: &[(&'static str, Body<S, E>)],
) -> Result<()> {
    let registration = Box::into_raw(Box::new(Registration::<S, E> {
        state,
        records: Vec::with_capacity(functions.len()),
    }));
    // SAFETY: ownership of `registration` passes to the environment, which drops it
    // at teardown, after the last call of its functions.
    let status = unsafe {
        napi_set_instance_data(
            env,
            registration as *mut c_void,
            Some(drop_box::<Registration<S, E>>),
            null_mut(),
        )
    };
    if status != NAPI_OK {
        // SAFETY: not handed over, still ours.
        drop(unsafe { Box::from_raw(registration) });
        return Err(Error::Status(status));
    }
    // SAFETY: alive until teardown; nothing else uses it during registration.
    let registration = unsafe { &mut *registration };
    let state: *const S = &registration.state;
    for (_, body) in functions {
        registration.records.push(Record { body: *body, state });
    }
    // From here `records` never changes, so the addresses of its elements are stable.
    // SAFETY: `env` is the registering environment (the caller's promise).
    let env = unsafe { Env::from_raw(env) };
    for ((name, _), record) in functions.iter().zip(&registration.records) {
        let mut f = null_mut();
        // SAFETY: the name is valid UTF-8 of the given length; the record outlives
        // the function (both live until the environment's teardown).
        check(unsafe {
            napi_create_function(
                env.raw(),
                name.as_ptr() as *const _,
                name.len(),
                Some(trampoline::<S, E>),
                record as *const Record<S, E> as *mut c_void,
                &mut f,
            )
        })?;
        env.set_property(Value(exports), name, Value(f))?;
    }
    Ok(())
}

/// The single native entry point.
unsafe extern "C" fn trampoline<S: 'static, E: Throw<S>>(
    raw_env: napi_env,
    info: napi_callback_info,
) -> napi_value {
    // SAFETY: Node calls this with the environment of the call, on its thread.
    let env = unsafe { Env::from_raw(raw_env) };
    let mut argv = [null_mut(); MAX_ARGS];
    let mut argc = MAX_ARGS;
    let mut data: *mut c_void = null_mut();
    // SAFETY: argv has room for `argc` values, as napi_get_cb_info requires.
    let status = unsafe {
        napi_get_cb_info(
            raw_env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            null_mut(),
            &mut data,
        )
    };
    if status != NAPI_OK || data.is_null() {
        let _ = catch_unwind(|| Error::Status(status).throw(env));
        return null_mut();
    }
    // SAFETY: `data` is the record given to napi_create_function in `register`; it and
    // the state it points to live until the environment's teardown.
    let record = unsafe { &*(data as *const Record<S, E>) };
    // SAFETY: as above.
    let state = unsafe { &*record.state };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        (record.body)(&Ctx {
            env,
            argv: &argv,
            state,
        })
    }));
    let err = match outcome {
        Ok(Ok(value)) => return value.0,
        Ok(Err(e)) => e,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            E::from_panic(msg)
        }
    };
    // Throwing must not panic either; if it fails there is nothing more to do.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !env.is_exception_pending() {
            let _ = err.throw(env, state);
        }
    }));
    null_mut()
}
