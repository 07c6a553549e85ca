//! `GuestMem`: an immutable set of `HostRegion`s, implementing vm-memory's
//! `GuestMemory` (and so, through vm-memory's blanket impl, `Bytes<GuestAddress>`).

use vm_memory::{GuestAddress, GuestMemory, GuestMemoryRegion};

use super::region::{HostRegion, HOST_ALIGN};
use crate::engine::error::{Error, Result};

/// Guest addresses must stay below 2^53 so JavaScript numbers hold them exactly.
pub const ADDRESS_LIMIT: u64 = 1 << 53;

/// Guest memory made of non-overlapping regions, sorted by guest address.
#[derive(Debug)]
pub struct GuestMem {
    regions: Vec<HostRegion>,
}

impl GuestMem {
    /// Validates and sorts `regions`: at least one; each non-empty, 8-byte
    /// aligned in host and guest address, ending at or below `ADDRESS_LIMIT`;
    /// no two overlapping. Errors name the offending region by its index in
    /// the caller's list.
    pub fn new(regions: Vec<HostRegion>) -> Result<Self> {
        if regions.is_empty() {
            return Err(Error::InvalidRegion(
                "guest memory needs at least one region".into(),
            ));
        }
        let mut indexed: Vec<(usize, HostRegion)> = regions.into_iter().enumerate().collect();
        for (i, r) in &indexed {
            let start = r.start_addr().0;
            if r.len() == 0 {
                return Err(Error::InvalidRegion(format!("region {i} is empty")));
            }
            if start % HOST_ALIGN as u64 != 0 {
                return Err(Error::InvalidRegion(format!(
                    "region {i}: guest address 0x{start:x} is not a multiple of {HOST_ALIGN}"
                )));
            }
            if r.host_ptr() as usize % HOST_ALIGN != 0 {
                return Err(Error::InvalidRegion(format!(
                    "region {i}: its buffer is not {HOST_ALIGN}-byte aligned in host memory (ring indices are \
                     accessed atomically); allocate it with GuestMemory.fromRanges, or use a buffer whose byteOffset \
                     is a multiple of {HOST_ALIGN} in a fresh ArrayBuffer"
                )));
            }
            match start.checked_add(r.len()) {
                Some(end) if end <= ADDRESS_LIMIT => {}
                _ => {
                    return Err(Error::InvalidRegion(format!(
                        "region {i} (0x{start:x}, {} bytes) ends beyond 2^53, the largest guest address supported",
                        r.len()
                    )))
                }
            }
        }
        indexed.sort_by_key(|(_, r)| r.start_addr());
        for pair in indexed.windows(2) {
            let (ia, a) = &pair[0];
            let (ib, b) = &pair[1];
            if a.start_addr().0 + a.len() > b.start_addr().0 {
                return Err(Error::InvalidRegion(format!(
                    "regions {ia} (0x{:x}..0x{:x}) and {ib} (0x{:x}..0x{:x}) overlap",
                    a.start_addr().0,
                    a.start_addr().0 + a.len(),
                    b.start_addr().0,
                    b.start_addr().0 + b.len()
                )));
            }
        }
        Ok(GuestMem {
            regions: indexed.into_iter().map(|(_, r)| r).collect(),
        })
    }

    /// The regions, sorted by guest address.
    pub fn regions(&self) -> &[HostRegion] {
        &self.regions
    }

    /// The region holding all of `[addr, addr + len)` and the offset of `addr`
    /// in it, when one region holds it all.
    pub fn region_range(&self, addr: u64, len: u64) -> Option<(&HostRegion, usize)> {
        let r = self.find_region(GuestAddress(addr))?;
        let off = addr - r.start_addr().0;
        (off.checked_add(len)? <= r.len()).then_some((r, off as usize))
    }
}

/// `r` when `addr` falls inside it.
#[inline(always)]
fn within(r: &HostRegion, addr: GuestAddress) -> Option<&HostRegion> {
    let off = addr.0.checked_sub(r.start_addr().0)?;
    (off < r.len()).then_some(r)
}

impl GuestMemory for GuestMem {
    type R = HostRegion;

    fn num_regions(&self) -> usize {
        self.regions.len()
    }

    /// vm-memory calls this on every access (each `read_slice`, `write_obj`,
    /// `load` and `store` of virtio-queue and of the package), several times
    /// per chain. The first region is tried first: it is the only one of most
    /// guest memories, and the one below 4 GiB of a vhost-user frontend's,
    /// where rings and buffers usually are. Only then the binary search (a
    /// loop of dependent compares that cost about 20 instructions a call even
    /// over one region).
    #[inline]
    fn find_region(&self, addr: GuestAddress) -> Option<&HostRegion> {
        let first = self.regions.first()?;
        if let Some(r) = within(first, addr) {
            return Some(r);
        }
        // The last region starting at or below `addr`, if `addr` falls inside it.
        let idx = self.regions.partition_point(|r| r.start_addr() <= addr);
        within(self.regions.get(idx.checked_sub(1)?)?, addr)
    }

