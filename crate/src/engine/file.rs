//! Deallocating and zeroing byte ranges of an open file with fallocate(2)
//! (Linux): what a block device does for DISCARD and WRITE_ZEROES. Node's
//! `fs` has no fallocate.
//!
//! - `Op::PunchHole`: `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`. The range
//!   reads as zeros and its blocks are freed; a file system that cannot punch
//!   holes answers `EOPNOTSUPP`, reported as such (the caller decides what to
//!   do instead).
//! - `Op::ZeroRange`: `FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE`, which
//!   leaves the range allocated and reading as zeros. Where the file system
//!   answers `EOPNOTSUPP` (tmpfs, for one), the hole is punched and the range
//!   allocated again (`fallocate(KEEP_SIZE)`), as QEMU's file driver does; if
//!   punching is not supported either, zeros are written. If the range can be
//!   punched but not allocated again, it stays a hole. The result says which.
//!
//! Calls interrupted by a signal (`EINTR`) are retried; every other errno is
//! returned with the step that failed.

use std::os::raw::c_int;

/// What to do with the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    PunchHole,
    ZeroRange,
}

/// How the range was made to read as zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Deallocated (`PUNCH_HOLE`).
    PunchHole = 0,
    /// Zeroed in place, still allocated (`ZERO_RANGE`).
    ZeroRange = 1,
    /// Punched, then allocated again (the `ZERO_RANGE` fallback).
    PunchHoleAllocate = 2,
    /// Zeros written with pwrite(2) (the last fallback).
    WriteZeros = 3,
}

/// The system call (and fallocate mode) that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// fallocate(PUNCH_HOLE | KEEP_SIZE)
    PunchHole = 0,
    /// fallocate(ZERO_RANGE | KEEP_SIZE)
    ZeroRange = 1,
    /// fallocate(KEEP_SIZE), allocating a punched range again
    Allocate = 2,
    /// pwrite(2) of zeros
    Write = 3,
}

/// A failed step and its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub errno: i32,
    pub step: Step,
}

/// The largest offset + length: file offsets are `off_t`, signed 64-bit.
pub const MAX_END: u64 = i64::MAX as u64;

/// Bytes per pwrite(2) of the last fallback.
const ZERO_CHUNK: usize = 1 << 20;

/// Runs `op` on `length` bytes at `offset` of `fd`. The caller has checked
/// `length >= 1` and `offset + length <= MAX_END`; anything else is refused
/// with `EINVAL` without a system call.
pub fn fallocate(fd: i32, op: Op, offset: u64, length: u64) -> Result<Method, Failure> {
    if length == 0 || offset.checked_add(length).is_none_or(|end| end > MAX_END) {
        let step = match op {
            Op::PunchHole => Step::PunchHole,
            Op::ZeroRange => Step::ZeroRange,
        };
        return Err(Failure {
            errno: libc::EINVAL,
            step,
        });
    }
    let (off, len) = (offset as i64, length as i64);
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    match op {
        Op::PunchHole => call(fd, punch, off, len, Step::PunchHole).map(|()| Method::PunchHole),
        Op::ZeroRange => {
            let zero = libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE;
            match call(fd, zero, off, len, Step::ZeroRange) {
                Err(f) if f.errno == libc::EOPNOTSUPP => {}
                other => return other.map(|()| Method::ZeroRange),
            }
            match call(fd, punch, off, len, Step::PunchHole) {
                Ok(()) => match call(fd, libc::FALLOC_FL_KEEP_SIZE, off, len, Step::Allocate) {
                    Ok(()) => Ok(Method::PunchHoleAllocate),
                    Err(f) if f.errno == libc::EOPNOTSUPP => Ok(Method::PunchHole),
                    Err(f) => Err(f),
                },
                Err(f) if f.errno == libc::EOPNOTSUPP => {
                    write_zeros(fd, offset, length).map(|()| Method::WriteZeros)
                }
                Err(f) => Err(f),
            }
        }
    }
}

/// One fallocate(2), retried on EINTR.
fn call(fd: i32, mode: c_int, offset: i64, length: i64, step: Step) -> Result<(), Failure> {
    loop {
        // SAFETY: fallocate reads no memory of ours; a bad fd is an error return.
        if unsafe { libc::fallocate(fd, mode, offset, length) } == 0 {
            return Ok(());
        }
        let errno = last_errno();
        if errno != libc::EINTR {
            return Err(Failure { errno, step });
        }
    }
}

