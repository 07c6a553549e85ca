//! `chainFileIo`: positional vectored I/O between a file descriptor and a
//! chain's buffers (`Writer.readFromFile`, `Reader.writeToFile`), over
//! `engine::file_io` (Linux only).

use super::state::memory::MemoryHandle;
use super::Ctx;
use crate::engine::file_io::{self, Direction, FileIoError, Span};
use crate::engine::{Error, Result};
use crate::napi::Value;

/// Numbers of the span: `[at, offset, end, dir, length, toFile]`.
pub const SPAN_WORDS: usize = 6;

/// File positions are integers below 2^53 (exact JavaScript numbers).
pub const POSITION_MAX: u64 = (1 << 53) - 1;

/// `chainFileIo(memory, words, fd, position[, span: Uint32Array(6)]) -> bytes moved`,
/// or `-errno` when the system call failed before moving a byte (the TypeScript
/// layer names the errno). The span is the cursor (`at`, `offset`, `end`: word
/// indices into `words` and bytes used of the current descriptor), the WRITE
/// flag of the descriptors to use, the bytes to move, and 1 to write into the
/// file (`pwritev`) or 0 to read from it (`preadv`): in the call area's first
/// six slots (called once per request: no typed-array argument to inspect), or,
/// where the call area is not available, in `span`. Every descriptor's range is
/// checked against guest memory here, whatever the words say.
pub fn chain_file_io(ctx: &Ctx) -> Result<Value> {
    let (span, direction) = span_arg(ctx, 4)?;
    let memory = ctx.external_arg::<MemoryHandle>(0, "memory")?;
    // SAFETY: the only typed-array argument alive from here on, taken once.
    let words: &[u32] = unsafe { ctx.u32_slice_arg(1, "words")? };
    let fd = ctx.uint_arg(2, "fd", i32::MAX as u64)? as i32;
    let position = ctx.uint_arg(3, "position", POSITION_MAX)?;
    // Fails with DetachedBuffer when a backing ArrayBuffer no longer holds its region.
    let mem = memory.0.get()?;
    match file_io::transfer(mem, words, span, fd, position, direction) {
        Ok(n) => Ok(ctx.number(n as f64)?),
        Err(FileIoError::Os(errno)) => Ok(ctx.number(-f64::from(errno))?),
        Err(e) => Err(resolve_error(e)),
    }
}

/// The span of a transfer, `[at, offset, end, dir, length, toFile]`: from the
/// call area's first six slots when argument `arg` is `undefined` (no
/// typed-array argument to inspect), else from that argument, a Uint32Array.
/// Call it before taking any other typed-array argument.
pub fn span_arg(ctx: &Ctx, arg: usize) -> Result<(Span, Direction)> {
    let s = if ctx.is_nullish_arg(arg)? {
        let args = ctx.state().call_area.take();
        let mut s = [0u32; SPAN_WORDS];
        for (i, name) in ["at", "offset", "end", "dir", "length", "toFile"]
            .into_iter()
            .enumerate()
        {
            s[i] = args.uint(i, name, u32::MAX as u64)? as u32;
        }
        s
    } else {
        // SAFETY: `span` is released (copied out) before the caller takes `words`, so
        // the two slices are never alive together even if they are the same array.
        let span = unsafe { ctx.u32_slice_arg(arg, "span")? };
        span.get(..SPAN_WORDS)
            .and_then(|s| <[u32; SPAN_WORDS]>::try_from(s).ok())
            .ok_or_else(|| Error::range("span", format!("expected {SPAN_WORDS} words")))?
    };
    let span = Span {
        at: s[0] as usize,
        offset: s[1],
        end: s[2] as usize,
        dir: s[3],
        len: u64::from(s[4]),
    };
    let direction = if s[5] != 0 {
        Direction::ToFile
    } else {
        Direction::FromFile
    };
    Ok((span, direction))
}

/// The error of a span that did not resolve (a system call's errno is the caller's).
pub fn resolve_error(e: FileIoError) -> Error {
    match e {
        FileIoError::BadSpan(reason) => Error::range("span", reason),
        FileIoError::NotInMemory { index, addr, len } => Error::NotInMemory(format!(
            "descriptor {index} from the cursor (0x{addr:x}, {len} bytes) is not in guest memory"
        )),
        // Resolution makes no system call: not reached.
        FileIoError::Os(errno) => Error::Panic(format!("errno {errno} while resolving a span")),
    }
}
