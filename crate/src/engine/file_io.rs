//! Positional vectored I/O between a file descriptor and a chain's buffers:
//! `preadv`/`pwritev` straight on guest memory, for a `Writer` filling the
//! chain from a file or a `Reader` draining it into one.
//!
//! The chain's position comes from JavaScript as a cursor over the batch's
//! descriptor words (`batch`'s layout). Nothing of it is trusted: every
//! descriptor's range is resolved against `GuestMem` here (a buffer may span
//! adjacent regions), and a range outside guest memory is refused before
//! any byte moves. All the iovecs are built before the first system call, so
//! nothing the call writes (the words could be guest memory) is read after it.
//! Linux only (elsewhere the addon has no `chainFileIo`).
//!
//! `resolve_span` and `transfer_resolved` split the same work in two, for a
//! transfer resolved now and run later on another thread (`file_io_list`).

use vm_memory::{GuestAddress, GuestMemory, GuestMemoryRegion};

use crate::engine::batch::DESC_WORDS;
use crate::engine::memory::GuestMem;

/// Where in a chain the transfer starts, and how much it moves.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    /// Word index of the current descriptor.
    pub at: usize,
    /// Bytes of that descriptor already used.
    pub offset: u32,
    /// Word index past the chain's last descriptor.
    pub end: usize,
    /// The WRITE flag of the descriptors to use (0: the readable ones).
    pub dir: u32,
    /// Bytes to move.
    pub len: u64,
}

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `preadv`: the file's bytes into the chain's buffers.
    FromFile,
    /// `pwritev`: the chain's buffers into the file.
    ToFile,
}

/// Why a transfer did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum FileIoError {
    /// The span does not fit the words, or names more bytes than its descriptors hold.
    BadSpan(&'static str),
    /// Descriptor `index` (counted from the chain's first) is not in guest memory.
    NotInMemory { index: usize, addr: u64, len: u32 },
    /// The system call failed with this errno before moving any byte.
    Os(i32),
}

/// One piece of guest memory, laid out as the kernel's `struct iovec`. Only
/// this module makes them, from ranges `GuestMem` resolved.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Piece {
    base: *mut u8,
    len: usize,
}

/// Pieces kept on the stack; a chain with more goes to the heap once.
const INLINE_PIECES: usize = 16;

/// The pieces of a transfer, in order.
struct Pieces {
    inline: [Piece; INLINE_PIECES],
    count: usize,
    spill: Vec<Piece>,
}

/// Where resolved pieces go.
trait Sink {
    fn push(&mut self, p: Piece);
}

impl Sink for Vec<Piece> {
    fn push(&mut self, p: Piece) {
        Vec::push(self, p)
    }
}

impl Sink for Pieces {
    #[inline]
    fn push(&mut self, p: Piece) {
        Pieces::push(self, p)
    }
}

