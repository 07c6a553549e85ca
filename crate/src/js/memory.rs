//! `memoryCreate`: guest memory from JavaScript buffers and native allocations.

use std::rc::Rc;
use std::sync::Arc;

use vm_memory::GuestAddress;

use super::state::memory::{JsBacking, Memory, MemoryHandle};
use super::Ctx;
use crate::engine::memory::{GuestMem, HostRegion, NativeAlloc};
use crate::engine::{Error, Result};
use crate::napi::{Ref, TypedArrayKind, Value, ValueType};

/// `memoryCreate([addr0, backing0, addr1, backing1, ...])`: each backing is a
/// size (a page-aligned zeroed region is allocated) or a Uint8Array (mapped
/// zero-copy). Returns `[handle, arrayBuffer0 | undefined, ...]`, an
/// ArrayBuffer for each allocated region.
pub fn memory_create(ctx: &Ctx) -> Result<Value> {
    let spec = ctx.arg(0);
    let len = ctx.array_len(spec, "regions")?;
    if len % 2 != 0 {
        return Err(Error::range("regions", "expected [address, backing] pairs"));
    }
    let mut regions = Vec::new();
    let mut js = Vec::new();
    let mut buffers = Vec::new();
    for i in 0..len / 2 {
        let index = i as usize;
        let addr = ctx.u64(ctx.element(spec, 2 * i)?, "guestAddress")?;
        let backing = ctx.element(spec, 2 * i + 1)?;
        match ctx.type_of(backing)? {
            ValueType::Number | ValueType::BigInt => {
                let size = ctx.u64(backing, "size")?;
                let size = usize::try_from(size)
                    .map_err(|_| Error::range("size", "larger than this host can map"))?;
                let alloc = Arc::new(NativeAlloc::new(size).map_err(|e| match e {
                    Error::InvalidRegion(msg) => {
                        Error::InvalidRegion(format!("region {index}: {msg}"))
                    }
                    e => e,
                })?);
                buffers.push(external_arraybuffer(ctx, &alloc)?);
                // SAFETY: the region keeps the allocation alive through the Arc.
                regions.push(unsafe {
                    HostRegion::new(GuestAddress(addr), alloc.as_ptr(), size, Some(alloc))
                });
            }
            _ => {
                let ta = ctx.typed_array(backing, "buffer", TypedArrayKind::Uint8)?;
                if ta.byte_len == 0 || ta.data.is_null() {
                    return Err(Error::InvalidRegion(format!(
                        "region {index} is empty (or its ArrayBuffer is detached)"
                    )));
                }
                js.push(JsBacking {
                    index,
                    buffer: Ref::new(ctx.env(), ta.buffer)?,
                });
                buffers.push(ctx.undefined()?);
                // SAFETY: the strong reference in `js` keeps the backing store
                // alive; detachment is checked before every access (`Memory::get`).
                regions.push(unsafe {
                    HostRegion::new(GuestAddress(addr), ta.data, ta.byte_len, None)
                });
            }
        }
    }
    let memory = Memory {
        mem: GuestMem::new(regions)?,
        js,
    };
    let handle = ctx.new_external(MemoryHandle(Rc::new(memory)))?;
    let mut out = vec![handle];
    out.extend(buffers);
    Ok(ctx.array(&out)?)
}

/// An ArrayBuffer over a native allocation; it holds its own `Arc`, so the
/// memory lives while either JavaScript or a region uses it.
fn external_arraybuffer(ctx: &Ctx, alloc: &Arc<NativeAlloc>) -> Result<Value> {
    // SAFETY: the allocation lives as long as the Arc the ArrayBuffer holds.
    let ab = unsafe { ctx.external_arraybuffer(alloc.as_ptr(), alloc.len(), Arc::clone(alloc))? };
    ab.ok_or_else(|| {
        Error::InvalidRegion(
            "this Node.js build does not allow external ArrayBuffers; use GuestMemory.fromBuffers"
                .into(),
        )
    })
}
