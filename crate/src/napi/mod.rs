//! A generic Node-API layer: safe wrappers over the hand-written declarations
//! in `sys`. It knows nothing of the addon above it: the addon gives it a
//! per-environment state and a table of functions at registration, and an
//! error type that implements `Throw`.
//!
//! - `trampoline`: registration, the one entry point every function goes
//!   through (panics caught, errors thrown through the addon's `Throw`), and
//!   `Ctx`, one call;
//! - `env`: `Env` and `Value`, value creation and throwing;
//! - `args`: decoding values (integers, addresses, arrays, typed arrays);
//! - `external`: type-tagged externals and ArrayBuffers;
//! - `reference`: strong references that outlive a call;
//! - `callback`: calling JavaScript from a libuv callback (handle scopes,
//!   async contexts, `napi_make_callback`, exceptions taken);
//! - `cleanup`: asynchronous environment-teardown hooks;
//! - `uv`: libuv async and poll handles on the environment's loop;
//! - `work`: tasks on libuv's threadpool (async work) that settle a Promise,
//!   or complete as their implementer likes (`Work`);
//! - `error`: the layer's own errors.
//!
//! Raw `napi_env` and `napi_value` handles never leave the layer except
//! through `unsafe` functions (the module entry point needs their types):
//! everything above it uses `Env` and `Value`.

mod args;
mod callback;
mod cleanup;
mod env;
mod error;
mod external;
mod reference;
mod sys;
mod trampoline;
mod uv;
mod work;

pub use args::{uint_value, TypedArray, TypedArrayKind};
pub use callback::{AsyncContext, Called, HandleScope};
pub use cleanup::{AsyncCleanupHook, CleanupDone};
pub use env::{Env, Value, ValueType};
pub use error::{Error, ErrorClass, Result};
pub use external::Tagged;
pub use reference::{Ref, WeakRef};
/// The raw handles of the module entry point (`napi_register_module_v1`), and type tags.
pub use sys::{napi_env, napi_type_tag as TypeTag, napi_value};
pub use trampoline::{register, Body, Ctx, Throw};
pub use uv::{AsyncHandle, Loop, PollHandle, Waker};
pub use work::{Settled, Task, Work};
