//! Test helpers shared by the engine's unit tests: guest memory over native
//! allocations, and files that exist only as open descriptors.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use vm_memory::GuestAddress;

use crate::engine::memory::{GuestMem, HostRegion, NativeAlloc};

/// Guest memory of native allocations, one per `(guest address, length)`.
pub fn guest_memory(regions: &[(u64, usize)]) -> GuestMem {
    GuestMem::new(
        regions
            .iter()
            .map(|&(addr, len)| {
                let alloc = Arc::new(NativeAlloc::new(len).unwrap());
                // SAFETY: the allocation is `len` bytes and the region keeps it alive.
                unsafe { HostRegion::new(GuestAddress(addr), alloc.as_ptr(), len, Some(alloc)) }
            })
            .collect(),
    )
    .unwrap()
}

/// A new empty file in `dir`, open for reading and writing and already unlinked
/// (it goes away with its descriptor). The name is unique per process, thread
/// and `tag`, so tests running in parallel never share one.
pub fn unlinked_file(dir: &Path, tag: &str) -> std::io::Result<File> {
    let path = dir.join(format!(
        "vq-test-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}
