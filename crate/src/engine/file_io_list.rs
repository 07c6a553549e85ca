//! An ordered list of file operations on guest memory (`preadv`, `pwritev`,
//! `fdatasync`), resolved when queued and run later, in order, on whatever
//! thread holds the list: the engine of `FileIoBatch`, whose runs go to
//! libuv's threadpool (Linux).
//!
//! Queueing resolves a transfer's every buffer against `GuestMem` with
//! `file_io::resolve_span` (nothing of the chain's words is read later), so a
//! run touches only the list: host pieces, file descriptors and positions.
//! Each operation's outcome is its own: a failed one does not stop the next.

use super::file_io::{self, Direction, FileIoError, Piece, Span};
use super::memory::GuestMem;

/// The outcome of an operation that did not run (the run was cancelled, or
/// panicked before reaching it): `-ECANCELED`.
pub const NOT_RUN: i64 = -(libc::ECANCELED as i64);

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Transfer(Direction),
    Datasync,
}

#[derive(Debug)]
struct Op {
    kind: Kind,
    fd: i32,
    position: u64,
    /// The operation's pieces: `pieces[first..first + count]`.
    first: usize,
    count: usize,
}

/// The operations, their pieces, and the outcomes of the last run.
#[derive(Debug, Default)]
pub struct FileIoList {
    ops: Vec<Op>,
    pieces: Vec<Piece>,
    /// Per operation of the last run: bytes moved, or `-errno`.
    results: Vec<i64>,
}

// SAFETY: the list is plain data (the pieces are pointers into guest memory,
// never dereferenced by Rust, only handed to the kernel by `run`). Moving it
// to another thread is sound; using the pointers there is `run`'s contract:
// the memory must stay mapped meanwhile, which the list's owner ensures.
unsafe impl Send for FileIoList {}

impl FileIoList {
    pub fn new() -> Self {
        FileIoList::default()
    }

    /// Operations queued.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Queues a `preadv` (`FromFile`) or `pwritev` (`ToFile`) of `span` over
    /// `words`, every buffer checked against `mem` now; returns its index. On
    /// an error nothing is queued.
    pub fn push_transfer(
        &mut self,
        mem: &GuestMem,
        words: &[u32],
        span: Span,
        fd: i32,
        position: u64,
        direction: Direction,
    ) -> Result<usize, FileIoError> {
        let first = self.pieces.len();
        if let Err(e) = file_io::resolve_span(mem, words, span, &mut self.pieces) {
            self.pieces.truncate(first);
            return Err(e);
        }
        self.ops.push(Op {
            kind: Kind::Transfer(direction),
            fd,
            position,
            first,
            count: self.pieces.len() - first,
        });
        Ok(self.ops.len() - 1)
    }

    /// Queues an `fdatasync(fd)`; returns its index.
    pub fn push_datasync(&mut self, fd: i32) -> usize {
        self.ops.push(Op {
            kind: Kind::Datasync,
            fd,
            position: 0,
            first: self.pieces.len(),
            count: 0,
        });
        self.ops.len() - 1
    }

    /// Runs every operation in order, recording each outcome (`result`). The
    /// pieces are used up: a list runs once, then is cleared.
    ///
    /// # Safety
    /// Every guest memory a transfer was queued against must still be mapped
    /// (its `GuestMem` and the backing stores of its regions alive, none
    /// shrunk) until this returns.
    pub unsafe fn run(&mut self) {
        self.results.clear();
        self.results.resize(self.ops.len(), NOT_RUN);
        for (k, op) in self.ops.iter().enumerate() {
            self.results[k] = match op.kind {
                Kind::Transfer(direction) => {
                    let pieces = &mut self.pieces[op.first..op.first + op.count];
                    // SAFETY: the pieces were resolved by `push_transfer` against memory
                    // that is still mapped (this function's contract).
                    match unsafe {
                        file_io::transfer_resolved(pieces, op.fd, op.position, direction)
                    } {
                        Ok(n) => n as i64,
                        Err(FileIoError::Os(errno)) => -i64::from(errno),
                        // Only resolution fails otherwise, and that was done when queueing.
                        Err(_) => -i64::from(libc::EINVAL),
                    }
                }
                Kind::Datasync => datasync(op.fd),
            };
        }
    }

