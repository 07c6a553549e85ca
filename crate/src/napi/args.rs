//! Decoding JavaScript values into Rust: integers, booleans, 64-bit
//! addresses, arrays and typed arrays, each with the TypeError or RangeError
//! that names the argument.

use std::ptr::null_mut;

use super::env::{check, Env, Value, ValueType};
use super::error::{Error, Result};
use super::sys::*;

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

/// The element types of the typed arrays the layer decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypedArrayKind {
    Uint8,
    Uint32,
    Float64,
}

impl TypedArrayKind {
    fn raw(self) -> napi_typedarray_type {
        match self {
            TypedArrayKind::Uint8 => NAPI_UINT8_ARRAY,
            TypedArrayKind::Uint32 => NAPI_UINT32_ARRAY,
            TypedArrayKind::Float64 => NAPI_FLOAT64_ARRAY,
        }
    }

    fn element_bytes(self) -> usize {
        match self {
            TypedArrayKind::Uint8 => 1,
            TypedArrayKind::Uint32 => 4,
            TypedArrayKind::Float64 => 8,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            TypedArrayKind::Uint8 => "a Uint8Array",
            TypedArrayKind::Uint32 => "a Uint32Array",
            TypedArrayKind::Float64 => "a Float64Array",
        }
    }
}

/// A typed array's memory, as V8 reports it (never from JavaScript properties).
pub struct TypedArray {
    pub data: *mut u8,
    pub byte_len: usize,
    /// The ArrayBuffer (or SharedArrayBuffer) the view is over.
    pub buffer: Value,
    /// The view's offset in `buffer`.
    pub byte_offset: usize,
}

impl Env {
    pub fn is_nullish(self, v: Value) -> Result<bool> {
        let t = self.type_of(v)?;
        Ok(t == ValueType::Undefined || t == ValueType::Null)
    }

    /// A number that is an integer in `0..=max`.
    pub fn uint(self, v: Value, name: &'static str, max: u64) -> Result<u64> {
        let mut d = 0f64;
        // SAFETY: `v` is a value of this environment. A non-number fails with
        // napi_number_expected, so no napi_typeof is needed first (one Node-API call per
        // argument, not two).
        match unsafe { napi_get_value_double(self.raw(), v.0, &mut d) } {
            NAPI_OK => {}
            NAPI_NUMBER_EXPECTED => {
                return Err(Error::ArgType {
                    name,
                    expected: "of type number",
                })
            }
            status => return Err(Error::Status(status)),
        }
        uint_value(d, name, max)
    }

    pub fn bool(self, v: Value, name: &'static str) -> Result<bool> {
        if self.type_of(v)? != ValueType::Boolean {
            return Err(Error::ArgType {
                name,
                expected: "of type boolean",
            });
        }
        let mut b = false;
        // SAFETY: `v` is a boolean of this environment.
        check(unsafe { napi_get_value_bool(self.raw(), v.0, &mut b) })?;
        Ok(b)
    }

    /// A non-negative safe integer, or a bigint that fits in 64 bits.
    pub fn u64(self, v: Value, name: &'static str) -> Result<u64> {
        match self.type_of(v)? {
            ValueType::Number => self.uint(v, name, (1u64 << 53) - 1),
            ValueType::BigInt => {
                let (mut x, mut lossless) = (0u64, false);
                // SAFETY: `v` is a bigint of this environment.
                check(unsafe {
                    napi_get_value_bigint_uint64(self.raw(), v.0, &mut x, &mut lossless)
                })?;
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

    /// An integer from 0 to `max`: a number (a safe integer) or a bigint. Nothing is
    /// converted: other types (a boxed number, an object with `valueOf`) are refused.
    pub fn uint_or_bigint(self, v: Value, name: &'static str, max: u64) -> Result<u64> {
        match self.type_of(v)? {
            ValueType::Number => self.uint(v, name, max.min((1u64 << 53) - 1)),
            ValueType::BigInt => {
                let (mut x, mut lossless) = (0u64, false);
                // SAFETY: `v` is a bigint of this environment.
                check(unsafe {
                    napi_get_value_bigint_uint64(self.raw(), v.0, &mut x, &mut lossless)
                })?;
                if !lossless || x > max {
                    return Err(Error::range(
                        name,
                        format!("a bigint must be from 0n to {max}n"),
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

    /// The length of an array (an `Array`, checked by V8, not by a property read).
    pub fn array_len(self, v: Value, name: &'static str) -> Result<u32> {
        let mut is_array = false;
        // SAFETY: `v` is a value of this environment.
        check(unsafe { napi_is_array(self.raw(), v.0, &mut is_array) })?;
        if !is_array {
            return Err(Error::ArgType {
                name,
                expected: "an array",
            });
        }
        let mut len = 0u32;
        // SAFETY: `v` is an array.
        check(unsafe { napi_get_array_length(self.raw(), v.0, &mut len) })?;
        Ok(len)
    }

    /// `array[i]` (which may run a getter).
    pub fn element(self, array: Value, i: u32) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: `array` is a value of this environment.
        check(unsafe { napi_get_element(self.raw(), array.0, i, &mut v) })?;
        Ok(Value(v))
    }

    /// A typed array of the given kind: its memory as V8 knows it.
    pub fn typed_array(
        self,
        v: Value,
        name: &'static str,
        kind: TypedArrayKind,
    ) -> Result<TypedArray> {
        let expected = kind.expected();
        let mut is = false;
        // SAFETY: `v` is a value of this environment.
        check(unsafe { napi_is_typedarray(self.raw(), v.0, &mut is) })?;
        if !is {
            return Err(Error::ArgType { name, expected });
        }
        let (mut k, mut len, mut data, mut buffer, mut offset) =
            (0, 0usize, null_mut(), null_mut(), 0usize);
        // SAFETY: `v` is a typed array.
        check(unsafe {
            napi_get_typedarray_info(
                self.raw(),
                v.0,
                &mut k,
                &mut len,
                &mut data,
                &mut buffer,
                &mut offset,
            )
        })?;
        if k != kind.raw() {
            return Err(Error::ArgType { name, expected });
        }
        Ok(TypedArray {
            data: data as *mut u8,
            byte_len: len * kind.element_bytes(),
            buffer: Value(buffer),
            byte_offset: offset,
        })
    }
}
