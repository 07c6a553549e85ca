//! The frontend's memory table: its regions, mapped, as a `GuestMem`, and the
//! translation of frontend user addresses (what vhost-user ring addresses
//! are) into guest physical addresses.

use std::fs::File;
use std::sync::Arc;

use vm_memory::GuestAddress;

use super::mmap::SharedMapping;
use crate::engine::memory::{GuestMem, HostRegion};

/// The most regions a table may hold (`GET_MAX_MEM_SLOTS`), as KVM and
/// libvhost-user allow.
pub const MAX_MEM_SLOTS: u64 = 509;

/// A region as the frontend describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionDesc {
    pub guest_addr: u64,
    pub size: u64,
    /// The region's address in the frontend's process.
    pub user_addr: u64,
    /// Where the region starts in its fd.
    pub mmap_offset: u64,
}

impl RegionDesc {
    fn describe(&self) -> String {
        format!(
            "region at guest 0x{:x} (0x{:x} bytes, user 0x{:x})",
            self.guest_addr, self.size, self.user_addr
        )
    }
}

/// A region with its fd mapped.
#[derive(Debug, Clone)]
pub struct MappedRegion {
    pub desc: RegionDesc,
    mapping: Arc<SharedMapping>,
}

impl MappedRegion {
    /// Checks `desc` and maps its fd. Runs on the protocol thread, so that a
    /// large mapping never holds up the thread that runs the device.
    pub fn map(desc: RegionDesc, file: &File) -> Result<Self, String> {
        let end_check = |what: &str, start: u64| {
            start
                .checked_add(desc.size)
                .ok_or_else(|| format!("{}: {what} + size overflows", desc.describe()))
        };
        end_check("guest address", desc.guest_addr)?;
        end_check("user address", desc.user_addr)?;
        let mapping = SharedMapping::new(file, desc.mmap_offset, desc.size)
            .map_err(|e| format!("{}: {e}", desc.describe()))?;
        Ok(MappedRegion {
            desc,
            mapping: Arc::new(mapping),
        })
    }

    fn host_region(&self) -> HostRegion {
        let owner: Arc<SharedMapping> = self.mapping.clone();
        // SAFETY: the mapping is `len` bytes long, and the region owns an Arc
        // of it, so it stays mapped as long as the region (and any `GuestMem`
        // holding it) exists.
        unsafe {
            HostRegion::with_owner(
                GuestAddress(self.desc.guest_addr),
                self.mapping.host_ptr(),
                self.mapping.len(),
                owner,
            )
        }
    }

    fn user_range(&self) -> (u64, u64) {
        (self.desc.user_addr, self.desc.user_addr + self.desc.size)
    }
}

/// A validated set of regions and the `GuestMem` over them.
#[derive(Debug, Clone)]
pub struct MemoryTable {
    regions: Vec<MappedRegion>,
    mem: Arc<GuestMem>,
}

impl MemoryTable {
    /// Validates the table: at least one region and at most `MAX_MEM_SLOTS`,
    /// no two overlapping in guest or user addresses, and what `GuestMem`
    /// requires (8-byte alignment, below 2^53).
    pub fn new(mut regions: Vec<MappedRegion>) -> Result<Self, String> {
        if regions.len() as u64 > MAX_MEM_SLOTS {
            return Err(format!(
                "{} regions, more than the {MAX_MEM_SLOTS} supported",
                regions.len()
            ));
        }
        regions.sort_by_key(|r| r.desc.user_addr);
        for pair in regions.windows(2) {
            if pair[0].user_range().1 > pair[1].user_range().0 {
                return Err(format!(
                    "{} and {} overlap in user addresses",
                    pair[0].desc.describe(),
                    pair[1].desc.describe()
                ));
            }
        }
        let mem = GuestMem::new(regions.iter().map(MappedRegion::host_region).collect())
            .map_err(|e| e.to_string())?;
        Ok(MemoryTable {
            regions,
            mem: Arc::new(mem),
        })
    }

    /// This table plus `region` (`ADD_MEM_REG`).
    pub fn with_added(&self, region: MappedRegion) -> Result<Self, String> {
        let mut regions = self.regions.clone();
        regions.push(region);
        MemoryTable::new(regions)
    }