impl Pieces {
    fn new() -> Self {
        Pieces {
            inline: [Piece {
                base: std::ptr::null_mut(),
                len: 0,
            }; INLINE_PIECES],
            count: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, p: Piece) {
        if self.count < INLINE_PIECES {
            self.inline[self.count] = p;
            self.count += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(p);
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Piece] {
        if self.spill.is_empty() {
            &mut self.inline[..self.count]
        } else {
            &mut self.spill
        }
    }
}

/// Resolves `[addr, addr + len)` into host pieces (adjacent regions may hold it).
fn resolve(mem: &GuestMem, addr: u64, len: u64, out: &mut impl Sink) -> bool {
    let mut done = 0u64;
    while done < len {
        let Some(a) = addr.checked_add(done) else {
            return false;
        };
        let Some(r) = mem.find_region(GuestAddress(a)) else {
            return false;
        };
        let off = a - r.start_addr().0;
        let n = (len - done).min(r.len() - off);
        out.push(Piece {
            // SAFETY: `off < r.len()` (find_region), so the pointer stays in the region.
            base: unsafe { r.host_ptr().add(off as usize) },
            len: n as usize,
        });
        done += n;
    }
    true
}

/// The host pieces of `span` over `words`, all in guest memory.
fn pieces(
    mem: &GuestMem,
    words: &[u32],
    span: Span,
    out: &mut impl Sink,
) -> Result<(), FileIoError> {
    if span.end > words.len() || span.at > span.end || (span.end - span.at) % DESC_WORDS != 0 {
        return Err(FileIoError::BadSpan(
            "the cursor is not within the descriptor words",
        ));
    }
    let mut left = span.len;
    let mut skip = u64::from(span.offset);
    let mut at = span.at;
    let mut index = 0;
    while left > 0 {
        if at >= span.end {
            return Err(FileIoError::BadSpan(
                "the chain holds fewer bytes than asked for",
            ));
        }
        let addr = u64::from(words[at]) | u64::from(words[at + 1]) << 32;
        let len = words[at + 2];
        let flags = words[at + 3] & 0xffff;
        let used = (flags & 2) == span.dir && len > 0;
        if used {
            if skip > u64::from(len) {
                return Err(FileIoError::BadSpan(
                    "the cursor's offset is past its descriptor",
                ));
            }
            let n = left.min(u64::from(len) - skip);
            if n > 0 {
                let start = addr.checked_add(skip);
                if !start.is_some_and(|s| resolve(mem, s, n, out)) {
                    return Err(FileIoError::NotInMemory { index, addr, len });
                }
                left -= n;
            }
        }
        skip = 0;
        at += DESC_WORDS;
        index += 1;
    }
    Ok(())
}

/// Moves `span.len` bytes between `fd` at `position` and the chain's buffers;
/// returns the bytes moved: all of them, or fewer when a read reaches the end
/// of the file. `EINTR` is retried; any other error after some bytes moved
/// ends the transfer with what moved (the next call reports it).
pub fn transfer(
    mem: &GuestMem,
    words: &[u32],
    span: Span,
    fd: i32,
    position: u64,
    direction: Direction,
) -> Result<u64, FileIoError> {
    let mut out = Pieces::new();
    pieces(mem, words, span, &mut out)?;
    sys::transfer(out.as_mut_slice(), fd, position, direction)
}

/// Appends the host pieces of `span` over `words` to `out`, every one checked
/// against `mem` (on failure, `out` may hold some of them: the caller drops
/// them). They stay valid while `mem`'s regions stay mapped: see
/// `transfer_resolved`.
pub fn resolve_span(
    mem: &GuestMem,
    words: &[u32],
    span: Span,
    out: &mut Vec<Piece>,
) -> Result<(), FileIoError> {
    pieces(mem, words, span, out)
}

/// `transfer` over pieces `resolve_span` made earlier (the pieces are used
/// up: trimmed as the calls move bytes).
///
/// # Safety
/// The guest memory the pieces were resolved against must still be mapped:
/// its `GuestMem` (and whatever keeps its regions' backing stores alive)
/// must live until this returns.
pub unsafe fn transfer_resolved(
    pieces: &mut [Piece],
    fd: i32,
    position: u64,
    direction: Direction,
) -> Result<u64, FileIoError> {
    sys::transfer(pieces, fd, position, direction)
}

mod sys {
    use super::{Direction, FileIoError, Piece};

    /// The kernel's limit on iovecs per call (`UIO_MAXIOV`).
    const IOV_MAX: usize = 1024;

    // `Piece` is passed to the kernel as a `struct iovec`.
    const _: () = assert!(
        std::mem::size_of::<Piece>() == std::mem::size_of::<libc::iovec>()
            && std::mem::align_of::<Piece>() == std::mem::align_of::<libc::iovec>()
    );

    pub fn transfer(
        iovs: &mut [Piece],
        fd: i32,
        position: u64,
        direction: Direction,
    ) -> Result<u64, FileIoError> {
        let mut first = 0;
        let mut done = 0u64;
        while first < iovs.len() {
            let batch = &iovs[first..(first + IOV_MAX).min(iovs.len())];
            let Ok(offset) = libc::off_t::try_from(position + done) else {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(FileIoError::Os(libc::EINVAL))
                };
            };
            let iov = batch.as_ptr().cast::<libc::iovec>();
            // SAFETY: `Piece` has `struct iovec`'s layout (checked above); every piece
            // points into guest memory resolved by `GuestMem`, whose regions stay mapped
            // while the caller holds the memory (the call holds it); the count is at
            // most IOV_MAX and the slice's length.
            let r = unsafe {
                match direction {
                    Direction::FromFile => libc::preadv(fd, iov, batch.len() as i32, offset),
                    Direction::ToFile => libc::pwritev(fd, iov, batch.len() as i32, offset),
                }
            };
            if r < 0 {
                let errno = std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO);
                if errno == libc::EINTR {
                    continue;
                }
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(FileIoError::Os(errno))
                };
            }
            if r == 0 {
                // End of file (a read), or a write that moved nothing: stop here.
                return Ok(done);
            }
            let mut moved = r as usize;
            done += moved as u64;
            // Drop the pieces the call filled; trim the one it filled in part.
            while moved > 0 {
                let v = &mut iovs[first];
                if moved >= v.len {
                    moved -= v.len;
                    first += 1;
                } else {
                    // SAFETY: `moved < len`: the pointer stays in the same piece.
                    v.base = unsafe { v.base.add(moved) };
                    v.len -= moved;
                    moved = 0;
                }
            }
            while first < iovs.len() && iovs[first].len == 0 {
                first += 1;
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{guest_memory as memory, unlinked_file};
    use std::io::{Seek, Write};
    use std::os::fd::AsRawFd;

    fn desc(addr: u64, len: u32, write: bool) -> [u32; 4] {
        [
            addr as u32,
            (addr >> 32) as u32,
            len,
            if write { 2 } else { 0 },
        ]
    }

    fn file(bytes: &[u8]) -> std::fs::File {
        let mut f = unlinked_file(&std::env::temp_dir(), "file-io").unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        f
    }

    #[test]
    fn reads_across_descriptors_and_regions_skipping_the_other_direction() {
        let mem = memory(&[(0, 0x1000), (0x1000, 0x1000)]);
        let data: Vec<u8> = (0..64u8).collect();
        let f = file(&data);
        // readable header, then writable 8 bytes at 0xff8 (spans the regions), then 16 more.
        let words: Vec<u32> = [
            desc(0x100, 16, false),
            desc(0xff8, 16, true),
            desc(0x200, 16, true),
        ]
        .concat();
        let span = Span {
            at: 4,
            offset: 4,
            end: words.len(),
            dir: 2,
            len: 28,
        };
        let n = transfer(&mem, &words, span, f.as_raw_fd(), 8, Direction::FromFile).unwrap();
        assert_eq!(n, 28);
        let mut got = vec![0u8; 28];
        vm_memory::Bytes::read_slice(&mem, &mut got[..12], GuestAddress(0xffc)).unwrap();
        vm_memory::Bytes::read_slice(&mem, &mut got[12..], GuestAddress(0x200)).unwrap();
        assert_eq!(got, data[8..36]);
        // From the chain's start: the readable descriptor is skipped.
        let span = Span {
            at: 0,
            offset: 0,
            end: words.len(),
            dir: 2,
            len: 32,
        };
        assert_eq!(
            transfer(&mem, &words, span, f.as_raw_fd(), 0, Direction::FromFile),
            Ok(32)
        );
        let mut got = vec![0u8; 16];
        vm_memory::Bytes::read_slice(&mem, &mut got, GuestAddress(0xff8)).unwrap();
        assert_eq!(got, data[..16]);
    }

    #[test]
    fn stops_at_end_of_file_and_refuses_memory_outside_guest_memory() {
        let mem = memory(&[(0, 0x1000)]);
        let f = file(&[7u8; 10]);
        let words: Vec<u32> = desc(0, 64, true).to_vec();
        let span = Span {
            at: 0,
            offset: 0,
            end: 4,
            dir: 2,
            len: 64,
        };
        assert_eq!(
            transfer(&mem, &words, span, f.as_raw_fd(), 0, Direction::FromFile),
            Ok(10)
        );
        let outside: Vec<u32> = desc(0xff0, 64, true).to_vec();
        assert!(matches!(
            transfer(&mem, &outside, span, f.as_raw_fd(), 0, Direction::FromFile),
            Err(FileIoError::NotInMemory { index: 0, .. })
        ));
        let wrapping: Vec<u32> = desc(u64::MAX - 4, 64, true).to_vec();
        assert!(matches!(
            transfer(&mem, &wrapping, span, f.as_raw_fd(), 0, Direction::FromFile),
            Err(FileIoError::NotInMemory { .. })
        ));
        assert_eq!(
            transfer(
                &mem,
                &words,
                Span { len: 65, ..span },
                f.as_raw_fd(),
                0,
                Direction::FromFile
            ),
            Err(FileIoError::BadSpan(
                "the chain holds fewer bytes than asked for"
            ))
        );
        assert!(matches!(
            transfer(
                &mem,
                &words,
                Span { end: 8, ..span },
                f.as_raw_fd(),
                0,
                Direction::FromFile
            ),
            Err(FileIoError::BadSpan(_))
        ));
        assert_eq!(
            transfer(&mem, &words, span, -1, 0, Direction::FromFile),
            Err(FileIoError::Os(libc::EBADF))
        );
    }

    #[test]
    fn more_pieces_than_iov_max_go_in_several_calls_and_stop_at_end_of_file() {
        // 2100 descriptors of 3 bytes: three preadv/pwritev calls of at most 1024 pieces.
        let mem = memory(&[(0, 0x10000)]);
        let mut words = Vec::new();
        for i in 0..2100u64 {
            words.extend_from_slice(&desc(i * 16, 3, true));
        }
        let span = Span {
            at: 0,
            offset: 1,
            end: words.len(),
            dir: 2,
            len: 6299,
        };
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let f = file(&data);
        // The file ends in the second call's pieces: 5000 bytes, then a call that reads 0.
        assert_eq!(
            transfer(&mem, &words, span, f.as_raw_fd(), 0, Direction::FromFile),
            Ok(5000)
        );
        let mut got = Vec::new();
        let mut piece = [0u8; 3];
        for i in 0..2100u64 {
            vm_memory::Bytes::read_slice(&mem, &mut piece, GuestAddress(i * 16)).unwrap();
            got.extend_from_slice(if i == 0 { &piece[1..] } else { &piece });
        }
        assert_eq!(&got[..5000], &data[..]);
        assert!(
            got[5000..].iter().all(|&b| b == 0),
            "nothing past the end of the file"
        );
        // And back out: all 6299 bytes in three calls, at position 7.
        let out = unlinked_file(&std::env::temp_dir(), "file-io").unwrap();
        assert_eq!(
            transfer(&mem, &words, span, out.as_raw_fd(), 7, Direction::ToFile),
            Ok(6299)
        );
        let mut back = vec![0u8; 6299];
        std::os::unix::fs::FileExt::read_exact_at(&out, &mut back, 7).unwrap();
        assert_eq!(back, got);
    }

    #[test]
    fn writes_many_pieces() {
        let mem = memory(&[(0, 0x10000)]);
        let f = unlinked_file(&std::env::temp_dir(), "file-io").unwrap();
        let mut words = Vec::new();
        for i in 0..100u64 {
            vm_memory::Bytes::write_slice(&mem, &[i as u8; 3], GuestAddress(i * 16)).unwrap();
            words.extend_from_slice(&desc(i * 16, 3, false));
        }
        let span = Span {
            at: 0,
            offset: 0,
            end: words.len(),
            dir: 0,
            len: 300,
        };
        assert_eq!(
            transfer(&mem, &words, span, f.as_raw_fd(), 5, Direction::ToFile),
            Ok(300)
        );
        let mut back = vec![0u8; 305];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut back, 0).unwrap();
        assert_eq!(back[5], 0);
        assert_eq!(back[5 + 3 * 99], 99);
    }
}
