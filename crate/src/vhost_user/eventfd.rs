//! The eventfds a frontend hands over for a vring (kick, call, err).
//!
//! A received eventfd shares its open file description with the frontend, and
//! with it the `O_NONBLOCK` flag: the frontend (or another backend, such as
//! qemu-storage-daemon, that had the same fd) may have set or cleared it. This
//! code never changes that flag and never assumes it: a read happens only when
//! the counter is known to be non-zero, and a write that would overflow the
//! counter means the peer already has a pending signal.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Mutex;

/// An eventfd received from the frontend, checked to be one.
#[derive(Debug)]
pub struct VringFd {
    file: File,
}

impl VringFd {
    /// Takes `file` if it is an eventfd; the error says what it is instead.
    pub fn new(file: File) -> Result<Self, String> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| format!("cannot inspect the fd: {e}"))?;
        if link.as_os_str() != "anon_inode:[eventfd]" {
            return Err(format!(
                "the fd is not an eventfd (it is {})",
                link.display()
            ));
        }
        Ok(VringFd { file })
    }

    /// Adds 1 to the counter (a kick or an interrupt for the peer).
    pub fn signal(&self) -> io::Result<()> {
        loop {
            match (&self.file).write(&1u64.to_ne_bytes()) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A non-blocking eventfd whose counter is full: the peer has
                // a signal pending already.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads and resets the counter, or returns `None` at once when it is
    /// zero, whatever the fd's blocking mode (one `poll` before the read).
    pub fn drain(&self) -> io::Result<Option<u64>> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd, a zero timeout.
            let n = unsafe { libc::poll(&mut pfd, 1, 0) };
            if n >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if pfd.revents & libc::POLLIN == 0 {
            return Ok(None);
        }
        self.drain_ready().map(Some)
    }

    /// Reads and resets the counter. Call it only when the fd polled readable
    /// (libuv's `uv_poll` said so): only this backend reads a kick eventfd, so
    /// the counter is still non-zero and the read cannot block even when the
    /// frontend left the fd in blocking mode.
    pub fn drain_ready(&self) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        loop {
            match (&self.file).read(&mut buf) {
                Ok(8) => return Ok(u64::from_ne_bytes(buf)),
                Ok(n) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("eventfd read returned {n} bytes"),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsRawFd for VringFd {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// A vring's call eventfd slot. The frontend may replace the fd at any time
/// (`SET_VRING_CALL` while the ring runs), so the device holds this slot, not
/// the fd.
#[derive(Debug, Default)]
pub struct Notifier {
    fd: Mutex<Option<VringFd>>,
}

impl Notifier {
    /// Signals the frontend (a used-buffer interrupt). Returns false when the
    /// frontend gave no call fd.
    pub fn signal(&self) -> io::Result<bool> {
        match &*self.lock() {
            Some(fd) => fd.signal().map(|()| true),
            None => Ok(false),
        }
    }

    /// Whether a call fd is set.
    pub fn is_set(&self) -> bool {
        self.lock().is_some()
    }

    pub(crate) fn replace(&self, fd: Option<VringFd>) {
        *self.lock() = fd;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<VringFd>> {
        // No code panics while holding the lock; a poisoned lock still holds a
        // consistent `Option`.
        self.fd.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::io::FromRawFd;

    pub(crate) fn eventfd(flags: i32) -> File {
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, flags) };
        assert!(fd >= 0);
        // SAFETY: the fd is new and owned by nobody else.
        unsafe { File::from_raw_fd(fd) }
    }

    #[test]
    fn only_eventfds_are_accepted() {
        assert!(VringFd::new(eventfd(0)).is_ok());
        let err = VringFd::new(File::open("/dev/null").unwrap()).unwrap_err();
        assert!(err.contains("not an eventfd (it is /dev/null)"), "{err}");
    }

    #[test]
    fn drain_never_blocks_in_either_mode() {
        for flags in [0, libc::EFD_NONBLOCK] {
            let fd = VringFd::new(eventfd(flags)).unwrap();
            assert_eq!(fd.drain().unwrap(), None);
            fd.signal().unwrap();
            fd.signal().unwrap();
            assert_eq!(fd.drain().unwrap(), Some(2));
            assert_eq!(fd.drain().unwrap(), None);
        }
    }

    #[test]
    fn a_full_nonblocking_counter_is_a_pending_signal() {
        let file = eventfd(libc::EFD_NONBLOCK);
        (&file).write_all(&(u64::MAX - 1).to_ne_bytes()).unwrap();
        let fd = VringFd::new(file).unwrap();
        fd.signal().unwrap();
        assert_eq!(fd.drain().unwrap(), Some(u64::MAX - 1));
    }

    #[test]
    fn notifier_signals_the_current_fd() {
        let n = Notifier::default();
        assert!(!n.signal().unwrap());
        let file = eventfd(0);
        let peer = VringFd::new(file.try_clone().unwrap()).unwrap();
        n.replace(Some(VringFd::new(file).unwrap()));
        assert!(n.signal().unwrap());
        assert_eq!(peer.drain().unwrap(), Some(1));
        n.replace(None);
        assert!(!n.is_set());
    }
}
