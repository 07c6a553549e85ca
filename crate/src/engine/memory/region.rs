//! A guest memory region over host memory this crate does not necessarily own.
//!
//! vm-memory's `MmapRegion::build_raw` only accepts page-aligned pointers, and
//! the memory of a Node Buffer is not page-aligned. `HostRegion` implements
//! vm-memory's `GuestMemoryRegion` and `Bytes` over any host pointer that is at
//! least 8-byte aligned (the ring indices are accessed with atomics), by
//! delegating every access to a bounds-checked `VolatileSlice`.

use std::any::Any;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vm_memory::bitmap::BS;
use vm_memory::guest_memory::{Error as GmError, Result as GmResult};
use vm_memory::{
    AtomicAccess, Bytes, GuestAddress, GuestMemoryRegion, GuestUsize, MemoryRegionAddress,
    VolatileSlice,
};

use super::native::NativeAlloc;

/// Host alignment every region must have: ring indices are read and written
/// with atomic instructions, which need naturally aligned host addresses.
pub const HOST_ALIGN: usize = 8;

/// One contiguous range of guest physical memory backed by host memory.
#[derive(Debug)]
pub struct HostRegion {
    start: GuestAddress,
    len: usize,
    host: *mut u8,
    /// Present when the memory is owned on the Rust side (an allocation of
    /// this crate, a shared mapping of a frontend's fd): keeps it alive.
    _owner: Option<Arc<dyn Any + Send + Sync>>,
}

// SAFETY: a `HostRegion` is a pointer and a length; all accesses go through
// `VolatileSlice`, which performs volatile (or atomic) reads and writes, so
// sharing the region between threads is as safe as sharing guest memory is
// for vm-memory's own mmap backend.
unsafe impl Send for HostRegion {}
// SAFETY: see `Send` above.
unsafe impl Sync for HostRegion {}

impl HostRegion {
    /// Creates a region over `len` bytes at `host`, mapped at guest address `start`.
    ///
    /// # Safety
    /// `host` must point to `len` bytes that stay valid for reads and writes
    /// for as long as the region (or anything derived from it) is used. The
    /// caller keeps the backing store alive: `owner` for native allocations,
    /// a Node-API reference for JavaScript buffers.
    pub unsafe fn new(
        start: GuestAddress,
        host: *mut u8,
        len: usize,
        owner: Option<Arc<NativeAlloc>>,
    ) -> Self {
        HostRegion {
            start,
            len,
            host,
            _owner: owner.map(|a| a as Arc<dyn Any + Send + Sync>),
        }
    }

    /// Like `new`, with any owner type: the region keeps `owner` alive (for
    /// example a shared mapping that unmaps itself when dropped).
    ///
    /// # Safety
    /// As for `new`: `host` must point to `len` bytes that stay valid for
    /// reads and writes for as long as `owner` is alive.
    pub unsafe fn with_owner(
        start: GuestAddress,
        host: *mut u8,
        len: usize,
        owner: Arc<dyn Any + Send + Sync>,
    ) -> Self {
        HostRegion {
            start,
            len,
            host,
            _owner: Some(owner),
        }
    }

    /// The host address of the region's first byte.
    pub fn host_ptr(&self) -> *mut u8 {
        self.host
    }

    fn slice(&self) -> VolatileSlice<'_, ()> {
        // SAFETY: by the contract of `new`, `host` points to `len` valid bytes
        // for the lifetime of `self`.
        unsafe { VolatileSlice::new(self.host, self.len) }
    }
}

impl Bytes<MemoryRegionAddress> for HostRegion {
    type E = GmError;

    fn write(&self, buf: &[u8], addr: MemoryRegionAddress) -> GmResult<usize> {
        Ok(self.slice().write(buf, to_offset(addr)?)?)
    }

    fn read(&self, buf: &mut [u8], addr: MemoryRegionAddress) -> GmResult<usize> {
        Ok(self.slice().read(buf, to_offset(addr)?)?)
    }

    fn write_slice(&self, buf: &[u8], addr: MemoryRegionAddress) -> GmResult<()> {
        Ok(self.slice().write_slice(buf, to_offset(addr)?)?)
    }

    fn read_slice(&self, buf: &mut [u8], addr: MemoryRegionAddress) -> GmResult<()> {
        Ok(self.slice().read_slice(buf, to_offset(addr)?)?)
    }

    #[allow(deprecated)]
    fn read_from<F: Read>(
        &self,
        addr: MemoryRegionAddress,
        src: &mut F,
        count: usize,
    ) -> GmResult<usize> {
        Ok(self.slice().read_from(to_offset(addr)?, src, count)?)
    }

