//! Native data handed to JavaScript: type-tagged externals, and ArrayBuffers
//! (external ones over native memory; the data and length V8 reports for any).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use super::env::{check, Env, Value};
use super::error::{Error, Result};
use super::sys::*;

/// A native type handed to JavaScript as a type-tagged external.
pub trait Tagged: 'static {
    const TAG: napi_type_tag;
    /// How an argument of this type is described in a TypeError.
    const EXPECTED: &'static str;
}

/// Drops the `Box<T>` behind `data`. Never unwinds into the garbage collector.
pub(super) unsafe extern "C" fn drop_box<T>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `data` is a Box<T> leaked by this module, finalized once.
        drop(unsafe { Box::from_raw(data as *mut T) });
    }));
}

/// As `drop_box`, for a Box passed as the finalize hint.
unsafe extern "C" fn drop_hint<T>(env: napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: forwarded from Node's finalizer call; `hint` is the Box<T>.
    unsafe { drop_box::<T>(env, hint, null_mut()) }
}

impl Env {
    /// Wraps `value` in a type-tagged external, dropped when JavaScript collects it.
    pub fn new_external<T: Tagged>(self, value: T) -> Result<Value> {
        let raw = Box::into_raw(Box::new(value));
        let mut v = null_mut();
        // SAFETY: ownership of `raw` passes to the external, whose finalizer frees it.
        let status = unsafe {
            napi_create_external(
                self.raw(),
                raw as *mut c_void,
                Some(drop_box::<T>),
                null_mut(),
                &mut v,
            )
        };
        if status != NAPI_OK {
            // SAFETY: the external was not created, so `raw` is still ours.
            drop(unsafe { Box::from_raw(raw) });
            return Err(Error::Status(status));
        }
        // SAFETY: `v` is a fresh external.
        check(unsafe { napi_type_tag_object(self.raw(), v, &T::TAG) })?;
        Ok(Value(v))
    }

    /// The native object behind `v` if it is an external made by `new_external::<T>`.
    /// The pointer is valid while `v` is reachable (for a call's argument: the call).
    pub(super) fn external_ptr<T: Tagged>(self, v: Value, name: &'static str) -> Result<*const T> {
        let mut p = null_mut();
        // SAFETY: `v` is a value of this environment. Anything but an external fails
        // with napi_invalid_arg, so no napi_typeof is needed first.
        let mut ok = match unsafe { napi_get_value_external(self.raw(), v.0, &mut p) } {
            NAPI_OK => true,
            NAPI_INVALID_ARG => false,
            status => return Err(Error::Status(status)),
        };
        if ok {
            // SAFETY: `v` is an external value.
            check(unsafe { napi_check_object_type_tag(self.raw(), v.0, &T::TAG, &mut ok) })?;
        }
        if !ok {
            return Err(Error::ArgType {
                name,
                expected: T::EXPECTED,
            });
        }
        Ok(p as *const T)
    }

    /// An ArrayBuffer over `len` bytes of memory at `data` that JavaScript does not own;
    /// `owner` keeps that memory alive and is dropped when the ArrayBuffer is collected.
    /// `None` where this Node.js build does not allow external ArrayBuffers.
    ///
    /// # Safety
    /// `data` must stay valid for `len` bytes for as long as `owner` is alive.
    pub unsafe fn external_arraybuffer<T: 'static>(
        self,
        data: *mut u8,
        len: usize,
        owner: T,
    ) -> Result<Option<Value>> {
        let hint = Box::into_raw(Box::new(owner));
        let mut ab = null_mut();
        // SAFETY: the memory stays valid until the finalizer drops `owner` (the caller's promise).
        let status = unsafe {
            napi_create_external_arraybuffer(
                self.raw(),
                data as *mut c_void,
                len,
                Some(drop_hint::<T>),
                hint as *mut c_void,
                &mut ab,
            )
        };
        if status != NAPI_OK {
            // SAFETY: the ArrayBuffer was not created; `hint` is still ours.
            drop(unsafe { Box::from_raw(hint) });
            return Ok(None);
        }
        Ok(Some(Value(ab)))
    }

    /// Whether `v` is an ArrayBuffer (not a SharedArrayBuffer, not a view), as V8 knows it.
    pub fn is_arraybuffer(self, v: Value) -> Result<bool> {
        let mut is = false;
        // SAFETY: `v` is a value of this environment.
        check(unsafe { napi_is_arraybuffer(self.raw(), v.0, &mut is) })?;
        Ok(is)
    }

    /// An ArrayBuffer's data pointer and byte length now, as V8 knows them (never from
    /// JavaScript properties): null and 0 once detached; the current length of a
    /// resizable one. Fails (`ArgType`) for anything but an ArrayBuffer.
    pub fn arraybuffer_info(self, v: Value, name: &'static str) -> Result<(*mut u8, usize)> {
        let (mut data, mut len) = (null_mut(), 0usize);
        // SAFETY: `v` is a value of this environment; Node checks it is an ArrayBuffer.
        match unsafe { napi_get_arraybuffer_info(self.raw(), v.0, &mut data, &mut len) } {
            NAPI_OK => Ok((data as *mut u8, len)),
            NAPI_INVALID_ARG => Err(Error::ArgType {
                name,
                expected: "an ArrayBuffer",
            }),
            status => Err(Error::Status(status)),
        }
    }
}
