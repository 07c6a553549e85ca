//! Node-API addon exposing rust-vmm's `virtio-queue` and `vm-memory` crates.
//!
//! Layers, each using only those below it:
//! - `napi`: a generic Node-API layer (hand-written declarations in
//!   `napi::sys`, the one trampoline every export goes through, argument
//!   decoding, externals and ArrayBuffers, references). It knows nothing of
//!   this addon.
//! - `engine`: the Rust that knows nothing of JavaScript: guest memory over
//!   host memory, the batch encoding of chains and used entries, why a chain
//!   ended early, the handle table, the error type, the benchmark loop.
//! - `vhost_user` (to come): the vhost-user protocol side, beside `engine`
//!   and like it free of Node-API.
//! - `js`: the exported functions over the engine, the per-environment state
//!   they receive as callback data, and how errors are thrown.
//! - `exports`: the one table of exported functions.
//!
//! The feature `testing` adds the benchmark's native loop (`benchNative`) and
//! `forcePanicForTesting`; the published addon is built without it.

pub mod engine;
mod exports;
mod js;
pub mod napi;
#[cfg(target_os = "linux")]
pub mod vhost_user;
