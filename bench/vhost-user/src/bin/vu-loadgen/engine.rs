//! The closed loop of one queue thread: keep `qd` requests in flight, verify each completion,
//! resubmit, sleep on the call eventfd when nothing is left to reap. Each phase starts empty and
//! ends drained.

use std::time::{Duration, Instant};

use vhost_user_bench::blk::{SECTOR, S_OK, T_IN, T_OUT};
use vhost_user_bench::latency::Histogram;
use vhost_user_bench::pattern;

use crate::guest::DriverQueue;

/// How long a backend may leave every request of a queue unanswered before the run fails.
pub const STALL: Duration = Duration::from_secs(10);

/// One request: read or write `len` bytes at disk byte `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Req {
    pub write: bool,
    pub offset: u64,
    pub len: u32,
}

/// When a phase stops issuing.
#[derive(Clone, Copy)]
pub enum Limit {
    Requests(u64),
    Until(Instant),
    /// Until the generator runs out.
    Exhaust,
}

#[derive(Default)]
pub struct Totals {
    pub ops: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub kicks: u64,
    pub waits: u64,
    /// The queue's avail index when the phase ended (every request then served).
    pub avail_idx: u16,
}

/// Runs one phase. Every read's data is checked against `seed`'s pattern, every completion's
/// status and used length; the first failure ends the run with its description.
pub fn run(
    q: &mut DriverQueue,
    qd: u16,
    limit: Limit,
    seed: u64,
    next: &mut dyn FnMut() -> Option<Req>,
    mut hist: Option<&mut Histogram>,
) -> Result<Totals, String> {
    let start = Instant::now();
    let (kicks0, waits0) = (q.kicks, q.waits);
    let mut jobs: Vec<Option<(Req, Instant)>> = vec![None; qd as usize];
    let mut free: Vec<u16> = (0..qd).rev().collect();
    let mut issued = 0u64;
    let mut stop = false;
    let mut t = Totals::default();
    loop {
        if !stop {
            let now = Instant::now();
            while let Some(&slot) = free.last() {
                let more = match limit {
                    Limit::Requests(n) => issued < n,
                    Limit::Until(end) => now < end,
                    Limit::Exhaust => true,
                };
                let Some(r) = more.then(&mut *next).flatten() else {
                    stop = true;
                    break;
                };
                free.pop();
                if r.write {
                    pattern::fill(q.buf(slot, r.len), r.offset, seed);
                }
                q.submit(
                    slot,
                    if r.write { T_OUT } else { T_IN },
                    r.offset / SECTOR,
                    r.len,
                    !r.write,
                );
                jobs[slot as usize] = Some((r, now));
                issued += 1;
            }
            q.publish();
        }
        if free.len() == qd as usize {
            break;
        }
        let mut reaped = false;
        let mut now = None;
        while let Some((slot, len)) = q.reap() {
            let done = *now.get_or_insert_with(Instant::now);
            let Some((r, submitted)) = jobs.get_mut(slot as usize).and_then(Option::take) else {
                return Err(format!(
                    "used entry (slot {slot}, id or length {len}) for no request in flight"
                ));
            };
            verify(q, slot, len, r, seed)?;
            if let Some(h) = hist.as_deref_mut() {
                h.record((done - submitted).as_nanos() as u64);
            }
            t.ops += 1;
            t.bytes += u64::from(r.len);
            free.push(slot);
            reaped = true;
        }
        if reaped || q.arm() {
            continue;
        }
        q.wait(STALL).map_err(|e| {
            format!(
                "waiting for a completion ({} in flight): {e}",
                qd as usize - free.len()
            )
        })?;
    }
    t.elapsed = start.elapsed();
    t.kicks = q.kicks - kicks0;
    t.waits = q.waits - waits0;
    t.avail_idx = q.avail_idx();
    Ok(t)
}

fn verify(q: &DriverQueue, slot: u16, used_len: u32, r: Req, seed: u64) -> Result<(), String> {
    let what = || {
        format!(
            "{} of {} bytes at {:#x}",
            if r.write { "write" } else { "read" },
            r.len,
            r.offset
        )
    };
    let status = q.status(slot);
    if status != S_OK {
        return Err(format!(
            "{}: status {status} (0 is OK; 255: not written)",
            what()
        ));
    }
    let expected = if r.write { 1 } else { r.len + 1 };
    if used_len != expected {
        return Err(format!(
            "{}: used length {used_len}, expected {expected}",
            what()
        ));
    }
    if !r.write {
        pattern::check(q.buf(slot, r.len), r.offset, seed).map_err(|m| {
            format!(
                "{}: data differs at disk offset {:#x}: {:#018x}, expected {:#018x} (that word belongs at {:#x} under this seed)",
                what(),
                m.offset,
                m.found,
                m.expected,
                m.found_was_for
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{GuestMem, Layout};

    fn read_completed(status: Option<u8>, len: u32, corrupt: bool) -> Result<(), String> {
        let mem = GuestMem::new(1 << 20).unwrap();
        let mut q = DriverQueue::new(&mem, Layout::new(0, 16, 2, 4096), true, true).unwrap();
        let r = Req {
            write: false,
            offset: 8192,
            len: 4096,
        };
        q.submit(1, T_IN, r.offset / SECTOR, r.len, true);
        q.publish();
        // The "device" fills the buffer and completes.
        pattern::fill(q.buf(1, 4096), r.offset, 5);
        if corrupt {
            q.buf(1, 4096)[100] ^= 1;
        }
        q.complete_for_test(1, 1, len, status);
        let (slot, used_len) = q.reap().unwrap();
        assert_eq!(slot, 1);
        verify(&q, slot, used_len, r, 5)
    }

    #[test]
    fn a_correct_read_verifies() {
        assert_eq!(read_completed(Some(S_OK), 4097, false), Ok(()));
    }

    #[test]
    fn each_kind_of_wrong_completion_is_an_error() {
        assert!(read_completed(Some(1), 4097, false)
            .unwrap_err()
            .contains("status 1"));
        assert!(read_completed(None, 4097, false)
            .unwrap_err()
            .contains("status 255"));
        assert!(read_completed(Some(S_OK), 4096, false)
            .unwrap_err()
            .contains("used length 4096, expected 4097"));
        assert!(read_completed(Some(S_OK), 4097, true)
            .unwrap_err()
            .contains("data differs at disk offset 0x2060"));
    }
}
