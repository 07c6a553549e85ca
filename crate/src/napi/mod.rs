//! A thin, safe layer over the Node-API declarations in `sys`: one trampoline
//! for every exported function (argument access, panic catching, error
//! throwing), and conversions between JavaScript values and Rust.
//!
//! `napi_env` and `napi_value` are raw pointers in the C API, but opaque
//! handles: Rust never dereferences them, it only hands them back to Node,
//! which validates them. So functions taking them stay safe to call.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod sys;

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use sys::*;

use crate::error::{Error, ErrorKind, Result};

/// The most arguments any exported function takes.
const MAX_ARGS: usize = 6;

/// The signature of every exported function's body.
pub type Body = fn(&Ctx) -> Result<napi_value>;

/// One call from JavaScript: the environment and the arguments.
pub struct Ctx {
    pub env: napi_env,
    argv: [napi_value; MAX_ARGS],
    argc: usize,
}

/// Turns a Node-API status into a `Result`.
pub fn check(status: napi_status) -> Result<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(Error::Napi(status))
    }
}

/// Registers `body` as a JavaScript function named `name` on `exports`.
///
/// # Safety
/// `env` and `exports` must be the values Node passed to module registration.
pub unsafe fn export(
    env: napi_env,
    exports: napi_value,
    name: &'static str,
    body: Body,
) -> Result<()> {
    let mut f = null_mut();
    // SAFETY: the name is valid UTF-8 of the given length; `body` is a plain
    // function pointer, passed through `data` and read back in `trampoline`.
    unsafe {
        check(napi_create_function(
            env,
            name.as_ptr() as *const c_char,
            name.len(),
            Some(trampoline),
            body as *mut c_void,
            &mut f,
        ))?;
        let cname = std::ffi::CString::new(name).map_err(|_| Error::Napi(-1))?;
        check(napi_set_named_property(env, exports, cname.as_ptr(), f))
    }
}

/// The single native entry point: reads the arguments, runs the body with
/// panics caught, and turns errors into thrown JavaScript errors. No Rust
/// panic crosses into Node.
unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut ctx = Ctx {
            env,
            argv: [null_mut(); MAX_ARGS],
            argc: MAX_ARGS,
        };
        let mut data: *mut c_void = null_mut();
        // SAFETY: argv has room for `argc` values, as napi_get_cb_info requires.
        check(unsafe {
            napi_get_cb_info(
                env,
                info,
                &mut ctx.argc,
                ctx.argv.as_mut_ptr(),
                null_mut(),
                &mut data,
            )
        })?;
        // SAFETY: `data` is the `Body` function pointer given to napi_create_function in `export`.
        let body: Body = unsafe { std::mem::transmute::<*mut c_void, Body>(data) };
        body(&ctx)
    }));
    let err = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(e)) => e,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::Panic(msg)
        }
    };
    // Throwing must not panic either; if it fails there is nothing more to do.
    let _ = catch_unwind(AssertUnwindSafe(|| throw(env, &err)));
    null_mut()
}

/// Throws `err` as the matching JavaScript error (TypeError, RangeError or
/// VirtioQueueError), with its `code`, unless an exception is already pending.
pub fn throw(env: napi_env, err: &Error) {
    let mut pending = false;
    // SAFETY: plain Node-API calls on the current environment.
    unsafe {
        napi_is_exception_pending(env, &mut pending);
        if pending {
            return;
        }
        let (Ok(code), Ok(msg)) = (string(env, err.code()), string(env, &err.to_string())) else {
            return;
        };
        let mut error = null_mut();
        let status = match err.kind() {
            ErrorKind::Type => napi_create_type_error(env, code, msg, &mut error),
            ErrorKind::Range => napi_create_range_error(env, code, msg, &mut error),
            ErrorKind::Virtio => match crate::instance::error_class(env) {
                Some(ctor) => napi_new_instance(env, ctor, 2, [msg, code].as_ptr(), &mut error),
                None => napi_create_error(env, code, msg, &mut error),
            },
        };
        if status == NAPI_OK {
            napi_throw(env, error);
        }
    }
}

/// Creates a JavaScript string.
pub fn string(env: napi_env, s: &str) -> Result<napi_value> {
    let mut v = null_mut();
    // SAFETY: `s` is valid UTF-8 of the given length.
    check(unsafe { napi_create_string_utf8(env, s.as_ptr() as *const c_char, s.len(), &mut v) })?;
    Ok(v)
}

