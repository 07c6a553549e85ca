//! The Rust that knows nothing of JavaScript: guest memory over host memory,
//! the batch encoding of popped chains and used entries, why a chain ended
//! early, the table of generation-checked handles, fallocate(2) on files
//! (Linux), preadv/pwritev on a chain's buffers, now or queued in a list run
//! later on another thread (Linux), the benchmark's native loop (feature `testing`), and the addon's
//! one error type. Nothing here
//! uses Node-API; `js` exposes it.

pub mod batch;
#[cfg(feature = "testing")]
pub mod bench;
pub mod chain_status;
pub mod error;
#[cfg(target_os = "linux")]
pub mod file;
#[cfg(target_os = "linux")]
pub mod file_io;
#[cfg(target_os = "linux")]
pub mod file_io_list;
pub mod memory;
pub mod slots;
#[cfg(all(test, target_os = "linux"))]
pub(crate) mod test_support;

pub use error::{Error, Result};
