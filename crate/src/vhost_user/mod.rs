//! The native core of a vhost-user backend (Linux): the protocol, memory and
//! vring state, with no Node-API in it. See DESIGN.md for the threads and how
//! the JavaScript glue attaches.
//!
//! - `server`: the listening socket and the protocol thread (one frontend at
//!   a time, reset and listen again after it leaves);
//! - `dispatch`: the vhost crate's request handler on the protocol thread,
//!   forwarding each request to the owner thread through an `executor`;
//! - `backend`: the state machine on the owner thread, calling the `device`;
//! - `memory_table` / `mmap`: the frontend's memory regions, mapped shared,
//!   as a `GuestMem`; `vring` / `eventfd`: per-ring state and its fds;
//! - `frontend` (feature `testing`): a frontend of the package's own, for
//!   the JavaScript tests (and a load generator).

pub mod backend;
pub mod device;
pub mod dispatch;
pub mod error;
pub mod eventfd;
pub mod executor;
#[cfg(feature = "testing")]
pub mod frontend;
pub mod memory_table;
pub mod mmap;
pub mod server;
pub mod vring;

#[cfg(test)]
mod tests;

pub use backend::Backend;
pub use device::{Device, StopReason, Stopped, VringStart};
pub use error::{Error, Result};
pub use eventfd::{Notifier, VringFd};
pub use executor::{Executor, Job, Mailbox, OwnerThread, Reply};
pub use memory_table::{MemoryTable, RegionDesc};
pub use server::Server;
pub use vring::{Vring, VringAddrs};