/// Checks that the number `d`, an argument named `name`, is an integer from 0 to `max`
/// (at most 2^53 - 1), with the RangeError every integer argument gets.
pub fn uint_value(d: f64, name: &'static str, max: u64) -> Result<u64> {
    // `(d as i64) as f64 == d` is the integer test: exact below 2^53 (`max` never exceeds
    // it), and signed conversions are single instructions where `fract()` calls libm.
    // NaN converts to 0 and fails the test.
    if !(d >= 0.0 && d <= max as f64 && (d as i64) as f64 == d) {
        return Err(Error::range(
            name,
            format!("it must be an integer from 0 to {max}; received {d}"),
        ));
    }
    Ok(d as i64 as u64)
}

/// A `Uint32Array` (or `Uint8Array`) argument's memory.
pub struct TypedArray {
    pub data: *mut u8,
    pub byte_len: usize,
    pub buffer: napi_value,
}

impl Ctx {
    /// The `i`th argument (`undefined` when missing).
    pub fn arg(&self, i: usize) -> napi_value {
        if i < self.argc.min(MAX_ARGS) {
            self.argv[i]
        } else {
            self.undefined()
        }
    }

    pub fn type_of(&self, v: napi_value) -> Result<napi_valuetype> {
        let mut t = 0;
        // SAFETY: `v` is a value of this call.
        check(unsafe { napi_typeof(self.env, v, &mut t) })?;
        Ok(t)
    }

    pub fn is_nullish(&self, i: usize) -> Result<bool> {
        let t = self.type_of(self.arg(i))?;
        Ok(t == NAPI_UNDEFINED || t == NAPI_NULL)
    }

    /// A number argument that is an integer in `0..=max`.
    pub fn uint(&self, i: usize, name: &'static str, max: u64) -> Result<u64> {
        self.uint_of(self.arg(i), name, max)
    }

    /// A number that is an integer in `0..=max`.
    pub fn uint_of(&self, v: napi_value, name: &'static str, max: u64) -> Result<u64> {
        let mut d = 0f64;
        // SAFETY: `v` is a value of this call. A non-number fails with napi_number_expected,
        // so no napi_typeof is needed first (one Node-API call per argument, not two).
        match unsafe { napi_get_value_double(self.env, v, &mut d) } {
            NAPI_OK => {}
            NAPI_NUMBER_EXPECTED => {
                return Err(Error::ArgType {
                    name,
                    expected: "of type number",
                })
            }
            status => return Err(Error::Napi(status)),
        }
        uint_value(d, name, max)
    }

    pub fn u32(&self, i: usize, name: &'static str) -> Result<u32> {
        self.uint(i, name, u32::MAX as u64).map(|v| v as u32)
    }

    pub fn u16(&self, i: usize, name: &'static str) -> Result<u16> {
        self.uint(i, name, u16::MAX as u64).map(|v| v as u16)
    }

    /// An optional `u32`: `undefined` or `null` give `None`.
    pub fn opt_u32(&self, i: usize, name: &'static str) -> Result<Option<u32>> {
        if self.is_nullish(i)? {
            Ok(None)
        } else {
            self.u32(i, name).map(Some)
        }
    }

    pub fn bool(&self, i: usize, name: &'static str) -> Result<bool> {
        let v = self.arg(i);
        if self.type_of(v)? != NAPI_BOOLEAN {
            return Err(Error::ArgType {
                name,
                expected: "of type boolean",
            });
        }
        let mut b = false;
        // SAFETY: `v` is a boolean.
        check(unsafe { napi_get_value_bool(self.env, v, &mut b) })?;
        Ok(b)
    }

    /// A guest address or size: a non-negative safe integer, or a bigint that fits in 64 bits.
    pub fn u64(&self, i: usize, name: &'static str) -> Result<u64> {
        self.u64_of(self.arg(i), name)
    }

