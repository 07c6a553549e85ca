//! The native side of `npm run bench`: the same device loop and the same
//! recycling driver as the JavaScript benchmark paths (bench/*.ts), entirely
//! in Rust over the same `virtio_queue::Queue` and the same `GuestMem`, so the
//! JavaScript paths can be compared with the crate used natively in one run.
//!
//! One round is:
//! 1. device: `disable_notification`; pop every available chain with
//!    `pop_descriptor_chain`; for each descriptor of the chain, a readable one
//!    is read into a 16-byte header (`read_slice` of min(len, 16) bytes; its
//!    first byte is added to a checksum), a writable one is filled with the
//!    pattern byte (`write_slice` of len bytes, at most the pattern size); then
//!    `add_used(head, bytes written)`; after the pops, `needs_notification`
//!    (counted as an interrupt when true), then `enable_notification`, which
//!    repeats the round body if it reports more chains (never here: the driver
//!    runs only between rounds).
//! 2. driver: read the used idx (acquire); for every new used element, check
//!    its id is one of the in-flight heads and its len the expected one (else
//!    count it as bad), and re-publish that head in the next avail slot; store
//!    the avail idx (release); with event idx, store `used_event` = the used
//!    idx consumed (interrupts re-enabled); then the kick decision, counted:
//!    `vring_need_event(avail_event, new, old)` with event idx, else the used
//!    ring's flags without `VRING_USED_F_NO_NOTIFY`.
//!
//! The driver keeps no state between calls: everything published is consumed
//! at the end of each round, so its shadows are the two ring indices.

use std::sync::atomic::{fence, Ordering};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use crate::engine::error::{Error, Result};
use crate::engine::memory::GuestMem;

/// Largest number of bytes written to one writable descriptor (the pattern size).
pub const PATTERN_BYTES: usize = 65536;
/// A run gives up (a broken queue) after this many `enable_notification` rechecks.
const MAX_RECHECKS: u32 = 1000;

/// Inputs of a native run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Rounds to run (each: the device serves the ring, the driver refills it).
    pub rounds: u32,
    /// The byte the device writes into writable buffers.
    pub fill: u8,
    /// The used length every chain must come back with.
    pub expect_len: u32,
    /// In-flight heads are `0, stride, 2 * stride, ...`.
    pub stride: u32,
    /// Number of chains in flight.
    pub in_flight: u32,
}

/// What a native run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub chains: u32,
    /// Wrapping sum of the first header byte of every chain with a readable buffer.
    pub check: u32,
    pub interrupts: u32,
    pub kicks: u32,
    /// Used elements with an unexpected id or len.
    pub bad: u32,
    /// Times `enable_notification` reported more chains (the round body ran again).
    pub rechecks: u32,
}

/// One device round over everything available now; see the module docs.
fn device_round(queue: &mut Queue, mem: &GuestMem, pattern: &[u8], s: &mut Stats) -> Result<()> {
    loop {
        queue.disable_notification(mem)?;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let mut written = 0u32;
            for d in chain {
                let len = d.len() as usize;
                if d.is_write_only() {
                    let n = len.min(pattern.len());
                    mem.write_slice(&pattern[..n], d.addr())?;
                    written += n as u32;
                } else if len > 0 {
                    let mut hdr = [0u8; 16];
                    let n = len.min(hdr.len());
                    mem.read_slice(&mut hdr[..n], d.addr())?;
                    s.check = s.check.wrapping_add(hdr[0] as u32);
                }
            }
            queue.add_used(mem, head, written)?;
            s.chains = s.chains.wrapping_add(1);
        }
        if queue.needs_notification(mem)? {
            s.interrupts += 1;
        }
        if !queue.enable_notification(mem)? {
            return Ok(());
        }
        s.rechecks += 1;
        if s.rechecks > MAX_RECHECKS {
            return Err(Error::range(
                "queue",
                "enable_notification keeps reporting chains that cannot be popped",
            ));
        }
    }
}

/// The recycling driver's half of a round; see the module docs.
fn driver_refill(queue: &Queue, mem: &GuestMem, p: &Params, s: &mut Stats) -> Result<()> {
    let size = queue.size();
    let mask = size.wrapping_sub(1);
    let avail = queue.avail_ring();
    let used = queue.used_ring();
    let at = |base: u64, off: u64| GuestAddress(base + off);
    let used_idx: u16 = mem.load(at(used, 2), Ordering::Acquire)?;
    let old: u16 = mem.load(at(avail, 2), Ordering::Relaxed)?;
    // Everything up to the published avail idx was consumed last round, so the
    // first unconsumed used entry is `used_idx - (published - consumed)`; with
    // the driver consuming everything, that is the avail idx minus in flight.
    let mut u = old.wrapping_sub(p.in_flight as u16);
    let mut a = old;
    while u != used_idx {
        let slot = (u & mask) as u64;
        let id: u32 = mem.read_obj(at(used, 4 + 8 * slot))?;
        let len: u32 = mem.read_obj(at(used, 8 + 8 * slot))?;
        if len != p.expect_len || id % p.stride != 0 || id >= p.stride * p.in_flight {
            s.bad += 1;
        }
        mem.write_obj(id as u16, at(avail, 4 + 2 * (a & mask) as u64))?;
        a = a.wrapping_add(1);
        u = u.wrapping_add(1);
    }
    mem.store(a, at(avail, 2), Ordering::Release)?;
    if queue.event_idx_enabled() {
        mem.store(u, at(avail, 4 + 2 * size as u64), Ordering::Release)?;
    }
    // The spec's full barrier between publishing and reading the device's suppression state.
    fence(Ordering::SeqCst);
    let kick = if queue.event_idx_enabled() {
        let avail_event: u16 = mem.load(at(used, 4 + 8 * size as u64), Ordering::Relaxed)?;
        a.wrapping_sub(avail_event).wrapping_sub(1) < a.wrapping_sub(old)
    } else {
        let flags: u16 = mem.load(at(used, 0), Ordering::Relaxed)?;
        flags & 1 == 0
    };
    if kick {
        s.kicks += 1;
    }
    Ok(())
}

