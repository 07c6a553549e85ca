//! The guest side: memory in a memfd shared with the backend, and a split virtqueue driven the
//! way a guest driver drives it (descriptors, avail ring, used ring, event idx both ways).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{fence, AtomicU16, Ordering};
use std::time::Duration;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Guest memory: one region at guest address 0, backed by a memfd mapped shared.
pub struct GuestMem {
    ptr: *mut u8,
    len: usize,
    file: File,
}

// SAFETY: the mapping lives as long as the value; every access to it goes through raw pointers
// to parts that one queue thread owns (its ring and slots), with atomics where the backend
// writes concurrently.
unsafe impl Send for GuestMem {}
// SAFETY: as above.
unsafe impl Sync for GuestMem {}

impl GuestMem {
    pub fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a valid NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(c"vu-loadgen".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(len as u64)?;
        // SAFETY: a fresh shared mapping of the whole file; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(GuestMem {
            ptr: ptr.cast(),
            len,
            file,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// The frontend's (our) virtual address of guest address `gpa`.
    pub fn hva(&self, gpa: u64) -> u64 {
        self.ptr as u64 + gpa
    }

    fn at(&self, gpa: u64, len: usize) -> *mut u8 {
        assert!(
            gpa as usize + len <= self.len,
            "guest address {gpa:#x}+{len} outside memory"
        );
        // SAFETY: in bounds, checked above.
        unsafe { self.ptr.add(gpa as usize) }
    }
}

impl Drop for GuestMem {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new(), unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
/// Per slot: an indirect table of 3 descriptors, the request header, the status byte.
const SLOT_BYTES: u64 = 128;
const SLOT_HEADER: u64 = 64;
const SLOT_STATUS: u64 = 96;

fn align(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Where one queue's parts lie in guest memory.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub size: u16,
    pub slots: u16,
    pub buf_len: u32,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    slot_area: u64,
    buf_area: u64,
    pub end: u64,
}

impl Layout {
    pub fn new(base: u64, size: u16, slots: u16, buf_len: u32) -> Layout {
        let n = u64::from(size);
        let desc = base;
        let avail = desc + 16 * n;
        let used = align(avail + 6 + 2 * n, 4096);
        let slot_area = align(used + 6 + 8 * n, 4096);
        let buf_area = align(slot_area + SLOT_BYTES * u64::from(slots), 4096);
        let end = buf_area + u64::from(buf_len) * u64::from(slots);
        Layout {
            size,
            slots,
            buf_len,
            desc,
            avail,
            used,
            slot_area,
            buf_area,
            end,
        }
    }
}

/// One split virtqueue, driven from one thread.
pub struct DriverQueue<'m> {
    mem: &'m GuestMem,
    l: Layout,
    indirect: bool,
    event_idx: bool,
    pub kick: EventFd,
    pub call: EventFd,
    /// The avail index written so far, and the one the backend last saw published.
    next_avail: u16,
    published: u16,
    last_used: u16,
    pub kicks: u64,
    pub waits: u64,
}

impl<'m> DriverQueue<'m> {
    /// A queue over `l`; without indirect descriptors each request takes 3 ring descriptors.
    pub fn new(mem: &'m GuestMem, l: Layout, indirect: bool, event_idx: bool) -> io::Result<Self> {
        assert!(indirect || u32::from(l.slots) * 3 <= u32::from(l.size));
        assert!(l.end as usize <= mem.len());
        // A fresh ring: zeroed (the memfd starts zeroed, but a sweep reuses memory).
        // SAFETY: in bounds (asserted above); the backend does not know this ring yet.
        unsafe { std::ptr::write_bytes(mem.at(l.desc, 0), 0, (l.slot_area - l.desc) as usize) };
        Ok(DriverQueue {
            mem,
            l,
            indirect,
            event_idx,
            kick: EventFd::new(EFD_NONBLOCK)?,
            call: EventFd::new(EFD_NONBLOCK)?,
            next_avail: 0,
            published: 0,
            last_used: 0,
            kicks: 0,
            waits: 0,
        })
    }

    pub fn layout(&self) -> Layout {
        self.l
    }

    /// The avail index published so far (what GET_VRING_BASE must return once all is served).
    pub fn avail_idx(&self) -> u16 {
        self.published
    }

    fn u16_at(&self, gpa: u64) -> &AtomicU16 {
        // SAFETY: in bounds, 2-aligned (every ring field is); the backend accesses it too, so
        // only atomically.
        unsafe { &*(self.mem.at(gpa, 2) as *const AtomicU16) }
    }

