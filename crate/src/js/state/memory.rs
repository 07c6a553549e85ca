//! Guest memory as JavaScript holds it: a `GuestMem` and the references that
//! keep its JavaScript backing stores alive, behind a type-tagged handle.

use std::rc::Rc;

use crate::engine::memory::GuestMem;
use crate::engine::{Error, Result};
use crate::napi::TypeTag;
use crate::napi::{Ref, Tagged};

/// A region's JavaScript backing store, kept alive by a strong reference.
pub struct JsBacking {
    /// The region's index in the caller's list (for error messages).
    pub index: usize,
    pub buffer: Ref,
}

/// Guest memory shared by a memory handle and the queues created over it.
pub struct Memory {
    pub mem: GuestMem,
    pub js: Vec<JsBacking>,
}

impl Memory {
    /// Fails if JavaScript detached (transferred) a backing ArrayBuffer: its
    /// memory may be gone, so no guest access may happen.
    pub fn check_attached(&self) -> Result<()> {
        for b in &self.js {
            if b.buffer.env().is_detached_arraybuffer(b.buffer.value()?)? {
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
    const TAG: TypeTag = TypeTag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x6d65_6d6f_7279_0001,
    };
    const EXPECTED: &'static str = "a guest memory handle";
}
