//! Why a descriptor chain ended early.
//!
//! virtio-queue 0.14's `DescriptorChain` iterator yields `None` both at the
//! end of a well-formed chain and at any malformed descriptor. A chain is
//! complete when its last descriptor has no NEXT flag; when it is not, this
//! module walks the chain again with the crate's own rules to name the rule
//! that stopped it. The walk only runs for chains that were cut short, and
//! only up to the indirect table, if any: from there it resumes after the
//! last descriptor the crate yielded (`Yielded`), so a long indirect table is
//! not read twice.

use std::mem::size_of;

use virtio_bindings::bindings::virtio_ring::VRING_DESC_ALIGN_SIZE;
use virtio_queue::Descriptor;
use vm_memory::{Bytes, GuestAddress};

use crate::engine::memory::GuestMem;

/// How a popped chain ended. The numeric values cross the Node-API boundary.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStatus {
    /// The last descriptor had no NEXT flag.
    Complete = 0,
    /// A descriptor index (the head or a `next`) is outside the table.
    InvalidDescriptorIndex = 1,
    /// An indirect descriptor inside an indirect table.
    InvalidIndirectDescriptor = 2,
    /// An indirect table whose length is not a multiple of 16 or is too long.
    InvalidIndirectDescriptorTable = 3,
    /// A descriptor could not be read from guest memory.
    GuestMemory = 4,
    /// The buffers' total length overflows 32 bits.
    DescriptorChainOverflow = 5,
    /// More descriptors than the table holds: the chain loops.
    InvalidChain = 6,
    /// The address of a descriptor overflows 64 bits.
    AddressOverflow = 7,
}

/// What the crate's iterator yielded for a chain, as the pop stored it.
#[derive(Debug, Clone, Copy)]
pub struct Yielded {
    /// Descriptors yielded.
    pub count: usize,
    /// The last one's `next` field (meaningful when `count > 0`).
    pub last_next: u16,
    /// Their total length (below 2^32: the crate stops before it overflows).
    pub bytes: u32,
}

/// Walks the chain starting at `head` with the rules of virtio-queue 0.14's
/// `DescriptorChain::next` and reports where it stops. Once it reaches the
/// chain's indirect table it skips to where the crate stopped, from `yielded`.
pub fn diagnose(
    mem: &GuestMem,
    desc_table: GuestAddress,
    queue_size: u16,
    head: u16,
    yielded: Yielded,
) -> ChainStatus {
    let mut table = desc_table;
    let mut table_size = queue_size;
    let mut next = head;
    let mut ttl = queue_size;
    let mut indirect = false;
    let mut total: u32 = 0;
    // Descriptors walked before the indirect table (the crate yielded the same ones).
    let mut direct = 0usize;
    loop {
        if ttl == 0 {
            return ChainStatus::InvalidChain;
        }
        if next >= table_size {
            return ChainStatus::InvalidDescriptorIndex;
        }
        let Some(addr) = table
            .0
            .checked_add(next as u64 * size_of::<Descriptor>() as u64)
        else {
            return ChainStatus::AddressOverflow;
        };
        let Ok(desc) = mem.read_obj::<Descriptor>(GuestAddress(addr)) else {
            return ChainStatus::GuestMemory;
        };
        if desc.refers_to_indirect_table() {
            if indirect {
                return ChainStatus::InvalidIndirectDescriptor;
            }
            if desc.len() & (VRING_DESC_ALIGN_SIZE - 1) != 0
                || desc.len() / VRING_DESC_ALIGN_SIZE > u16::MAX as u32
            {
                return ChainStatus::InvalidIndirectDescriptorTable;
            }
            table = desc.addr();
            table_size = (desc.len() / VRING_DESC_ALIGN_SIZE) as u16;
            ttl = table_size;
            next = 0;
            indirect = true;
            // The crate yielded `count - direct` entries of this table, each with NEXT
            // (the chain is incomplete), so it stopped reading the entry the last one
            // names: resume there with the crate's state.
            if let Some(from_table) = yielded.count.checked_sub(direct).filter(|&n| n > 0) {
                let Ok(n) = u16::try_from(from_table) else {
                    return ChainStatus::InvalidChain;
                };
                if n > ttl {
                    // The guest changed the chain under us: report the crate's verdict.
                    return ChainStatus::InvalidChain;
                }
                ttl -= n;
                next = yielded.last_next;
                total = yielded.bytes;
            }
            continue;
        }
        let Some(t) = total.checked_add(desc.len()) else {
            return ChainStatus::DescriptorChainOverflow;
        };
        total = t;
        if !desc.has_next() {
            return ChainStatus::Complete;
        }
        next = desc.next();
        ttl -= 1;
        if !indirect {
            direct += 1;
        }
    }
}