    fn write_desc(&self, gpa: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        // SAFETY: in bounds; the descriptor is not visible to the backend until published.
        unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), self.mem.at(gpa, 16), 16) };
    }

    /// The data buffer of `slot` (only while the slot is not in flight).
    #[allow(clippy::mut_from_ref)]
    pub fn buf(&self, slot: u16, len: u32) -> &mut [u8] {
        assert!(slot < self.l.slots && len <= self.l.buf_len);
        let gpa = self.l.buf_area + u64::from(slot) * u64::from(self.l.buf_len);
        // SAFETY: in bounds; the slot is owned by this thread and not in flight, so neither the
        // backend nor another reference touches it.
        unsafe { std::slice::from_raw_parts_mut(self.mem.at(gpa, len as usize), len as usize) }
    }

    pub fn status(&self, slot: u16) -> u8 {
        let gpa = self.l.slot_area + u64::from(slot) * SLOT_BYTES + SLOT_STATUS;
        // SAFETY: in bounds; read after the used entry was seen (acquire), volatile because
        // the backend wrote it.
        unsafe { std::ptr::read_volatile(self.mem.at(gpa, 1)) }
    }

    /// Writes request `slot` (header, data buffer of `len` bytes, status) and puts it on the
    /// avail ring; it reaches the backend at the next `publish`.
    pub fn submit(
        &mut self,
        slot: u16,
        kind: u32,
        sector: u64,
        len: u32,
        device_writes_data: bool,
    ) {
        let s = self.l.slot_area + u64::from(slot) * SLOT_BYTES;
        let h = vhost_user_bench::blk::header(kind, sector);
        // SAFETY: in bounds; the slot is not in flight.
        unsafe {
            std::ptr::copy_nonoverlapping(h.as_ptr(), self.mem.at(s + SLOT_HEADER, 16), 16);
            std::ptr::write_volatile(self.mem.at(s + SLOT_STATUS, 1), 0xff);
        }
        let buf = self.l.buf_area + u64::from(slot) * u64::from(self.l.buf_len);
        let data_flags = if device_writes_data { DESC_F_WRITE } else { 0 };
        let head = if self.indirect {
            let t = s;
            self.write_desc(t, s + SLOT_HEADER, 16, DESC_F_NEXT, 1);
            self.write_desc(t + 16, buf, len, data_flags | DESC_F_NEXT, 2);
            self.write_desc(t + 32, s + SLOT_STATUS, 1, DESC_F_WRITE, 0);
            self.write_desc(
                self.l.desc + 16 * u64::from(slot),
                t,
                48,
                DESC_F_INDIRECT,
                0,
            );
            slot
        } else {
            let d = 3 * slot;
            let at = |i: u16| self.l.desc + 16 * u64::from(i);
            self.write_desc(at(d), s + SLOT_HEADER, 16, DESC_F_NEXT, d + 1);
            self.write_desc(at(d + 1), buf, len, data_flags | DESC_F_NEXT, d + 2);
            self.write_desc(at(d + 2), s + SLOT_STATUS, 1, DESC_F_WRITE, 0);
            d
        };
        let e = self.l.avail + 4 + 2 * u64::from(self.next_avail % self.l.size);
        self.u16_at(e).store(head, Ordering::Relaxed);
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    /// Publishes the submitted requests and kicks, unless event idx says the backend asked
    /// not to be kicked for these (its avail_event lies outside the published range).
    pub fn publish(&mut self) {
        if self.next_avail == self.published {
            return;
        }
        let old = self.published;
        self.published = self.next_avail;
        self.u16_at(self.l.avail + 2)
            .store(self.published, Ordering::Release);
        // The index store must be visible before we read the backend's avail_event (or flags).
        fence(Ordering::SeqCst);
        let kick = if self.event_idx {
            let avail_event = self
                .u16_at(self.l.used + 4 + 8 * u64::from(self.l.size))
                .load(Ordering::Relaxed);
            // vring_need_event: the backend wants a kick once avail idx passes avail_event.
            self.published.wrapping_sub(avail_event).wrapping_sub(1)
                < self.published.wrapping_sub(old)
        } else {
            // VRING_USED_F_NO_NOTIFY.
            self.u16_at(self.l.used).load(Ordering::Relaxed) & 1 == 0
        };
        if kick {
            self.kicks += 1;
            // A failed write means the counter is about to overflow: a kick is pending anyway.
            let _ = self.kick.write(1);
        }
    }

    /// The next used entry (slot, used length), if the backend returned one.
    pub fn reap(&mut self) -> Option<(u16, u32)> {
        let used_idx = self.u16_at(self.l.used + 2).load(Ordering::Acquire);
        if used_idx == self.last_used {
            return None;
        }
        let e = self.l.used + 4 + 8 * u64::from(self.last_used % self.l.size);
        let mut b = [0u8; 8];
        // SAFETY: in bounds; the entry was published before used idx (acquire above).
        unsafe { std::ptr::copy_nonoverlapping(self.mem.at(e, 8), b.as_mut_ptr(), 8) };
        self.last_used = self.last_used.wrapping_add(1);
        let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let slot = if self.indirect { id } else { id / 3 };
        if slot >= u32::from(self.l.slots) || (!self.indirect && id % 3 != 0) {
            return Some((u16::MAX, id));
        }
        Some((slot as u16, len))
    }

    /// Before sleeping: tells the backend which completion should interrupt us (used_event =
    /// the next used index we will look at), then checks whether one arrived meanwhile.
    pub fn arm(&mut self) -> bool {
        if self.event_idx {
            self.u16_at(self.l.avail + 4 + 2 * u64::from(self.l.size))
                .store(self.last_used, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        self.u16_at(self.l.used + 2).load(Ordering::Acquire) != self.last_used
    }

    /// Sleeps until the call eventfd is signalled (poll first: the backend may have made the
    /// shared file description non-blocking, and so did we).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let mut p = libc::pollfd {
            fd: self.call.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no completion"));
            }
            break;
        }
        self.waits += 1;
        match self.call.read() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
impl DriverQueue<'_> {
    /// Plays the device for a test: writes `status` for `slot` and a used entry (`id`, `len`).
    pub fn complete_for_test(&mut self, slot: u16, id: u32, len: u32, status: Option<u8>) {
        if let Some(st) = status {
            let gpa = self.l.slot_area + u64::from(slot) * SLOT_BYTES + SLOT_STATUS;
            // SAFETY: in bounds; no backend in a test.
            unsafe { std::ptr::write_volatile(self.mem.at(gpa, 1), st) };
        }
        let idx = self.u16_at(self.l.used + 2).load(Ordering::Relaxed);
        let e = self.l.used + 4 + 8 * u64::from(idx % self.l.size);
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&id.to_le_bytes());
        b[4..8].copy_from_slice(&len.to_le_bytes());
        // SAFETY: in bounds; no backend in a test.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.mem.at(e, 8), 8) };
        self.u16_at(self.l.used + 2)
            .store(idx.wrapping_add(1), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kicks_follow_avail_event() {
        let mem = GuestMem::new(1 << 20).unwrap();
        let mut q = DriverQueue::new(&mem, Layout::new(0, 16, 4, 4096), true, true).unwrap();
        let avail_event = q.l.used + 4 + 8 * 16;
        // avail_event 0: the backend wants a kick when index 0 is published.
        q.submit(0, 0, 0, 512, true);
        q.publish();
        assert_eq!(q.kicks, 1);
        // Still 0 (the backend has not caught up): publishing 1 needs no kick.
        q.submit(1, 0, 0, 512, true);
        q.publish();
        assert_eq!(q.kicks, 1);
        // The backend asks for a kick at index 2.
        q.u16_at(avail_event).store(2, Ordering::Relaxed);
        q.submit(2, 0, 0, 512, true);
        q.publish();
        assert_eq!(q.kicks, 2);
        assert_eq!(q.kick.read().unwrap(), 2);
    }

    #[test]
    fn arm_publishes_used_event_and_sees_late_completions() {
        let mem = GuestMem::new(1 << 20).unwrap();
        let mut q = DriverQueue::new(&mem, Layout::new(0, 16, 4, 4096), true, true).unwrap();
        q.submit(0, 0, 0, 512, true);
        q.publish();
        assert!(!q.arm());
        q.complete_for_test(0, 0, 513, Some(0));
        assert!(q.arm());
        assert_eq!(q.reap(), Some((0, 513)));
        assert!(!q.arm());
        let used_event = q.l.avail + 4 + 2 * 16;
        assert_eq!(q.u16_at(used_event).load(Ordering::Relaxed), 1);
        // An id that names no slot is reported as such.
        q.complete_for_test(0, 9, 1, None);
        assert_eq!(q.reap(), Some((u16::MAX, 9)));
        assert_eq!(
            q.wait(Duration::from_millis(1)).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[test]
    fn layout_parts_do_not_overlap() {
        let l = Layout::new(8192, 256, 128, 4096);
        assert_eq!(l.desc, 8192);
        assert!(l.avail >= l.desc + 16 * 256);
        assert!(l.used >= l.avail + 6 + 512 && l.used % 4096 == 0);
        assert!(l.slot_area >= l.used + 6 + 8 * 256);
        assert!(l.buf_area >= l.slot_area + 128 * 128 && l.buf_area % 4096 == 0);
        assert_eq!(l.end, l.buf_area + 128 * 4096);
    }
}