/// Runs `p.rounds` rounds of device work and driver refill on `queue`.
pub fn run(queue: &mut Queue, mem: &GuestMem, p: &Params) -> Result<Stats> {
    if p.stride == 0 || p.in_flight == 0 || p.in_flight > queue.size() as u32 {
        return Err(Error::range(
            "io",
            "stride and chains in flight must be at least 1, in flight at most the queue size",
        ));
    }
    let pattern = vec![p.fill; PATTERN_BYTES];
    let mut s = Stats::default();
    for _ in 0..p.rounds {
        device_round(queue, mem, &pattern, &mut s)?;
        driver_refill(queue, mem, p, &mut s)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::{HostRegion, NativeAlloc};
    use std::sync::Arc;
    use virtio_queue::QueueOwnedT;

    const SIZE: u16 = 256;
    const DESC: u64 = 0x10000;
    const AVAIL: u64 = DESC + 16 * SIZE as u64;
    const USED: u64 = 0x12000;
    const DATA: u64 = 0x20000;

    fn memory() -> GuestMem {
        let a = Arc::new(NativeAlloc::new(0x100000).unwrap());
        // SAFETY: the region owns the allocation through the Arc.
        GuestMem::new(vec![unsafe {
            HostRegion::new(GuestAddress(0), a.as_ptr(), 0x100000, Some(a))
        }])
        .unwrap()
    }

    fn desc(mem: &GuestMem, i: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let at = DESC + 16 * i;
        mem.write_obj(addr, GuestAddress(at)).unwrap();
        mem.write_obj(len, GuestAddress(at + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
        mem.write_obj(next, GuestAddress(at + 14)).unwrap();
    }

    /// The `blk` workload: 128 chains of a 16-byte header and a 512-byte writable buffer.
    fn blk(event_idx: bool) -> (GuestMem, Queue) {
        let mem = memory();
        for k in 0..128u64 {
            let hdr = DATA + 1024 * k;
            mem.write_obj(k as u8 + 1, GuestAddress(hdr)).unwrap();
            desc(&mem, 2 * k, hdr, 16, 1, 2 * k as u16 + 1);
            desc(&mem, 2 * k + 1, hdr + 512, 512, 2, 0);
            mem.write_obj(2 * k as u16, GuestAddress(AVAIL + 4 + 2 * k))
                .unwrap();
        }
        mem.write_obj(128u16, GuestAddress(AVAIL + 2)).unwrap();
        let mut q = Queue::new(SIZE).unwrap();
        q.try_set_desc_table_address(GuestAddress(DESC)).unwrap();
        q.try_set_avail_ring_address(GuestAddress(AVAIL)).unwrap();
        q.try_set_used_ring_address(GuestAddress(USED)).unwrap();
        q.set_event_idx(event_idx);
        q.set_ready(true);
        (mem, q)
    }

    #[test]
    fn rounds_recycle_every_chain() {
        for event_idx in [false, true] {
            let (mem, mut q) = blk(event_idx);
            let p = Params {
                rounds: 1000,
                fill: 0x5a,
                expect_len: 512,
                stride: 2,
                in_flight: 128,
            };
            let s = run(&mut q, &mem, &p).unwrap();
            // 128000 chains wrap the u16 ring indices.
            assert_eq!(s.chains, 128_000);
            assert_eq!(s.check, 1000 * (1..=128).sum::<u32>());
            assert_eq!(
                (s.interrupts, s.kicks, s.bad, s.rechecks),
                (1000, 1000, 0, 0)
            );
            let mut data = [0u8; 512];
            mem.read_slice(&mut data, GuestAddress(DATA + 1024 * 77 + 512))
                .unwrap();
            assert!(data.iter().all(|&b| b == 0x5a));
            assert_eq!(q.next_used(), (128_000u32 % 65536) as u16);
            // Everything in flight is available again.
            assert_eq!(q.iter(&mem).unwrap().count(), 128);
        }
    }

    #[test]
    fn unexpected_lengths_are_counted() {
        let (mem, mut q) = blk(false);
        let p = Params {
            rounds: 2,
            fill: 1,
            expect_len: 511,
            stride: 2,
            in_flight: 128,
        };
        assert_eq!(run(&mut q, &mem, &p).unwrap().bad, 256);
        let p = Params { in_flight: 0, ..p };
        assert!(run(&mut q, &mem, &p).is_err());
    }
}
