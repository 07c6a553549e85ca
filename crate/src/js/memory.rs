//! `memoryCreate`: guest memory over JavaScript buffers.

use std::rc::Rc;

use vm_memory::GuestAddress;

use super::state::memory::{JsBacking, Memory, MemoryHandle, Needs};
use super::Ctx;
use crate::engine::memory::{GuestMem, HostRegion, PAGE_SIZE};
use crate::engine::{Error, Result};
use crate::napi::{Ref, TypedArrayKind, Value};

/// `memoryCreate([addr0, backing0, addr1, backing1, ...])`: each backing is an
/// ArrayBuffer allocated for the region (`GuestMemory.fromRanges`: a page longer
/// than the region; its page-aligned window is mapped) or a Uint8Array (mapped
/// zero-copy). Returns `[handle, offset0 | undefined, ...]`: for each allocated
/// region, the offset of its window in the ArrayBuffer.
///
/// All guest memory is memory V8 owns: an ArrayBuffer transferred to another
/// thread takes its memory along (and is detached here), and the memory lives
/// as long as any ArrayBuffer holding it, whatever thread ends first.
pub fn memory_create(ctx: &Ctx) -> Result<Value> {
    let spec = ctx.arg(0);
    let len = ctx.array_len(spec, "regions")?;
    if len % 2 != 0 {
        return Err(Error::range("regions", "expected [address, backing] pairs"));
    }
    let mut regions = Vec::new();
    let mut js = Vec::new();
    let mut offsets = Vec::new();
    for i in 0..len / 2 {
        let index = i as usize;
        let addr = ctx.u64(ctx.element(spec, 2 * i)?, "guestAddress")?;
        let backing = ctx.element(spec, 2 * i + 1)?;
        if ctx.is_arraybuffer(backing)? {
            let (base, ab_len) = ctx.arraybuffer_info(backing, "buffer")?;
            let size = ab_len.saturating_sub(PAGE_SIZE);
            if size == 0 || base.is_null() {
                return Err(Error::InvalidRegion(format!(
                    "region {index}: a guest memory region cannot be empty"
                )));
            }
            // Below PAGE_SIZE, so the window [offset, offset + size) fits in the buffer.
            let offset = base.align_offset(PAGE_SIZE);
            js.push(JsBacking {
                index,
                buffer: Ref::new(ctx.env(), backing)?,
                needs: Some(Needs {
                    base,
                    len: offset + size,
                }),
            });
            offsets.push(ctx.number(offset as f64)?);
            // SAFETY: `offset + size <= ab_len`; the strong reference in `js` keeps the
            // ArrayBuffer alive, and `Memory::get` checks before every access that it
            // still holds this memory.
            regions
                .push(unsafe { HostRegion::new(GuestAddress(addr), base.add(offset), size, None) });
        } else {
            let ta = ctx.typed_array(backing, "buffer", TypedArrayKind::Uint8)?;
            if ta.byte_len == 0 || ta.data.is_null() {
                return Err(Error::InvalidRegion(format!(
                    "region {index} is empty (or its ArrayBuffer is detached)"
                )));
            }
            // The view's real ArrayBuffer (V8's, whatever its `buffer` property says).
            let needs = if ctx.is_arraybuffer(ta.buffer)? {
                let (base, _) = ctx.arraybuffer_info(ta.buffer, "buffer")?;
                Some(Needs {
                    base,
                    len: ta.byte_offset + ta.byte_len,
                })
            } else {
                None
            };
            js.push(JsBacking {
                index,
                buffer: Ref::new(ctx.env(), ta.buffer)?,
                needs,
            });
            offsets.push(ctx.undefined()?);
            // SAFETY: the strong reference in `js` keeps the backing store alive;
            // `Memory::get` checks before every access that it still holds the region.
            regions
                .push(unsafe { HostRegion::new(GuestAddress(addr), ta.data, ta.byte_len, None) });
        }
    }
    let memory = Memory {
        mem: std::sync::Arc::new(GuestMem::new(regions)?),
        js,
    };
    let handle = ctx.new_external(MemoryHandle(Rc::new(memory)))?;
    let mut out = vec![handle];
    out.extend(offsets);
    Ok(ctx.array(&out)?)
}
