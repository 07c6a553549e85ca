//! A shared mapping of one memory region fd sent by the frontend.

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;

/// `len` bytes of a file from `offset`, mapped `MAP_SHARED` read-write (guest
/// RAM: the frontend and the guest see every write). Unmapped when dropped,
/// that is when nothing (no `GuestMem`, no JavaScript view) holds it.
#[derive(Debug)]
pub struct SharedMapping {
    base: *mut libc::c_void,
    map_len: usize,
    /// `base` plus the offset's distance from its page boundary.
    host: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access to guest memory
// goes through vm-memory's volatile accessors (`HostRegion`).
unsafe impl Send for SharedMapping {}
// SAFETY: see `Send` above.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Maps `[offset, offset + len)` of `file`. Only regular files (memfd,
    /// tmpfs, hugetlbfs) are accepted, and the range must lie within the
    /// file's size: touching a page past the end would raise SIGBUS.
    pub fn new(file: &File, offset: u64, len: u64) -> Result<Self, String> {
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat the region's fd: {e}"))?;
        let ft = meta.file_type();
        if !ft.is_file() {
            let kind = if ft.is_socket() {
                "a socket"
            } else if ft.is_fifo() {
                "a pipe"
            } else if ft.is_char_device() || ft.is_block_device() {
                "a device"
            } else if ft.is_dir() {
                "a directory"
            } else {
                "not a regular file (an eventfd or another anonymous inode?)"
            };
            return Err(format!(
                "the region's fd is {kind}; guest memory must be a memfd or a file"
            ));
        }
        if len == 0 {
            return Err("the region is empty".into());
        }
        let end = offset
            .checked_add(len)
            .ok_or_else(|| format!("offset 0x{offset:x} + size 0x{len:x} overflows"))?;
        if end > meta.size() {
            return Err(format!(
                "the region (offset 0x{offset:x}, size 0x{len:x}) goes past the end of its fd ({} bytes)",
                meta.size()
            ));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let delta = offset % page;
        let too_big = || format!("a region of 0x{len:x} bytes cannot be mapped here");
        let len_usize = usize::try_from(len).map_err(|_| too_big())?;
        let map_len = usize::try_from(len + delta).map_err(|_| too_big())?;
        let map_off = libc::off_t::try_from(offset - delta).map_err(|_| too_big())?;
        // SAFETY: a fresh mapping chosen by the kernel; no existing memory is
        // affected. The result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                file.as_raw_fd(),
                map_off,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "mmap of 0x{len:x} bytes at offset 0x{offset:x} failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(SharedMapping {
            base,
            map_len,
            // `delta < page <= map_len`: within the mapping.
            host: (base as *mut u8).wrapping_add(delta as usize),
            len: len_usize,
        })
    }

    /// The host address of the region's first byte.
    pub fn host_ptr(&self) -> *mut u8 {
        self.host
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: `new` refuses an empty region.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are the mapping created in `new`, unmapped
        // only here; nothing can reach it any more (this is its last owner).
        unsafe { libc::munmap(self.base, self.map_len) };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::io::FromRawFd;

    /// A memfd of `len` bytes (sparse).
    pub(crate) fn memfd(len: u64) -> File {
        // SAFETY: a valid NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(c"vhost-user-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: the fd is new and owned by nobody else.
        let f = unsafe { File::from_raw_fd(fd) };
        f.set_len(len).unwrap();
        f
    }

    #[test]
    fn maps_with_an_unaligned_offset_and_shares_writes() {
        let f = memfd(0x3000);
        let m = SharedMapping::new(&f, 0x1008, 0x1000).unwrap();
        // SAFETY: within the mapping.
        unsafe { m.host_ptr().write(0xab) };
        let m2 = SharedMapping::new(&f, 0x1000, 0x10).unwrap();
        // SAFETY: within the mapping.
        assert_eq!(unsafe { m2.host_ptr().add(8).read() }, 0xab);
    }

    #[test]
    fn refuses_ranges_past_the_end_and_wrong_kinds() {
        let f = memfd(0x2000);
        let err = SharedMapping::new(&f, 0x1000, 0x1001).unwrap_err();
        assert!(err.contains("past the end"), "{err}");
        assert!(SharedMapping::new(&f, u64::MAX, 2)
            .unwrap_err()
            .contains("overflows"));
        assert!(SharedMapping::new(&f, 0, 0).unwrap_err().contains("empty"));
        let err = SharedMapping::new(&File::open("/dev/zero").unwrap(), 0, 0x1000).unwrap_err();
        assert!(err.contains("a device"), "{err}");
        let ro = File::open(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap();
        let err = SharedMapping::new(&ro, 0, 0x1000).unwrap_err();
        assert!(err.contains("mmap"), "{err}");
    }
}
