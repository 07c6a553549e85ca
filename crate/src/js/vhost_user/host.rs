//! The JavaScript side a backend talks to: one dispatcher function (the
//! TypeScript layer's, `src/vhost-user/native-events.ts`), called on the main
//! thread with an event kind and its arguments. Every call opens its own
//! handle scope, goes through `napi_make_callback` (so promise reactions run
//! when it returns, as after any I/O callback) and turns a thrown exception
//! into an error message, never a pending exception.

use crate::engine::Result;
use crate::napi::{AsyncContext, Called, Env, Ref, Value, ValueType};

/// Event kinds, as `native-events.ts` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Event {
    Connected = 0,
    Disconnected = 1,
    Refused = 2,
    Reset = 3,
    Closed = 4,
    Memory = 5,
    Started = 6,
    Stopped = 7,
    Kick = 8,
    Config = 9,
    WriteConfig = 10,
    Features = 11,
}

/// The environment, the dispatcher and the async context of one backend.
pub struct Host {
    pub env: Env,
    /// Set when the core said `closed` (its last call).
    pub closed: std::cell::Cell<bool>,
    dispatch: Ref,
    context: AsyncContext,
}

/// What a dispatch came to: the value returned, or the message of what was thrown.
pub type Outcome = std::result::Result<Value, String>;

impl Host {
    pub fn new(env: Env, dispatch: Value) -> Result<Self> {
        if env.type_of(dispatch)? != ValueType::Function {
            return Err(crate::engine::Error::ArgType {
                name: "dispatch",
                expected: "a function",
            });
        }
        Ok(Host {
            env,
            closed: std::cell::Cell::new(false),
            dispatch: Ref::new(env, dispatch)?,
            context: AsyncContext::new(env, "VhostUserBackend")?,
        })
    }

    /// Calls the dispatcher with `event` and `args` (at most 5). The caller
    /// holds a handle scope open (`HandleScope::open`) for the values made.
    pub fn call(&self, event: Event, args: &[Value]) -> Outcome {
        let run = || -> crate::napi::Result<Called> {
            let mut argv = [Value::undefined_result(); 6];
            argv[0] = self.env.number(event as u32 as f64)?;
            let n = args.len().min(5);
            argv[1..=n].copy_from_slice(&args[..n]);
            let f = self.dispatch.value()?;
            self.env.make_callback(&self.context, f, &argv[..=n])
        };
        match run() {
            Ok(Called::Returned(v)) => Ok(v),
            Ok(Called::Threw(e)) => Err(self.env.string_of(e)),
            Err(e) => {
                let _ = self.env.take_exception();
                Err(format!("calling the device failed: {e}"))
            }
        }
    }

    /// The integer from 0 to `max` the dispatcher returned, if it is one.
    pub fn uint_of(&self, v: Value, max: u64) -> Option<u64> {
        if self.env.type_of(v).ok()? != ValueType::Number {
            return None;
        }
        self.env.uint(v, "result", max).ok()
    }
}
