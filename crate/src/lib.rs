//! Node-API addon exposing rust-vmm's `virtio-queue` and `vm-memory` crates.
//!
//! Layout: `memory` implements vm-memory's traits over host memory (no
//! Node-API); `chain_status` and `batch` are the chain-popping logic (no
//! Node-API); `napi` holds the Node-API declarations and the one trampoline
//! every exported function goes through; `memory_js` and `queue_js` are the
//! exported functions (queues addressed through `slots`); `exports` registers them.

pub mod batch;
mod bench;
mod call_area;
pub mod chain_status;
pub mod error;
mod exports;
mod instance;
pub mod memory;
mod memory_js;
pub mod napi;
mod queue_js;
mod slots;
#[cfg(target_os = "linux")]
pub mod vhost_user;
