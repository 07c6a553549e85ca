//! Page-aligned, zero-filled host memory allocated in Rust (the analogue of
//! the anonymous mappings behind `GuestMemoryMmap::from_ranges`), for guest
//! memory that JavaScript never sees: the engine's tests use it. Memory that
//! JavaScript sees is V8's (`GuestMemory.fromRanges` allocates ArrayBuffers),
//! so that a transfer to another thread cannot orphan it (README, Security).

use std::alloc::{alloc_zeroed, dealloc, Layout};

use crate::engine::error::{Error, Result};

/// The alignment of native regions: the host page size of the common platforms.
pub const PAGE_SIZE: usize = if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
    16384
} else {
    4096
};

/// A zero-filled, page-aligned allocation, freed when dropped.
#[derive(Debug)]
pub struct NativeAlloc {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the allocation is plain memory; access goes through `HostRegion`.
unsafe impl Send for NativeAlloc {}
// SAFETY: see `Send` above.
unsafe impl Sync for NativeAlloc {}

impl NativeAlloc {
    /// Allocates `len` zeroed bytes aligned to `PAGE_SIZE`.
    pub fn new(len: usize) -> Result<Self> {
        if len == 0 {
            return Err(Error::InvalidRegion(
                "a guest memory region cannot be empty".into(),
            ));
        }
        let layout = Layout::from_size_align(len, PAGE_SIZE).map_err(|_| {
            Error::InvalidRegion(format!("a region of {len} bytes cannot be allocated"))
        })?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(Error::InvalidRegion(format!(
                "out of memory allocating a region of {len} bytes"
            )));
        }
        Ok(NativeAlloc { ptr, layout })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Always false: `new` refuses a size of zero.
    pub fn is_empty(&self) -> bool {
        self.layout.size() == 0
    }
}

impl Drop for NativeAlloc {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `alloc_zeroed` with this same layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_page_aligned_and_zeroed() {
        let a = NativeAlloc::new(3 * PAGE_SIZE + 5).unwrap();
        assert_eq!(a.as_ptr() as usize % PAGE_SIZE, 0);
        assert_eq!(a.len(), 3 * PAGE_SIZE + 5);
        // SAFETY: the allocation is `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(a.as_ptr(), a.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn empty_and_huge_allocations_are_errors() {
        assert!(matches!(NativeAlloc::new(0), Err(Error::InvalidRegion(_))));
        assert!(NativeAlloc::new(usize::MAX - 10).is_err());
    }
}
