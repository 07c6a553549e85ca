//! The batch boundary: many chains popped, or many used entries added, per
//! Node-API call, through caller-provided `Uint32Array`s.
//!
//! Pop layout (all `u32`):
//! ```text
//! [0] chains written   [1] descriptors written   [2] descriptors needed   [3] avail idx seen
//! [4 + 6*i ..]         chain i: head index, first descriptor, descriptor count, ChainStatus,
//!                      readable bytes, writable bytes
//! [4 + 6*max_chains ..] descriptor j: addr low, addr high, len, flags | next << 16
//! ```
//! The byte totals let readers and writers start without walking the
//! descriptors again: a total is `UNKNOWN_TOTAL` when a buffer of that
//! direction is not in guest memory or the sum does not fit below it (the
//! JavaScript layer then walks the descriptors itself and reports why).
//! `descriptors needed` is non-zero only when the first chain did not fit:
//! the chain is then left in the ring and the caller retries with a larger
//! array. It is `max_chain_descriptors(size)`, room for any chain, not the
//! chain's own length: the walk stops where the array ends, so no chain is
//! walked in full more than once (the totals are summed in the same walk).

use std::ops::Deref;

use virtio_bindings::bindings::virtio_ring::VRING_DESC_F_WRITE;
use virtio_queue::{Descriptor, DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{GuestAddress, GuestMemory};

use crate::engine::chain_status::{diagnose, ChainStatus, Yielded};
use crate::engine::error::{Error, Result};
use crate::engine::memory::GuestMem;

pub const HEADER_WORDS: usize = 4;
pub const CHAIN_WORDS: usize = 6;
/// A chain's readable or writable total when it is not a plain, in-memory sum.
pub const UNKNOWN_TOTAL: u32 = u32::MAX;
pub const DESC_WORDS: usize = 4;

/// The most descriptors virtio-queue 0.14's `DescriptorChain` yields for a queue
/// of `size`: up to `size - 1` direct descriptors, then one indirect table of at
/// most 65535 entries (rounded up to `size + 65535`).
pub fn max_chain_descriptors(size: u16) -> usize {
    usize::from(size) + usize::from(u16::MAX)
}

/// Where the chain table ends and descriptors begin, for `max_chains` chains.
pub fn desc_base(max_chains: usize) -> usize {
    HEADER_WORDS + CHAIN_WORDS * max_chains
}

/// Pops up to `max_chains` chains from `queue` into `out`; returns the number popped.
pub fn pop_chains(
    queue: &mut Queue,
    mem: &GuestMem,
    out: &mut [u32],
    max_chains: usize,
) -> Result<usize> {
    let base = desc_base(max_chains);
    if max_chains == 0 || out.len() < base + DESC_WORDS {
        return Err(Error::range(
            "batch",
            format!("a batch of {max_chains} chains needs more than {base} words"),
        ));
    }
    let capacity = (out.len() - base) / DESC_WORDS;
    out[..HEADER_WORDS].fill(0);
    let desc_table = queue.desc_table();
    let size = queue.size();
    let room_for_any = max_chain_descriptors(size);
    // The crate's own checks (ready, avail idx sane) run first, then the
    // avail idx this batch works up to is recorded for the caller.
    let _ = queue.iter(mem)?;
    out[3] = queue
        .avail_idx(mem, std::sync::atomic::Ordering::Acquire)?
        .0 as u32;
    let mut iter = queue.iter(mem)?;
    let mut chains = 0;
    let mut descs = 0;
    while chains < max_chains {
        let Some(chain) = iter.next() else { break };
        let head = chain.head_index();
        let first = descs;
        match store_chain(chain, mem, out, base, capacity, &mut descs, room_for_any) {
            Ok(Stored {
                complete,
                readable,
                writable,
                bytes,
            }) => {
                let status = if complete {
                    ChainStatus::Complete
                } else {
                    let last_next = if descs > first {
                        (out[base + (descs - 1) * DESC_WORDS + 3] >> 16) as u16
                    } else {
                        0
                    };
                    let yielded = Yielded {
                        count: descs - first,
                        last_next,
                        bytes,
                    };
                    match diagnose(mem, GuestAddress(desc_table), size, head, yielded) {
                        // The guest changed the table under us: report the crate's verdict.
                        ChainStatus::Complete => ChainStatus::InvalidChain,
                        s => s,
                    }
                };
                let c = HEADER_WORDS + CHAIN_WORDS * chains;
                out[c] = head as u32;
                out[c + 1] = first as u32;
                out[c + 2] = (descs - first) as u32;
                out[c + 3] = status as u32;
                out[c + 4] = readable;
                out[c + 5] = writable;
                chains += 1;
            }
            Err(needed) => {
                // Leave the chain in the ring for the next call.
                iter.go_to_previous_position();
                if chains == 0 {
                    out[2] = needed as u32;
                }
                break;
            }
        }
    }
    out[0] = chains as u32;
    out[1] = descs as u32;
    Ok(chains)
}

/// What `store_chain` learnt in its one walk over a chain.
struct Stored {
    /// The last descriptor had no NEXT flag.
    complete: bool,
    /// Byte totals of the readable and writable buffers, each `UNKNOWN_TOTAL`
    /// unless every buffer of its direction is in guest memory (possibly across
    /// adjacent regions) and the sum is below `UNKNOWN_TOTAL`.
    readable: u32,
    writable: u32,
    /// Total length of the chain's descriptors, as the crate summed it.
    bytes: u32,
}

/// Stores the chain's descriptors after the `descs` already stored, summing its
/// byte totals in the same walk; `Err(needed)` as soon as one does not fit, with
/// `needed` the room to retry with (the rest of the chain is not walked).
fn store_chain<M>(
    chain: DescriptorChain<M>,
    mem: &GuestMem,
    out: &mut [u32],
    base: usize,
    capacity: usize,
    descs: &mut usize,
    needed: usize,
) -> std::result::Result<Stored, usize>
where
    M: Deref,
    M::Target: GuestMemory,
{
    let first = *descs;
    let mut last: Option<Descriptor> = None;
    let mut count = 0usize;
    let mut sums = [0u64; 2];
    let mut bytes = 0u32;
    for d in chain {
        if first + count == capacity {
            return Err(needed);
        }
        let o = base + (first + count) * DESC_WORDS;
        let addr = d.addr().0;
        out[o] = addr as u32;
        out[o + 1] = (addr >> 32) as u32;
        out[o + 2] = d.len();
        out[o + 3] = d.flags() as u32 | (d.next() as u32) << 16;
        // The crate yields a descriptor only if the chain's total stays below 2^32.
        bytes = bytes.wrapping_add(d.len());
        let len = d.len() as u64;
        if len != 0 {
            let dir = (d.flags() & VRING_DESC_F_WRITE as u16 != 0) as usize;
            let in_memory = mem.region_range(addr, len).is_some()
                || mem.check_range(GuestAddress(addr), len as usize);
            sums[dir] = if in_memory {
                sums[dir].saturating_add(len)
            } else {
                u64::MAX
            };
        }
        count += 1;
        last = Some(d);
    }
    *descs = first + count;
    let clamp = |s: u64| {
        if s < UNKNOWN_TOTAL as u64 {
            s as u32
        } else {
            UNKNOWN_TOTAL
        }
    };
    Ok(Stored {
        complete: matches!(last, Some(d) if !d.has_next()),
        readable: clamp(sums[0]),
        writable: clamp(sums[1]),
        bytes,
    })
}

/// Adds `count` used entries given as `(head, len)` pairs in `pairs`; stops at
/// the first error (`BatchEntry`, naming the entry), after the entries before it were added.
pub fn add_used(queue: &mut Queue, mem: &GuestMem, pairs: &[u32], count: usize) -> Result<()> {
    if pairs.len() / 2 < count {
        return Err(Error::range(
            "count",
            format!(
                "{count} entries need {} words, the array has {}",
                count * 2,
                pairs.len()
            ),
        ));
    }
    for (index, pair) in pairs.chunks_exact(2).take(count).enumerate() {
        let entry = |source| Error::BatchEntry { index, source };
        let head = u16::try_from(pair[0])
            .map_err(|_| entry(virtio_queue::Error::InvalidDescriptorIndex))?;
        queue.add_used(mem, head, pair[1]).map_err(entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::{HostRegion, NativeAlloc};
    use std::sync::Arc;
    use vm_memory::{Bytes, GuestAddress};

    const DESC: u64 = 0x1000;
    const AVAIL: u64 = 0x2000;
    const USED: u64 = 0x3000;

    fn setup(size: u16) -> (GuestMem, Queue) {
        let a = Arc::new(NativeAlloc::new(0x10000).unwrap());
        // SAFETY: the region owns the allocation through the Arc.
        let r = unsafe { HostRegion::new(GuestAddress(0), a.as_ptr(), 0x10000, Some(a)) };
        let mem = GuestMem::new(vec![r]).unwrap();
        let mut q = Queue::new(size).unwrap();
        q.set_desc_table_address(Some(DESC as u32), None);
        q.set_avail_ring_address(Some(AVAIL as u32), None);
        q.set_used_ring_address(Some(USED as u32), None);
        q.set_ready(true);
        (mem, q)
    }

    fn desc(mem: &GuestMem, table: u64, i: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let at = GuestAddress(table + 16 * i);
        mem.write_obj(addr, at).unwrap();
        mem.write_obj(len, GuestAddress(at.0 + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(at.0 + 12)).unwrap();
        mem.write_obj(next, GuestAddress(at.0 + 14)).unwrap();
    }

    fn publish(mem: &GuestMem, heads: &[u16]) {
        for (i, h) in heads.iter().enumerate() {
            mem.write_obj(*h, GuestAddress(AVAIL + 4 + 2 * i as u64))
                .unwrap();
        }
        mem.write_obj(heads.len() as u16, GuestAddress(AVAIL + 2))
            .unwrap();
    }

    #[test]
    fn pops_complete_and_truncated_chains() {
        let (mem, mut q) = setup(16);
        desc(&mem, DESC, 0, 0x8000, 16, 1, 1); // NEXT
        desc(&mem, DESC, 1, 0x9000, 512, 2, 0); // WRITE, end
        desc(&mem, DESC, 2, 0xa000, 8, 1, 99); // NEXT to an index past the table
        desc(&mem, DESC, 3, 0xb000, 8, 1, 3); // loops on itself
        publish(&mem, &[0, 2, 3]);
        let mut out = vec![0u32; desc_base(8) + 4 * 64];
        assert_eq!(pop_chains(&mut q, &mem, &mut out, 8).unwrap(), 3);
        assert_eq!(&out[..4], &[3, 1 + 2 + 16, 0, 3]);
        let chain =
            |i: usize| &out[HEADER_WORDS + CHAIN_WORDS * i..HEADER_WORDS + CHAIN_WORDS * (i + 1)];
        assert_eq!(chain(0), &[0, 0, 2, ChainStatus::Complete as u32, 16, 512]);
        assert_eq!(
            chain(1),
            &[2, 2, 1, ChainStatus::InvalidDescriptorIndex as u32, 8, 0]
        );
        assert_eq!(
            chain(2),
            &[3, 3, 16, ChainStatus::InvalidChain as u32, 16 * 8, 0]
        );
        let d = desc_base(8) + DESC_WORDS; // second descriptor of the first chain
        assert_eq!(&out[d..d + 4], &[0x9000, 0, 512, 2]);
        assert_eq!(q.next_avail(), 3);
    }

    #[test]
    fn totals_mark_buffers_outside_memory() {
        let (mem, mut q) = setup(16);
        desc(&mem, DESC, 0, 0xfff0, 32, 1, 1); // readable, runs past the end of memory
        desc(&mem, DESC, 1, 0x9000, 0, 3, 2); // empty writable: not checked
        desc(&mem, DESC, 2, 0x9000, 100, 2, 0); // writable, in memory
        desc(&mem, DESC, 3, 0x8000, 16, 1, 4); // readable, in memory
        desc(&mem, DESC, 4, 0xffff, 2, 2, 0); // writable, one byte past the end
        publish(&mem, &[0, 3]);
        let mut out = vec![0u32; desc_base(2) + 8 * DESC_WORDS];
        assert_eq!(pop_chains(&mut q, &mem, &mut out, 2).unwrap(), 2);
        let totals = |i: usize| {
            &out[HEADER_WORDS + CHAIN_WORDS * i + 4..HEADER_WORDS + CHAIN_WORDS * (i + 1)]
        };
        assert_eq!(totals(0), &[UNKNOWN_TOTAL, 100]);
        assert_eq!(totals(1), &[16, UNKNOWN_TOTAL]);
    }

    #[test]
    fn indirect_rules_and_growth() {
        let (mem, mut q) = setup(16);
        desc(&mem, DESC, 0, 0x4000, 48, 4, 0); // indirect table of 3
        for i in 0..3u16 {
            desc(
                &mem,
                0x4000,
                i as u64,
                0x8000 + i as u64,
                1,
                if i < 2 { 1 } else { 2 },
                i + 1,
            );
        }
        desc(&mem, DESC, 1, 0x5000, 40, 4, 0); // length not a multiple of 16
        desc(&mem, DESC, 2, 0x6000, 16, 4, 0); // table holding an indirect descriptor
        desc(&mem, 0x6000, 0, 0x4000, 16, 4, 0);
        publish(&mem, &[0, 1, 2]);
        // Room for 2 descriptors only: the first chain (3) does not fit, and the
        // retry is asked for room for any chain of this queue.
        let mut small = vec![0u32; desc_base(4) + 2 * DESC_WORDS];
        assert_eq!(pop_chains(&mut q, &mem, &mut small, 4).unwrap(), 0);
        assert_eq!(small[2] as usize, max_chain_descriptors(16));
        assert_eq!(q.next_avail(), 0, "the chain stays in the ring");
        let mut out = vec![0u32; desc_base(4) + 16 * DESC_WORDS];
        assert_eq!(pop_chains(&mut q, &mem, &mut out, 4).unwrap(), 3);
        let status = |i: usize| out[HEADER_WORDS + CHAIN_WORDS * i + 3];
        assert_eq!(out[HEADER_WORDS + 2], 3);
        assert_eq!(status(0), ChainStatus::Complete as u32);
        assert_eq!(
            status(1),
            ChainStatus::InvalidIndirectDescriptorTable as u32
        );
        assert_eq!(status(2), ChainStatus::InvalidIndirectDescriptor as u32);
    }

    #[test]
    fn indirect_chains_cut_short_name_their_rule() {
        let (mem, mut q) = setup(16);
        // Head 0: one direct descriptor, then a table of 4 whose third entry names entry 9.
        desc(&mem, DESC, 0, 0x8000, 1, 1, 1);
        desc(&mem, DESC, 1, 0x4000, 64, 4, 0);
        desc(&mem, 0x4000, 0, 0x8000, 2, 1, 1);
        desc(&mem, 0x4000, 1, 0x8000, 2, 1, 2);
        desc(&mem, 0x4000, 2, 0x8000, 2, 1, 9);
        // Head 2: a table of 3 that loops.
        desc(&mem, DESC, 2, 0x5000, 48, 4, 0);
        for i in 0..3u16 {
            desc(&mem, 0x5000, i as u64, 0x8000, 1, 1, (i + 1) % 3);
        }
        // Head 3: a table whose second entry makes the total overflow 32 bits.
        desc(&mem, DESC, 3, 0x6000, 32, 4, 0);
        desc(&mem, 0x6000, 0, 0x8000, 0xffff_fff0, 1, 1);
        desc(&mem, 0x6000, 1, 0x8000, 0x20, 0, 0);
        publish(&mem, &[0, 2, 3]);
        let mut out = vec![0u32; desc_base(4) + 16 * DESC_WORDS];
        assert_eq!(pop_chains(&mut q, &mem, &mut out, 4).unwrap(), 3);
        let chain =
            |i: usize| &out[HEADER_WORDS + CHAIN_WORDS * i..HEADER_WORDS + CHAIN_WORDS * i + 4];
        let bad_index = ChainStatus::InvalidDescriptorIndex as u32;
        assert_eq!(chain(0), &[0, 0, 4, bad_index]);
        assert_eq!(chain(1), &[2, 4, 3, ChainStatus::InvalidChain as u32]);
        let overflow = ChainStatus::DescriptorChainOverflow as u32;
        assert_eq!(chain(2), &[3, 7, 1, overflow]);
    }

    #[test]
    fn queue_errors_and_used_batches() {
        let (mem, mut q) = setup(16);
        let mut out = vec![0u32; desc_base(1) + 4];
        q.set_ready(false);
        assert!(matches!(
            pop_chains(&mut q, &mem, &mut out, 1),
            Err(Error::Queue(virtio_queue::Error::QueueNotReady))
        ));
        q.set_ready(true);
        mem.write_obj(17u16, GuestAddress(AVAIL + 2)).unwrap();
        assert!(matches!(
            pop_chains(&mut q, &mem, &mut out, 1),
            Err(Error::Queue(virtio_queue::Error::InvalidAvailRingIndex))
        ));
        assert!(matches!(
            pop_chains(&mut q, &mem, &mut out[..4], 1),
            Err(Error::ArgRange { .. })
        ));
        let pairs = [1, 100, 2, 200, 16, 300];
        match add_used(&mut q, &mem, &pairs, 3) {
            Err(Error::BatchEntry {
                index: 2,
                source: virtio_queue::Error::InvalidDescriptorIndex,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(q.next_used(), 2);
        assert_eq!(mem.read_obj::<u16>(GuestAddress(USED + 2)).unwrap(), 2);
        assert_eq!(
            mem.read_obj::<u32>(GuestAddress(USED + 4 + 8 + 4)).unwrap(),
            200
        );
    }
}
