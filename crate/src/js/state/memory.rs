//! Guest memory as JavaScript holds it: a `GuestMem` and the references that
//! keep its JavaScript backing stores alive, behind a type-tagged handle.

use std::rc::Rc;
use std::sync::Arc;

use crate::engine::memory::GuestMem;
use crate::engine::{Error, Result};
use crate::napi::TypeTag;
use crate::napi::{Ref, Tagged};

/// A region's JavaScript backing store, kept alive by a strong reference.
pub struct JsBacking {
    /// The region's index in the caller's list (for error messages).
    pub index: usize,
    pub buffer: Ref,
    /// For an ArrayBuffer (which can be detached, transferred or, when resizable,
    /// shrunk): what the region needs of it, checked before every access. `None`
    /// for a SharedArrayBuffer, which can do none of these (a growable one only grows).
    pub needs: Option<Needs>,
}

/// What a region needs of its ArrayBuffer: the same data pointer as when it was
/// mapped, and at least `len` bytes from it (the region's offset plus its length).
pub struct Needs {
    pub base: *mut u8,
    pub len: usize,
}

/// Guest memory shared by a memory handle and the queues created over it.
/// Memory over JavaScript buffers has its backing stores in `js`; memory a
/// vhost-user frontend shared (`js::vhost_user`) has none: the `Arc` keeps
/// its mappings alive, and the engine can share it with the protocol core.
pub struct Memory {
    pub mem: Arc<GuestMem>,
    pub js: Vec<JsBacking>,
}

impl Memory {
    /// Fails if a backing ArrayBuffer no longer holds its region: detached
    /// (transferred, maybe to another thread), moved, or resized below the
    /// region. Its data pointer and length come from V8 through Node-API, one
    /// call per ArrayBuffer, never from JavaScript properties.
    pub fn check_attached(&self) -> Result<()> {
        for b in &self.js {
            let Some(needs) = &b.needs else { continue };
            let (data, len) = b
                .buffer
                .env()
                .arraybuffer_info(b.buffer.value()?, "buffer")?;
            if data != needs.base || len < needs.len {
                return Err(Error::Detached { region: b.index });
            }
        }
        Ok(())
    }

    /// The guest memory, after checking every backing store still holds its region.
    pub fn get(&self) -> Result<&GuestMem> {
        self.check_attached()?;
        Ok(&self.mem)
    }
}

/// The handle JavaScript holds.
pub struct MemoryHandle(pub Rc<Memory>);

impl Tagged for MemoryHandle {
    const TAG: TypeTag = TypeTag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x6d65_6d6f_7279_0001,
    };
    const EXPECTED: &'static str = "a guest memory handle";
}