/// pwrite(2)s of zeros over the range, retried on EINTR and after short writes.
/// An fd open with `O_APPEND` is refused with `EBADF` before any write: Linux's
/// pwrite ignores the offset there and appends, so the zeros would grow the file
/// and leave the range as it was (fallocate(2) has no such mode).
fn write_zeros(fd: i32, offset: u64, length: u64) -> Result<(), Failure> {
    // SAFETY: F_GETFL reads no memory of ours; a bad fd is an error return, which
    // the first pwrite below reports.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags >= 0 && flags & libc::O_APPEND != 0 {
        return Err(Failure {
            errno: libc::EBADF,
            step: Step::Write,
        });
    }
    let zeros = vec![0u8; ZERO_CHUNK.min(length as usize)];
    let (mut at, end) = (offset, offset + length);
    while at < end {
        let n = zeros.len().min((end - at) as usize);
        // SAFETY: `zeros` holds at least `n` bytes; `at` is below MAX_END, so it fits off_t.
        let written = unsafe { libc::pwrite(fd, zeros.as_ptr().cast(), n, at as i64) };
        if written < 0 {
            let errno = last_errno();
            if errno == libc::EINTR {
                continue;
            }
            return Err(Failure {
                errno,
                step: Step::Write,
            });
        }
        if written == 0 {
            // A regular file never takes 0 of n > 0 bytes; do not spin if something does.
            return Err(Failure {
                errno: libc::EIO,
                step: Step::Write,
            });
        }
        at += written as u64;
    }
    Ok(())
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::unlinked_file;
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    fn file_in(dir: &str, bytes: usize) -> Option<File> {
        let mut f = unlinked_file(Path::new(dir), &format!("file-{bytes}")).ok()?;
        f.write_all(&vec![0x5a; bytes]).unwrap();
        f.sync_all().unwrap();
        Some(f)
    }

    fn read_all(f: &mut File) -> Vec<u8> {
        let mut out = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn punch_hole_frees_blocks_and_reads_zeros() {
        let mut f = file_in(&std::env::temp_dir().to_string_lossy(), 1 << 20).unwrap();
        let before = f.metadata().unwrap().blocks();
        assert_eq!(
            fallocate(f.as_raw_fd(), Op::PunchHole, 4096, 512 * 1024),
            Ok(Method::PunchHole)
        );
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), 1 << 20, "KEEP_SIZE");
        assert!(
            meta.blocks() + 1000 <= before,
            "{before} -> {}",
            meta.blocks()
        );
        let data = read_all(&mut f);
        assert!(data[..4096].iter().all(|&b| b == 0x5a));
        assert!(data[4096..4096 + 512 * 1024].iter().all(|&b| b == 0));
        assert!(data[4096 + 512 * 1024..].iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn zero_range_on_tmpfs_punches_and_allocates_again() {
        // tmpfs has no ZERO_RANGE: the fallback runs and stays allocated.
        let Some(mut f) = file_in("/dev/shm", 64 * 1024) else {
            return; // no /dev/shm on this machine
        };
        let before = f.metadata().unwrap().blocks();
        assert_eq!(
            fallocate(f.as_raw_fd(), Op::ZeroRange, 8192, 16384),
            Ok(Method::PunchHoleAllocate)
        );
        assert_eq!(f.metadata().unwrap().blocks(), before, "allocated again");
        let data = read_all(&mut f);
        assert!(data[8192..8192 + 16384].iter().all(|&b| b == 0));
        assert!(data[..8192].iter().all(|&b| b == 0x5a));
        assert!(data[8192 + 16384..].iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn errors_carry_errno_and_step() {
        let bad = Failure {
            errno: libc::EBADF,
            step: Step::PunchHole,
        };
        assert_eq!(fallocate(-1, Op::PunchHole, 0, 4096), Err(bad));
        let f = file_in(&std::env::temp_dir().to_string_lossy(), 4096).unwrap();
        let fd = f.as_raw_fd();
        for (offset, length) in [(0, 0), (MAX_END, 1), (1, MAX_END), (u64::MAX, 2)] {
            assert_eq!(
                fallocate(fd, Op::ZeroRange, offset, length),
                Err(Failure {
                    errno: libc::EINVAL,
                    step: Step::ZeroRange
                }),
                "{offset} + {length}"
            );
        }
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert_eq!(
            fallocate(fds[1], Op::PunchHole, 0, 1).map_err(|f| f.errno),
            Err(libc::ESPIPE)
        );
        // SAFETY: closing the pipe this test opened.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
