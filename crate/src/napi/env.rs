//! `Env` and `Value`: the environment of a call and the JavaScript values of
//! that call, as safe wrappers over the raw handles.
//!
//! A raw `napi_env` or `napi_value` is a pointer that Node dereferences; a
//! function handing an arbitrary one to Node would have to be `unsafe`. The
//! wrappers can only be made from handles Node gave the layer (the
//! constructors are `unsafe` or private to the layer), so the functions
//! taking them are safe. Both are valid for the callback they came from, on
//! its thread: the layer never lets a `Value` outlive its call in a form
//! Rust could use later (a `Ref` is the way to keep a value).

use std::ffi::c_char;
use std::ptr::null_mut;

use super::error::{Error, ErrorClass, Result};
use super::sys::*;

/// Turns a Node-API status into a `Result`.
pub(super) fn check(status: napi_status) -> Result<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(Error::Status(status))
    }
}

/// The environment of the current call (the main thread and each worker have their own).
#[derive(Clone, Copy, Debug)]
pub struct Env(napi_env);

impl Env {
    /// # Safety
    /// `raw` must be the environment Node passed to the running callback (or
    /// finalizer), and the `Env` used only on that environment's thread while
    /// the environment lives.
    pub unsafe fn from_raw(raw: napi_env) -> Self {
        Env(raw)
    }

    pub(super) fn raw(self) -> napi_env {
        self.0
    }
}

/// A JavaScript value of the current call.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct Value(pub(super) napi_value);

impl Value {
    /// A callback's result that Node turns into `undefined` (a NULL `napi_value`),
    /// without a Node-API call.
    pub fn undefined_result() -> Self {
        Value(null_mut())
    }

    /// The raw handle, for Node (a callback's result, module registration).
    pub fn raw(self) -> napi_value {
        self.0
    }

    /// # Safety
    /// `raw` must be a value Node handed to the running callback, or one made
    /// during it, in the environment it is used with.
    pub unsafe fn from_raw(raw: napi_value) -> Self {
        Value(raw)
    }
}

/// A value's JavaScript type (`typeof`, with `null` and externals apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    Undefined,
    Null,
    Boolean,
    Number,
    String,
    Symbol,
    Object,
    Function,
    External,
    BigInt,
}

impl Env {
    pub fn type_of(self, v: Value) -> Result<ValueType> {
        let mut t = 0;
        // SAFETY: `v` is a value of this environment (the wrapper's contract).
        check(unsafe { napi_typeof(self.0, v.0, &mut t) })?;
        Ok(match t {
            NAPI_UNDEFINED => ValueType::Undefined,
            NAPI_NULL => ValueType::Null,
            NAPI_BOOLEAN => ValueType::Boolean,
            NAPI_NUMBER => ValueType::Number,
            NAPI_STRING => ValueType::String,
            NAPI_SYMBOL => ValueType::Symbol,
            NAPI_FUNCTION => ValueType::Function,
            NAPI_EXTERNAL => ValueType::External,
            NAPI_BIGINT => ValueType::BigInt,
            _ => ValueType::Object,
        })
    }

    pub fn undefined(self) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_get_undefined(self.0, &mut v) })?;
        Ok(Value(v))
    }

    pub fn boolean(self, b: bool) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_get_boolean(self.0, b, &mut v) })?;
        Ok(Value(v))
    }

    pub fn number(self, n: f64) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_create_double(self.0, n, &mut v) })?;
        Ok(Value(v))
    }

    pub fn string(self, s: &str) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: `s` is valid UTF-8 of the given length.
        check(unsafe {
            napi_create_string_utf8(self.0, s.as_ptr() as *const c_char, s.len(), &mut v)
        })?;
        Ok(Value(v))
    }

    /// A new array holding `items`.
    pub fn array(self, items: &[Value]) -> Result<Value> {
        let mut a = null_mut();
        // SAFETY: plain Node-API calls on values of this environment.
        unsafe {
            check(napi_create_array_with_length(self.0, items.len(), &mut a))?;
            for (i, item) in items.iter().enumerate() {
                check(napi_set_element(self.0, a, i as u32, item.0))?;
            }
        }
        Ok(Value(a))
    }

    /// A new Node Buffer holding a copy of `bytes`.
    pub fn buffer_copy(self, bytes: &[u8]) -> Result<Value> {
        let (mut data, mut v) = (null_mut(), null_mut());
        // SAFETY: `bytes` is valid for its length.
        check(unsafe {
            napi_create_buffer_copy(
                self.0,
                bytes.len(),
                bytes.as_ptr() as *const _,
                &mut data,
                &mut v,
            )
        })?;
        Ok(Value(v))
    }

    /// `object[key] = value`.
    pub fn set_property(self, object: Value, key: &str, value: Value) -> Result<()> {
        let key = self.string(key)?;
        // SAFETY: values of this environment.
        check(unsafe { napi_set_property(self.0, object.0, key.0, value.0) })
    }

    pub fn is_exception_pending(self) -> bool {
        let mut pending = false;
        // SAFETY: plain Node-API call.
        let status = unsafe { napi_is_exception_pending(self.0, &mut pending) };
        // If even this fails, assume an exception is pending: do not throw over it.
        status != NAPI_OK || pending
    }

    /// Throws a new `Error`, `TypeError` or `RangeError` with a `code` property.
    pub fn throw_error(self, class: ErrorClass, code: &str, message: &str) -> Result<()> {
        let (code, msg) = (self.string(code)?, self.string(message)?);
        let mut error = null_mut();
        // SAFETY: plain Node-API calls on strings of this environment.
        unsafe {
            check(match class {
                ErrorClass::Error => napi_create_error(self.0, code.0, msg.0, &mut error),
                ErrorClass::TypeError => napi_create_type_error(self.0, code.0, msg.0, &mut error),
                ErrorClass::RangeError => {
                    napi_create_range_error(self.0, code.0, msg.0, &mut error)
                }
            })?;
            check(napi_throw(self.0, error))
        }
    }

    /// Throws `new constructor(...args)`.
    pub fn throw_new(self, constructor: Value, args: &[Value]) -> Result<()> {
        let mut error = null_mut();
        let argv: Vec<napi_value> = args.iter().map(|a| a.0).collect();
        // SAFETY: values of this environment; `argv` holds `args.len()` values.
        unsafe {
            check(napi_new_instance(
                self.0,
                constructor.0,
                argv.len(),
                argv.as_ptr(),
                &mut error,
            ))?;
            check(napi_throw(self.0, error))
        }
    }
}

impl Error {
    /// Throws the layer's own error: a `TypeError` (`ERR_INVALID_ARG_TYPE`), a
    /// `RangeError` (`ERR_OUT_OF_RANGE`) or an `Error` (`ERR_NODE_API`).
    pub fn throw(&self, env: Env) -> Result<()> {
        let (class, code) = match self {
            Error::ArgType { .. } => (ErrorClass::TypeError, "ERR_INVALID_ARG_TYPE"),
            Error::ArgRange { .. } => (ErrorClass::RangeError, "ERR_OUT_OF_RANGE"),
            Error::Status(_) => (ErrorClass::Error, "ERR_NODE_API"),
        };
        env.throw_error(class, code, &self.to_string())
    }
}