    /// This table without the region matching `desc` in guest address, size
    /// and user address (`REM_MEM_REG`); `None` when it was the last one.
    pub fn without(&self, desc: &RegionDesc) -> Result<Option<Self>, String> {
        let pos = self
            .regions
            .iter()
            .position(|r| {
                r.desc.guest_addr == desc.guest_addr
                    && r.desc.size == desc.size
                    && r.desc.user_addr == desc.user_addr
            })
            .ok_or_else(|| format!("no {} in the memory table", desc.describe()))?;
        let mut regions = self.regions.clone();
        regions.remove(pos);
        if regions.is_empty() {
            return Ok(None);
        }
        MemoryTable::new(regions).map(Some)
    }

    /// The guest memory the device accesses.
    pub fn guest_memory(&self) -> &Arc<GuestMem> {
        &self.mem
    }

    /// The regions, sorted by user address.
    pub fn regions(&self) -> &[MappedRegion] {
        &self.regions
    }

    /// The guest physical address of frontend user address `user`.
    pub fn translate(&self, user: u64) -> Option<u64> {
        self.regions.iter().find_map(|r| {
            let (start, end) = r.user_range();
            (start <= user && user < end).then(|| r.desc.guest_addr + (user - start))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::mmap::tests::memfd;
    use super::*;
    use vm_memory::{Bytes, GuestMemory};

    fn region(f: &File, guest_addr: u64, size: u64, user_addr: u64, off: u64) -> MappedRegion {
        MappedRegion::map(
            RegionDesc {
                guest_addr,
                size,
                user_addr,
                mmap_offset: off,
            },
            f,
        )
        .unwrap()
    }

    #[test]
    fn translates_user_addresses_and_shares_memory() {
        let f = memfd(0x4000);
        let t = MemoryTable::new(vec![
            region(&f, 0x1_0000_0000, 0x2000, 0x7f00_0000_2000, 0x2000),
            region(&f, 0, 0x2000, 0x7f00_0000_0000, 0),
        ])
        .unwrap();
        assert_eq!(t.translate(0x7f00_0000_0010), Some(0x10));
        assert_eq!(t.translate(0x7f00_0000_2010), Some(0x1_0000_0010));
        assert_eq!(t.translate(0x7f00_0000_4000), None);
        let mem = t.guest_memory();
        mem.write_obj(0x1234u16, GuestAddress(0x1_0000_0002))
            .unwrap();
        let view = SharedMapping::new(&f, 0x2000, 0x10).unwrap();
        // SAFETY: within the mapping.
        assert_eq!(
            unsafe { view.host_ptr().add(2).cast::<u16>().read() },
            0x1234
        );
    }

    #[test]
    fn refuses_overlaps_and_finds_regions_to_remove() {
        let f = memfd(0x4000);
        let a = region(&f, 0, 0x2000, 0x10000, 0);
        let err =
            MemoryTable::new(vec![a.clone(), region(&f, 0x1000, 0x1000, 0x20000, 0)]).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
        let err =
            MemoryTable::new(vec![a.clone(), region(&f, 0x8000, 0x1000, 0x11000, 0)]).unwrap_err();
        assert!(err.contains("overlap in user addresses"), "{err}");
        let t = MemoryTable::new(vec![a.clone()]).unwrap();
        let t2 = t
            .with_added(region(&f, 0x2000, 0x1000, 0x12000, 0))
            .unwrap();
        assert_eq!(t2.guest_memory().num_regions(), 2);
        assert!(t2
            .without(&RegionDesc {
                guest_addr: 0x2000,
                size: 0x1001,
                user_addr: 0x12000,
                mmap_offset: 0
            })
            .unwrap_err()
            .contains("no region"));
        let t3 = t2.without(&a.desc).unwrap().unwrap();
        assert_eq!(t3.regions().len(), 1);
        assert!(t3.without(&t3.regions()[0].desc.clone()).unwrap().is_none());
        let huge = RegionDesc {
            guest_addr: u64::MAX - 0x10,
            size: 0x1000,
            user_addr: 0,
            mmap_offset: 0,
        };
        assert!(MappedRegion::map(huge, &f)
            .unwrap_err()
            .contains("overflows"));
    }
}