    /// Operation `k`'s outcome in the last run: bytes moved, or `-errno`
    /// (`NOT_RUN` if it did not run).
    pub fn result(&self, k: usize) -> i64 {
        self.results.get(k).copied().unwrap_or(NOT_RUN)
    }

    /// Forgets the operations and the outcomes; keeps the allocations.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.pieces.clear();
        self.results.clear();
    }
}

/// `fdatasync(fd)`, `EINTR` retried: 0 or `-errno`.
fn datasync(fd: i32) -> i64 {
    loop {
        // SAFETY: a plain system call on a number; a bad fd is the kernel's EBADF.
        if unsafe { libc::fdatasync(fd) } == 0 {
            return 0;
        }
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if errno != libc::EINTR {
            return -i64::from(errno);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{guest_memory, unlinked_file};
    use std::os::fd::AsRawFd;
    use vm_memory::{Bytes, GuestAddress};

    fn memory() -> GuestMem {
        guest_memory(&[(0, 0x2000)])
    }

    fn span(len: u64, write: bool) -> Span {
        Span {
            at: 0,
            offset: 0,
            end: 4,
            dir: if write { 2 } else { 0 },
            len,
        }
    }

    fn tempfile(name: &str) -> std::fs::File {
        unlinked_file(&std::env::temp_dir(), &format!("list-{name}")).unwrap()
    }

    #[test]
    fn runs_in_order_on_another_thread_each_outcome_its_own() {
        let mem = memory();
        mem.write_slice(&[0xab; 16], GuestAddress(0x100)).unwrap();
        let f = tempfile("order");
        let fd = f.as_raw_fd();
        let out = [0x100u32, 0, 16, 0]; // readable: 16 bytes at 0x100
        let into = [0x800u32, 0, 32, 2]; // writable: 32 bytes at 0x800
        let mut list = FileIoList::new();
        assert_eq!(
            list.push_transfer(&mem, &out, span(16, false), fd, 4, Direction::ToFile),
            Ok(0)
        );
        assert_eq!(list.push_datasync(fd), 1);
        assert_eq!(list.push_datasync(-1), 2);
        // Reads what the first operation wrote: 4 zero bytes, 16 of 0xab, then the end.
        assert_eq!(
            list.push_transfer(&mem, &into, span(32, true), fd, 0, Direction::FromFile),
            Ok(3)
        );
        assert_eq!(
            list.push_transfer(&mem, &into, span(8, true), -1, 0, Direction::FromFile),
            Ok(4)
        );
        // A span outside guest memory is refused when queued, and queues nothing.
        let outside = [0x1ff0u32, 0, 32, 2];
        assert!(matches!(
            list.push_transfer(&mem, &outside, span(32, true), fd, 0, Direction::FromFile),
            Err(FileIoError::NotInMemory { .. })
        ));
        assert_eq!(list.len(), 5);
        let list = std::thread::spawn(move || {
            // SAFETY: `mem` stays alive (on this test's thread) until the thread is joined.
            unsafe { list.run() };
            list
        })
        .join()
        .unwrap();
        let outcomes: Vec<i64> = (0..6).map(|k| list.result(k)).collect();
        assert_eq!(
            outcomes,
            [
                16,
                0,
                -i64::from(libc::EBADF),
                20,
                -i64::from(libc::EBADF),
                NOT_RUN
            ]
        );
        let mut got = [0u8; 20];
        mem.read_slice(&mut got, GuestAddress(0x800)).unwrap();
        assert_eq!(&got[..4], &[0; 4]);
        assert_eq!(&got[4..], &[0xab; 16]);
    }
}
