//! The JavaScript-facing side: the exported functions over the engine, the
//! per-environment state they receive as callback data, and how the addon's
//! errors are thrown.

pub mod call_area;
#[cfg(target_os = "linux")]
pub mod file;
#[cfg(target_os = "linux")]
pub mod file_io;
#[cfg(target_os = "linux")]
pub mod file_io_batch;
pub mod memory;
pub mod queue;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throw;
#[cfg(target_os = "linux")]
pub mod vhost_user;

/// One call of an exported function, with this addon's state.
pub type Ctx<'a> = crate::napi::Ctx<'a, state::Instance>;
/// The signature of every exported function.
pub type Body = crate::napi::Body<state::Instance, crate::engine::Error>;
