//! Guest memory as JavaScript sees it: a handle (type-tagged external) over a
//! `GuestMem`, plus the references that keep JavaScript backing stores alive.

use std::ptr::null_mut;
use std::rc::Rc;
use std::sync::Arc;

use vm_memory::GuestAddress;

use crate::error::{Error, Result};
use crate::memory::{GuestMem, HostRegion, NativeAlloc};
use crate::napi::sys::*;
use crate::napi::{check, Ctx, Ref, Tagged};

/// A region's JavaScript backing store, kept alive by a strong reference.
struct JsBacking {
    /// The region's index in the caller's list (for error messages).
    index: usize,
    buffer: Ref,
    /// False for SharedArrayBuffers, which cannot be detached.
    detachable: bool,
}

/// Guest memory shared by a memory handle and the queues created over it.
pub struct Memory {
    pub mem: GuestMem,
    js: Vec<JsBacking>,
    env: napi_env,
}

impl Memory {
    /// Fails if JavaScript detached (transferred) a backing ArrayBuffer: its
    /// memory may be gone, so no guest access may happen.
    pub fn check_attached(&self) -> Result<()> {
        for b in self.js.iter().filter(|b| b.detachable) {
            let mut detached = false;
            // SAFETY: the reference holds an ArrayBuffer (checked at creation).
            check(unsafe {
                napi_is_detached_arraybuffer(self.env, b.buffer.value()?, &mut detached)
            })?;
            if detached {
                return Err(Error::Detached { region: b.index });
            }
        }
        Ok(())
    }

    /// The guest memory, after checking every backing store is still attached.
    pub fn get(&self) -> Result<&GuestMem> {
        self.check_attached()?;
        Ok(&self.mem)
    }
}

/// The handle JavaScript holds.
pub struct MemoryHandle(pub Rc<Memory>);

impl Tagged for MemoryHandle {
    const TAG: napi_type_tag = napi_type_tag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x6d65_6d6f_7279_0001,
    };
    const EXPECTED: &'static str = "a guest memory handle";
}

/// `memoryCreate([addr0, backing0, addr1, backing1, ...])`: each backing is a
/// size (a page-aligned zeroed region is allocated) or a Uint8Array (mapped
/// zero-copy). Returns `[handle, arrayBuffer0 | undefined, ...]`, an
/// ArrayBuffer for each allocated region.
pub fn memory_create(ctx: &Ctx) -> Result<napi_value> {
    let spec = ctx.arg(0);
    let mut is_array = false;
    // SAFETY: plain Node-API call on an argument.
    check(unsafe { napi_is_array(ctx.env, spec, &mut is_array) })?;
    if !is_array {
        return Err(Error::ArgType {
            name: "regions",
            expected: "an array",
        });
    }
    let mut len = 0u32;
    // SAFETY: `spec` is an array.
    check(unsafe { napi_get_array_length(ctx.env, spec, &mut len) })?;
    if len % 2 != 0 {
        return Err(Error::range("regions", "expected [address, backing] pairs"));
    }
    let mut regions = Vec::new();
    let mut js = Vec::new();
    let mut buffers = Vec::new();
    for i in 0..(len / 2) as usize {
        let addr = ctx.u64_of(element(ctx, spec, 2 * i)?, "guestAddress")?;
        let backing = element(ctx, spec, 2 * i + 1)?;
        match ctx.type_of(backing)? {
            NAPI_NUMBER | NAPI_BIGINT => {
                let size = ctx.u64_of(backing, "size")?;
                let size = usize::try_from(size)
                    .map_err(|_| Error::range("size", "larger than this host can map"))?;
                let alloc = Arc::new(NativeAlloc::new(size).map_err(|e| match e {
                    Error::InvalidRegion(msg) => Error::InvalidRegion(format!("region {i}: {msg}")),
                    e => e,
                })?);
                buffers.push(external_arraybuffer(ctx, &alloc)?);
                // SAFETY: the region keeps the allocation alive through the Arc.
                regions.push(unsafe {
                    HostRegion::new(GuestAddress(addr), alloc.as_ptr(), size, Some(alloc))
                });
            }
            _ => {
                let ta = ctx.typed_array_of(backing, "buffer", NAPI_UINT8_ARRAY)?;
                if ta.byte_len == 0 || ta.data.is_null() {
                    return Err(Error::InvalidRegion(format!(
                        "region {i} is empty (or its ArrayBuffer is detached)"
                    )));
                }
                let mut detached = false;
                // SAFETY: `ta.buffer` is the typed array's buffer; for a
                // SharedArrayBuffer the call fails, which means "cannot be detached".
                let detachable =
                    unsafe { napi_is_detached_arraybuffer(ctx.env, ta.buffer, &mut detached) }
                        == NAPI_OK;
                js.push(JsBacking {
                    index: i,
                    buffer: Ref::new(ctx.env, ta.buffer)?,
                    detachable,
                });
                buffers.push(ctx.undefined());
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
        env: ctx.env,
    };
    let handle = ctx.new_external(MemoryHandle(Rc::new(memory)))?;
    let mut out = vec![handle];
    out.extend(buffers);
    ctx.array(&out)
}

fn element(ctx: &Ctx, array: napi_value, i: usize) -> Result<napi_value> {
    let mut v = null_mut();
    // SAFETY: `array` is an array value of this call.
    check(unsafe { napi_get_element(ctx.env, array, i as u32, &mut v) })?;
    Ok(v)
}

/// An ArrayBuffer over a native allocation; it holds its own `Arc`, so the
/// memory lives while either JavaScript or a region uses it.
fn external_arraybuffer(ctx: &Ctx, alloc: &Arc<NativeAlloc>) -> Result<napi_value> {
    // SAFETY: the allocation lives as long as the Arc the ArrayBuffer holds.
    let ab = unsafe { ctx.external_arraybuffer(alloc.as_ptr(), alloc.len(), Arc::clone(alloc))? };
    ab.ok_or_else(|| {
        Error::InvalidRegion(
            "this Node.js build does not allow external ArrayBuffers; use GuestMemory.fromBuffers"
                .into(),
        )
    })
}
