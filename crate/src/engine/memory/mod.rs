//! Guest memory: vm-memory's traits implemented over host memory that is
//! either allocated here (page-aligned) or borrowed from JavaScript buffers.

pub mod guest;
pub mod native;
pub mod region;

pub use guest::{GuestMem, ADDRESS_LIMIT};
pub use native::{NativeAlloc, PAGE_SIZE};
pub use region::{HostRegion, HOST_ALIGN};
