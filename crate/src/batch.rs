//! The batch boundary: many chains popped, or many used entries added, per
//! Node-API call, through caller-provided `Uint32Array`s.
//!
//! Pop layout (all `u32`):
//! ```text
//! [0] chains written   [1] descriptors written   [2] descriptors needed   [3] avail idx seen
//! [4 + 4*i ..]         chain i: head index, first descriptor, descriptor count, ChainStatus
//! [4 + 4*max_chains ..] descriptor j: addr low, addr high, len, flags | next << 16
//! ```
//! `descriptors needed` is non-zero only when the first chain did not fit:
//! the chain is then left in the ring and the caller retries with a larger array.

use std::ops::Deref;

use virtio_queue::{Descriptor, DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::GuestMemory;

use crate::chain_status::{diagnose, ChainStatus};
use crate::error::{Error, Result};
use crate::memory::GuestMem;

pub const HEADER_WORDS: usize = 4;
pub const CHAIN_WORDS: usize = 4;
pub const DESC_WORDS: usize = 4;

/// Where the chain table ends and descriptors begin, for `max_chains` chains.
pub fn desc_base(max_chains: usize) -> usize {
    HEADER_WORDS + CHAIN_WORDS * max_chains
}

/// Pops up to `max_chains` chains from `queue` into `out`; returns the number popped.
pub fn pop_chains(queue: &mut Queue, mem: &GuestMem, out: &mut [u32], max_chains: usize) -> Result<usize> {
    let base = desc_base(max_chains);
    if max_chains == 0 || out.len() < base + DESC_WORDS {
        return Err(Error::range("out", format!("a batch of {max_chains} chains needs more than {base} words")));
    }
    let capacity = (out.len() - base) / DESC_WORDS;
    out[..HEADER_WORDS].fill(0);
    let desc_table = queue.desc_table();
    let size = queue.size();
    // The crate's own checks (ready, avail idx sane) run first, then the
    // avail idx this batch works up to is recorded for the caller.
    drop(queue.iter(mem)?);
    out[3] = queue.avail_idx(mem, std::sync::atomic::Ordering::Acquire)?.0 as u32;
    let mut iter = queue.iter(mem)?;
    let mut chains = 0;
    let mut descs = 0;
    while chains < max_chains {
        let Some(chain) = iter.next() else { break };
        let head = chain.head_index();
        let first = descs;
        match store_chain(chain, out, base, capacity, &mut descs) {
            Ok(complete) => {
                let status = if complete {
                    ChainStatus::Complete
                } else {
                    match diagnose(mem, vm_memory::GuestAddress(desc_table), size, head) {
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

/// Stores the chain's descriptors; `Ok(complete)`, or `Err(total needed)` when they do not fit.
fn store_chain<M>(chain: DescriptorChain<M>, out: &mut [u32], base: usize, capacity: usize, descs: &mut usize) -> std::result::Result<bool, usize>
where
    M: Deref,
    M::Target: GuestMemory,
{
    let first = *descs;
    let mut last: Option<Descriptor> = None;
    let mut count = 0usize;
    for d in chain {
        if first + count < capacity {
            let o = base + (first + count) * DESC_WORDS;
            let addr = d.addr().0;
            out[o] = addr as u32;
            out[o + 1] = (addr >> 32) as u32;
            out[o + 2] = d.len();
            out[o + 3] = d.flags() as u32 | (d.next() as u32) << 16;
        }
        count += 1;
        last = Some(d);
    }
    if first + count > capacity {
        return Err(first + count);
    }
    *descs = first + count;
    Ok(matches!(last, Some(d) if !d.has_next()))
}

/// Adds `count` used entries given as `(head, len)` pairs in `pairs`; stops at
/// the first error, after the entries before it were added.
pub fn add_used(queue: &mut Queue, mem: &GuestMem, pairs: &[u32], count: usize) -> std::result::Result<(), (usize, Error)> {
    if pairs.len() / 2 < count {
        return Err((0, Error::range("count", format!("{count} entries need {} words, the array has {}", count * 2, pairs.len()))));
    }
    for i in 0..count {
        let head = pairs[2 * i];
        let head = u16::try_from(head).map_err(|_| (i, Error::Queue(virtio_queue::Error::InvalidDescriptorIndex)))?;
        queue.add_used(mem, head, pairs[2 * i + 1]).map_err(|e| (i, Error::Queue(e)))?;
    }
    Ok(())
}