    #[allow(deprecated)]
    fn read_exact_from<F: Read>(
        &self,
        addr: MemoryRegionAddress,
        src: &mut F,
        count: usize,
    ) -> GmResult<()> {
        Ok(self.slice().read_exact_from(to_offset(addr)?, src, count)?)
    }

    #[allow(deprecated)]
    fn write_to<F: Write>(
        &self,
        addr: MemoryRegionAddress,
        dst: &mut F,
        count: usize,
    ) -> GmResult<usize> {
        Ok(self.slice().write_to(to_offset(addr)?, dst, count)?)
    }

    #[allow(deprecated)]
    fn write_all_to<F: Write>(
        &self,
        addr: MemoryRegionAddress,
        dst: &mut F,
        count: usize,
    ) -> GmResult<()> {
        Ok(self.slice().write_all_to(to_offset(addr)?, dst, count)?)
    }

    fn store<T: AtomicAccess>(
        &self,
        val: T,
        addr: MemoryRegionAddress,
        order: Ordering,
    ) -> GmResult<()> {
        Ok(self.slice().store(val, to_offset(addr)?, order)?)
    }

    fn load<T: AtomicAccess>(&self, addr: MemoryRegionAddress, order: Ordering) -> GmResult<T> {
        Ok(self.slice().load(to_offset(addr)?, order)?)
    }
}

fn to_offset(addr: MemoryRegionAddress) -> GmResult<usize> {
    usize::try_from(addr.0).map_err(|_| GmError::InvalidBackendAddress)
}

impl GuestMemoryRegion for HostRegion {
    type B = ();

    fn len(&self) -> GuestUsize {
        self.len as GuestUsize
    }

    fn start_addr(&self) -> GuestAddress {
        self.start
    }

    fn bitmap(&self) -> &Self::B {
        &()
    }

    fn get_host_address(&self, addr: MemoryRegionAddress) -> GmResult<*mut u8> {
        self.check_address(addr)
            .ok_or(GmError::InvalidBackendAddress)
            // `check_address` guarantees the offset is within the region.
            .map(|addr| self.host.wrapping_add(addr.0 as usize))
    }

    fn get_slice(
        &self,
        offset: MemoryRegionAddress,
        count: usize,
    ) -> GmResult<VolatileSlice<'_, BS<'_, ()>>> {
        Ok(self.slice().subslice(to_offset(offset)?, count)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(buf: &mut [u64], start: u64) -> HostRegion {
        // SAFETY: the buffer outlives the region in every test below.
        unsafe {
            HostRegion::new(
                GuestAddress(start),
                buf.as_mut_ptr() as *mut u8,
                buf.len() * 8,
                None,
            )
        }
    }

    #[test]
    fn reads_and_writes_within_bounds() {
        let mut buf = [0u64; 8];
        let r = region(&mut buf, 0x1000);
        assert_eq!(r.len(), 64);
        assert_eq!(r.start_addr(), GuestAddress(0x1000));
        r.write_slice(&[1, 2, 3], MemoryRegionAddress(61)).unwrap();
        let mut out = [0u8; 3];
        r.read_slice(&mut out, MemoryRegionAddress(61)).unwrap();
        assert_eq!(out, [1, 2, 3]);
        assert!(r
            .write_slice(&[1, 2, 3, 4], MemoryRegionAddress(61))
            .is_err());
        assert!(r.read_slice(&mut out, MemoryRegionAddress(64)).is_err());
        assert!(r
            .read_slice(&mut out, MemoryRegionAddress(u64::MAX))
            .is_err());
    }

    #[test]
    fn atomics_respect_alignment() {
        let mut buf = [0u64; 2];
        let r = region(&mut buf, 0);
        r.store(0xbeefu16, MemoryRegionAddress(2), Ordering::Release)
            .unwrap();
        assert_eq!(
            r.load::<u16>(MemoryRegionAddress(2), Ordering::Acquire)
                .unwrap(),
            0xbeef
        );
        assert!(r
            .load::<u16>(MemoryRegionAddress(3), Ordering::Acquire)
            .is_err());
        assert!(r
            .load::<u16>(MemoryRegionAddress(15), Ordering::Acquire)
            .is_err());
    }

    #[test]
    fn host_addresses_and_slices() {
        let mut buf = [0u64; 4];
        let r = region(&mut buf, 0x100);
        let base = r.host_ptr() as usize;
        assert_eq!(
            r.get_host_address(MemoryRegionAddress(31)).unwrap() as usize,
            base + 31
        );
        assert!(r.get_host_address(MemoryRegionAddress(32)).is_err());
        assert_eq!(r.get_slice(MemoryRegionAddress(8), 24).unwrap().len(), 24);
        assert!(r.get_slice(MemoryRegionAddress(8), 25).is_err());
        assert_eq!(r.as_volatile_slice().unwrap().len(), 32);
    }
}