    /// A non-negative safe integer, or a bigint that fits in 64 bits.
    pub fn u64_of(&self, v: napi_value, name: &'static str) -> Result<u64> {
        match self.type_of(v)? {
            NAPI_NUMBER => self.uint_of(v, name, (1u64 << 53) - 1),
            NAPI_BIGINT => {
                let (mut x, mut lossless) = (0u64, false);
                // SAFETY: `v` is a bigint.
                check(unsafe { napi_get_value_bigint_uint64(self.env, v, &mut x, &mut lossless) })?;
                if !lossless {
                    return Err(Error::range(
                        name,
                        "a bigint address must be from 0n to 2n ** 64n - 1n",
                    ));
                }
                Ok(x)
            }
            _ => Err(Error::ArgType {
                name,
                expected: "of type number or bigint",
            }),
        }
    }

    /// A typed array argument of the given kind.
    pub fn typed_array(
        &self,
        i: usize,
        name: &'static str,
        kind: napi_typedarray_type,
    ) -> Result<TypedArray> {
        self.typed_array_of(self.arg(i), name, kind)
    }

    /// A typed array of the given kind.
    pub fn typed_array_of(
        &self,
        v: napi_value,
        name: &'static str,
        kind: napi_typedarray_type,
    ) -> Result<TypedArray> {
        let expected = match kind {
            NAPI_UINT32_ARRAY => "a Uint32Array",
            _ => "a Uint8Array",
        };
        let mut is = false;
        // SAFETY: `v` is a value of this call.
        check(unsafe { napi_is_typedarray(self.env, v, &mut is) })?;
        if !is {
            return Err(Error::ArgType { name, expected });
        }
        let (mut k, mut len, mut data, mut buffer, mut offset) =
            (0, 0usize, null_mut(), null_mut(), 0usize);
        // SAFETY: `v` is a typed array.
        check(unsafe {
            napi_get_typedarray_info(
                self.env,
                v,
                &mut k,
                &mut len,
                &mut data,
                &mut buffer,
                &mut offset,
            )
        })?;
        if k != kind {
            return Err(Error::ArgType { name, expected });
        }
        let elem = if kind == NAPI_UINT32_ARRAY { 4 } else { 1 };
        Ok(TypedArray {
            data: data as *mut u8,
            byte_len: len * elem,
            buffer,
        })
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
    pub unsafe fn u32_slice(&self, i: usize, name: &'static str) -> Result<&mut [u32]> {
        let ta = self.typed_array(i, name, NAPI_UINT32_ARRAY)?;
        if ta.byte_len == 0 || ta.data.is_null() {
            return Ok(&mut []);
        }
        // SAFETY: a Uint32Array's data is 4-byte aligned and `byte_len` long; nothing
        // else accesses it while this synchronous call runs (the caller's promise).
        Ok(unsafe { std::slice::from_raw_parts_mut(ta.data as *mut u32, ta.byte_len / 4) })
    }

    /// The native object behind an external created by `new_external::<T>`.
    pub fn external<T: Tagged>(&self, i: usize, name: &'static str) -> Result<&T> {
        let v = self.arg(i);
        let mut p = null_mut();
        // SAFETY: `v` is a value of this call. Anything but an external fails with
        // napi_invalid_arg, so no napi_typeof is needed first.
        let mut ok = match unsafe { napi_get_value_external(self.env, v, &mut p) } {
            NAPI_OK => true,
            NAPI_INVALID_ARG => false,
            status => return Err(Error::Napi(status)),
        };
        if ok {
            // SAFETY: `v` is an external value.
            check(unsafe { napi_check_object_type_tag(self.env, v, &T::TAG, &mut ok) })?;
        }
        if !ok {
            return Err(Error::ArgType {
                name,
                expected: T::EXPECTED,
            });
        }
        // SAFETY: the tag proves this external was created by `new_external::<T>`,
        // whose data is a `Box<T>` that lives until the external is collected, which
        // cannot happen while it is an argument of this call; only shared references
        // to it are ever made.
        Ok(unsafe { &*(p as *const T) })
    }

    /// The return value of a function that returns `undefined`, without a Node-API call:
    /// Node turns a NULL result of a callback into `undefined`.
    pub fn returns_undefined(&self) -> napi_value {
        null_mut()
    }

    pub fn undefined(&self) -> napi_value {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        unsafe { napi_get_undefined(self.env, &mut v) };
        v
    }

    pub fn boolean(&self, b: bool) -> Result<napi_value> {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_get_boolean(self.env, b, &mut v) })?;
        Ok(v)
    }

    pub fn number(&self, n: f64) -> Result<napi_value> {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_create_double(self.env, n, &mut v) })?;
        Ok(v)
    }

    pub fn array(&self, items: &[napi_value]) -> Result<napi_value> {
        let mut a = null_mut();
        // SAFETY: plain Node-API calls on values of this call.
        unsafe {
            check(napi_create_array_with_length(self.env, items.len(), &mut a))?;
            for (i, item) in items.iter().enumerate() {
                check(napi_set_element(self.env, a, i as u32, *item))?;
            }
        }
        Ok(a)
    }

    /// An ArrayBuffer over `len` bytes of memory at `data` that JavaScript does not own;
    /// `owner` keeps that memory alive and is dropped when the ArrayBuffer is collected.
    /// `None` where this Node.js build does not allow external ArrayBuffers.
    ///
    /// # Safety
    /// `data` must stay valid for `len` bytes for as long as `owner` is alive.
    pub unsafe fn external_arraybuffer<T: 'static>(
        &self,
        data: *mut u8,
        len: usize,
        owner: T,
    ) -> Result<Option<napi_value>> {
        unsafe extern "C" fn finalize<T>(_env: napi_env, _data: *mut c_void, hint: *mut c_void) {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: `hint` is the Box<T> leaked in `external_arraybuffer`, finalized once.
                drop(unsafe { Box::from_raw(hint as *mut T) });
            }));
        }
        let hint = Box::into_raw(Box::new(owner));
        let mut ab = null_mut();
        // SAFETY: the memory stays valid until the finalizer drops `owner` (the caller's promise).
        let status = unsafe {
            napi_create_external_arraybuffer(
                self.env,
                data as *mut c_void,
                len,
                Some(finalize::<T>),
                hint as *mut c_void,
                &mut ab,
            )
        };
        if status != NAPI_OK {
            // SAFETY: the ArrayBuffer was not created; `hint` is still ours.
            drop(unsafe { Box::from_raw(hint) });
            return Ok(None);
        }
        Ok(Some(ab))
    }

    /// Wraps `value` in a type-tagged external, dropped when JavaScript collects it.
    pub fn new_external<T: Tagged>(&self, value: T) -> Result<napi_value> {
        unsafe extern "C" fn finalize<T>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
            // Never unwind into the garbage collector.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: `data` is the Box<T> leaked in `new_external`; it is finalized once.
                drop(unsafe { Box::from_raw(data as *mut T) });
            }));
        }
        let raw = Box::into_raw(Box::new(value));
        let mut v = null_mut();
        // SAFETY: ownership of `raw` passes to the external, whose finalizer frees it.
        let status = unsafe {
            napi_create_external(
                self.env,
                raw as *mut c_void,
                Some(finalize::<T>),
                null_mut(),
                &mut v,
            )
        };
        if status != NAPI_OK {
            // SAFETY: the external was not created, so `raw` is still ours.
            drop(unsafe { Box::from_raw(raw) });
            return Err(Error::Napi(status));
        }
        // SAFETY: `v` is a fresh external.
        check(unsafe { napi_type_tag_object(self.env, v, &T::TAG) })?;
        Ok(v)
    }
}

/// A native type handed to JavaScript as a type-tagged external.
pub trait Tagged: 'static {
    const TAG: napi_type_tag;
    /// How an argument of this type is described in a TypeError.
    const EXPECTED: &'static str;
}

/// A strong reference to a JavaScript value, deleted on drop.
pub struct Ref {
    env: napi_env,
    raw: napi_ref,
}

impl Ref {
    pub fn new(env: napi_env, value: napi_value) -> Result<Self> {
        let mut raw = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_create_reference(env, value, 1, &mut raw) })?;
        Ok(Ref { env, raw })
    }

    pub fn value(&self) -> Result<napi_value> {
        let mut v = null_mut();
        // SAFETY: the reference is alive until dropped.
        check(unsafe { napi_get_reference_value(self.env, self.raw, &mut v) })?;
        Ok(v)
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        // SAFETY: the reference was created on `env` and is deleted once. References
        // are only dropped on the thread of their environment (finalizers included).
        unsafe { napi_delete_reference(self.env, self.raw) };
    }
}
