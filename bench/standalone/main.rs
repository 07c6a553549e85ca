//! `standalone <rounds> [event-idx: 0|1]`: runs `engine::bench::run` over the
//! `blk` workload (128 chains of a 16-byte readable header and a 512-byte
//! writable buffer, a 256-entry queue) for `rounds` rounds and prints its stats.
//! The engine is the addon's own source (`crate/src/engine`), compiled into
//! this executable; bench/codegen.sh counts its instructions under callgrind
//! beside the addon's.

// The engine's modules the benchmark loop does not use are compiled too.
#![allow(dead_code, unused_imports)]

#[path = "../../crate/src/engine/mod.rs"]
mod engine;

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use engine::bench::{run, Params};
use engine::memory::{GuestMem, HostRegion, NativeAlloc};

const SIZE: u16 = 256;
const CHAINS: u64 = 128;
const DESC: u64 = 0x10000;
const AVAIL: u64 = DESC + 16 * SIZE as u64;
const USED: u64 = 0x12000;
const DATA: u64 = 0x20000;
const MEM: usize = 0x100000;

fn setup(event_idx: bool) -> (GuestMem, Queue) {
    let a = Arc::new(NativeAlloc::new(MEM).expect("allocation"));
    // SAFETY: the region keeps the allocation alive through the Arc.
    let region = unsafe { HostRegion::new(GuestAddress(0), a.as_ptr(), MEM, Some(a)) };
    let mem = GuestMem::new(vec![region]).expect("guest memory");
    let w = |v: u64, at: u64, size: usize| {
        let r = match size {
            1 => mem.write_obj(v as u8, GuestAddress(at)),
            2 => mem.write_obj(v as u16, GuestAddress(at)),
            4 => mem.write_obj(v as u32, GuestAddress(at)),
            _ => mem.write_obj(v, GuestAddress(at)),
        };
        r.expect("setup write");
    };
    for k in 0..CHAINS {
        let hdr = DATA + 1024 * k;
        w(k + 1, hdr, 1);
        for (i, (addr, len, flags, next)) in [(hdr, 16, 1, 2 * k + 1), (hdr + 512, 512, 2, 0)]
            .into_iter()
            .enumerate()
        {
            let at = DESC + 16 * (2 * k + i as u64);
            w(addr, at, 8);
            w(len, at + 8, 4);
            w(flags, at + 12, 2);
            w(next, at + 14, 2);
        }
        w(2 * k, AVAIL + 4 + 2 * k, 2);
    }
    w(CHAINS, AVAIL + 2, 2);
    let mut q = Queue::new(SIZE).expect("queue");
    q.try_set_desc_table_address(GuestAddress(DESC)).unwrap();
    q.try_set_avail_ring_address(GuestAddress(AVAIL)).unwrap();
    q.try_set_used_ring_address(GuestAddress(USED)).unwrap();
    q.set_event_idx(event_idx);
    q.set_ready(true);
    (mem, q)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let event_idx = args.next().as_deref() == Some("1");
    let (mem, mut q) = setup(event_idx);
    let p = Params {
        rounds,
        fill: 0x4e,
        expect_len: 512,
        stride: 2,
        in_flight: CHAINS as u32,
    };
    let s = run(&mut q, &mem, &p).expect("benchmark run");
    assert_eq!(s.chains, rounds * CHAINS as u32);
    assert_eq!((s.bad, s.rechecks), (0, 0));
    println!("{s:?}");
}
