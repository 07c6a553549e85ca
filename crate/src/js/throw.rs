//! How the addon's errors reach JavaScript: argument errors as Node's
//! `TypeError` / `RangeError` (with `code`), everything else as the
//! `VirtioQueueError` class the JavaScript layer registered (`init`), whose
//! `code` names the variant.

use super::state::Instance;
use crate::engine::Error;
use crate::napi::{self, Env, ErrorClass, Throw};

impl From<napi::Error> for Error {
    fn from(e: napi::Error) -> Self {
        match e {
            napi::Error::ArgType { name, expected } => Error::ArgType { name, expected },
            napi::Error::ArgRange { name, reason } => Error::ArgRange { name, reason },
            napi::Error::Status(status) => Error::NodeApi(status),
        }
    }
}

impl Throw<Instance> for Error {
    fn from_panic(message: String) -> Self {
        Error::Panic(message)
    }

    fn throw(&self, env: Env, state: &Instance) -> napi::Result<()> {
        let message = self.to_string();
        let class = match self {
            Error::ArgType { .. } => ErrorClass::TypeError,
            Error::ArgRange { .. } => ErrorClass::RangeError,
            _ => match state.error_class() {
                Some(ctor) => {
                    let args = [env.string(&message)?, env.string(self.code())?];
                    return env.throw_new(ctor, &args);
                }
                None => ErrorClass::Error,
            },
        };
        env.throw_error(class, self.code(), &message)
    }
}