    fn iter(&self) -> impl Iterator<Item = &HostRegion> {
        self.regions.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::native::NativeAlloc;
    use std::sync::Arc;
    use vm_memory::Bytes;

    fn native(start: u64, len: usize) -> HostRegion {
        let a = Arc::new(NativeAlloc::new(len).unwrap());
        // SAFETY: the region owns the allocation through the Arc.
        unsafe { HostRegion::new(GuestAddress(start), a.as_ptr(), len, Some(a)) }
    }

    #[test]
    fn finds_regions_and_spans_gaps_correctly() {
        let m = GuestMem::new(vec![native(0x10000, 0x1000), native(0, 0x1000)]).unwrap();
        assert_eq!(m.num_regions(), 2);
        assert_eq!(
            m.find_region(GuestAddress(0)).unwrap().start_addr(),
            GuestAddress(0)
        );
        assert_eq!(
            m.find_region(GuestAddress(0xfff)).unwrap().start_addr(),
            GuestAddress(0)
        );
        assert!(m.find_region(GuestAddress(0x1000)).is_none());
        assert!(m.find_region(GuestAddress(0xffff)).is_none());
        assert_eq!(
            m.find_region(GuestAddress(0x10fff)).unwrap().start_addr(),
            GuestAddress(0x10000)
        );
        assert!(m.find_region(GuestAddress(0x11000)).is_none());
        assert!(m.find_region(GuestAddress(u64::MAX)).is_none());
        assert!(m.region_range(0xff8, 8).is_some());
        assert!(m.region_range(0xff8, 9).is_none());
        assert!(m.region_range(0xff8, u64::MAX).is_none());
    }

    /// `find_region` tries the first region before its binary search: addresses
    /// below, inside and past the first region, in later regions and in gaps.
    #[test]
    fn finds_regions_past_the_first() {
        let m = GuestMem::new(vec![
            native(0x30000, 0x1000),
            native(0x8000, 0x1000),
            native(0x10000, 0x2000),
        ])
        .unwrap();
        let start = |a: u64| m.find_region(GuestAddress(a)).map(|r| r.start_addr().0);
        for (addr, expect) in [
            (0, None),
            (0x7fff, None),
            (0x8000, Some(0x8000)),
            (0x8fff, Some(0x8000)),
            (0x9000, None),
            (0x10000, Some(0x10000)),
            (0x11fff, Some(0x10000)),
            (0x12000, None),
            (0x30fff, Some(0x30000)),
            (0x31000, None),
            (u64::MAX, None),
        ] {
            assert_eq!(start(addr), expect, "0x{addr:x}");
        }
        let one = GuestMem::new(vec![native(0x2000, 0x1000)]).unwrap();
        assert!(one.find_region(GuestAddress(0x1fff)).is_none());
        assert!(one.find_region(GuestAddress(0x2000)).is_some());
        assert!(one.find_region(GuestAddress(0x3000)).is_none());
    }

    #[test]
    fn bytes_through_guest_addresses() {
        let m = GuestMem::new(vec![native(0, 0x1000), native(0x1000, 0x1000)]).unwrap();
        // vm-memory splits accesses across adjacent regions.
        m.write_slice(&[7u8; 16], GuestAddress(0xff8)).unwrap();
        let mut out = [0u8; 16];
        m.read_slice(&mut out, GuestAddress(0xff8)).unwrap();
        assert_eq!(out, [7u8; 16]);
        assert!(m.read_slice(&mut out, GuestAddress(0x1ff8)).is_err());
        m.write_obj(0x1234u16, GuestAddress(0x1002)).unwrap();
        assert_eq!(m.read_obj::<u16>(GuestAddress(0x1002)).unwrap(), 0x1234);
    }

    #[test]
    fn rejects_bad_layouts() {
        let err = |v: Vec<HostRegion>| match GuestMem::new(v) {
            Err(Error::InvalidRegion(msg)) => msg,
            other => panic!("expected InvalidRegion, got {other:?}"),
        };
        assert!(err(vec![]).contains("at least one"));
        assert!(err(vec![native(0, 0x1000), native(0x800, 0x1000)]).contains("overlap"));
        assert!(err(vec![native(4, 0x1000)]).contains("multiple of 8"));
        assert!(err(vec![native(ADDRESS_LIMIT - 0x800, 0x1000)]).contains("2^53"));
        assert!(err(vec![native(u64::MAX - 7, 0x1000)]).contains("2^53"));
        let mut buf = [0u64; 4];
        // SAFETY: the buffer outlives the (failed) construction.
        let misaligned = unsafe {
            HostRegion::new(
                GuestAddress(0),
                (buf.as_mut_ptr() as *mut u8).add(4),
                8,
                None,
            )
        };
        assert!(err(vec![misaligned]).contains("aligned in host memory"));
    }
}
