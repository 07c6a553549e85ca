//! The layer's own errors, and the trait through which an addon's error type
//! is thrown.
//!
//! The layer knows three things that can go wrong: an argument of the wrong
//! JavaScript type, an argument with an unusable value, and a Node-API call
//! that failed. An addon converts these into its own error type (`From`), and
//! tells the layer how its errors are thrown (`trampoline::Throw`).

use std::fmt;

use super::sys::napi_status;

/// What the layer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument has the wrong JavaScript type (Node's `ERR_INVALID_ARG_TYPE`).
    ArgType {
        name: &'static str,
        expected: &'static str,
    },
    /// An argument has the right type but an unusable value (Node's `ERR_OUT_OF_RANGE`).
    ArgRange { name: &'static str, reason: String },
    /// A Node-API call returned this status (never `napi_ok`); usually a
    /// JavaScript exception is already pending.
    Status(napi_status),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn range(name: &'static str, reason: impl Into<String>) -> Self {
        Error::ArgRange {
            name,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ArgType { name, expected } => {
                write!(f, "The \"{name}\" argument must be {expected}")
            }
            Error::ArgRange { name, reason } => {
                write!(f, "The \"{name}\" argument is out of range: {reason}")
            }
            Error::Status(status) => write!(f, "a Node-API call failed with status {status}"),
        }
    }
}

impl std::error::Error for Error {}

/// The JavaScript error classes Node-API creates directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Error,
    TypeError,
    RangeError,
}
