//! Guest memory shared by a frontend, as JavaScript sees it: a memory handle
//! over the table's `Arc<GuestMem>` (no JavaScript backing store to check:
//! the `Arc` keeps every mapping alive while a queue uses it), and each region
//! as Buffers over external ArrayBuffers, in windows of at most `max_view`
//! bytes (`buffer.constants.MAX_LENGTH`).
//!
//! Lifetime of a view: its ArrayBuffer's finalizer drops an `Arc<GuestMem>`
//! clone, so the mappings stay mapped while any view of them lives. When the
//! table changes, the views of regions that left it are detached
//! (`napi_detach_arraybuffer`): stale use throws `DetachedBuffer`, and the
//! memory is released without waiting for the garbage collector.
//!
//! Transfers: V8 lets an external ArrayBuffer be transferred to a worker
//! (`postMessage(ab, [ab])`); its memory then lives as long as the worker's
//! copy, and the finalizer runs when the last copy goes. One case escapes:
//! when the environment that made the view is torn down (its thread ends),
//! Node runs the finalizer at once, even if a worker still holds a
//! transferred copy. So each view also registers a teardown hook (run before
//! Node's, which was registered first): if the view is still attached to its
//! memory here, the finalizer that follows releases it normally; if not (it
//! was transferred away), the finalizer leaks the mappings instead of
//! unmapping them under the other thread.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use vm_memory::{GuestMemory, GuestMemoryRegion};

use crate::engine::memory::GuestMem;
use crate::engine::{Error, Result};
use crate::napi::{Env, EnvCleanupHook, HandleScope, Value, WeakRef};

/// What a view's teardown hook and finalizer share.
struct Guard {
    data: *mut u8,
    weak: RefCell<Option<WeakRef>>,
    hook: RefCell<Option<EnvCleanupHook>>,
    /// Set at teardown when the view was no longer attached here.
    leak: Cell<bool>,
}

/// The finalize hint of a view's ArrayBuffer.
struct Owner {
    mem: Option<Arc<GuestMem>>,
    guard: Rc<Guard>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Unregisters the hook if it has not run (and frees its closure).
        drop(self.guard.hook.borrow_mut().take());
        drop(self.guard.weak.borrow_mut().take());
        if self.guard.leak.get() {
            // A transferred copy may still be in use on a thread that outlives
            // this environment: never unmap under it.
            std::mem::forget(self.mem.take());
        }
    }
}

/// A view made over a region of the current table.
pub struct View {
    /// The region's host address and length: how a region is recognised in
    /// the next table (the same mapping).
    region: (usize, u64),
    weak: WeakRef,
}

/// The views of one table.
#[derive(Default)]
pub struct Views(Vec<View>);

/// Makes the views of `mem`: `[guestAddress, ArrayBuffer, ...]` and their records.
pub fn make(env: Env, mem: &Arc<GuestMem>, max_view: u64) -> Result<(Value, Views)> {
    let mut items = Vec::new();
    let mut views = Vec::new();
    for r in mem.iter() {
        let mut off = 0u64;
        while off < r.len() {
            let len = (r.len() - off).min(max_view);
            // SAFETY: `off + len <= r.len()`, so the window lies within the region.
            let data = unsafe { r.host_ptr().add(off as usize) };
            let guard = Rc::new(Guard {
                data,
                weak: RefCell::new(None),
                hook: RefCell::new(None),
                leak: Cell::new(false),
            });
            let owner = Owner {
                mem: Some(Arc::clone(mem)),
                guard: Rc::clone(&guard),
            };
            // SAFETY: the window is mapped for as long as `owner` holds the Arc.
            let ab = unsafe { env.external_arraybuffer(data, len as usize, owner)? }.ok_or_else(|| {
                Error::VhostUser {
                    code: "VhostUserMemory",
                    message: "this Node.js build does not allow external ArrayBuffers, so guest memory shared \
                              by a vhost-user frontend cannot be shown to JavaScript"
                        .into(),
                }
            })?;
            *guard.weak.borrow_mut() = Some(WeakRef::new(env, ab)?);
            let g: Weak<Guard> = Rc::downgrade(&guard);
            *guard.hook.borrow_mut() =
                Some(env.add_env_cleanup_hook(move || at_teardown(env, &g))?);
            views.push(View {
                region: (r.host_ptr() as usize, r.len()),
                weak: WeakRef::new(env, ab)?,
            });
            items.push(env.number((r.start_addr().0 + off) as f64)?);
            items.push(ab);
            off += len;
        }
    }
    Ok((env.array(&items)?, Views(views)))
}

/// The teardown check: still attached to its memory here, or transferred away?
fn at_teardown(env: Env, guard: &Weak<Guard>) {
    let Some(g) = guard.upgrade() else { return };
    let Ok(_scope) = HandleScope::open(env) else {
        g.leak.set(true);
        return;
    };
    let attached = g
        .weak
        .borrow()
        .as_ref()
        .and_then(|w| w.value().ok().flatten())
        .and_then(|ab| env.arraybuffer_info(ab, "view").ok())
        .is_some_and(|(data, _)| data == g.data);
    if !attached {
        g.leak.set(true);
    }
}

impl Views {
    /// Detaches the views of regions that are not in `next` (the same mapping
    /// at the same length), and keeps the others.
    pub fn retire(self, env: Env, next: Option<&GuestMem>) {
        for v in self.0 {
            let stays = next.is_some_and(|m| {
                m.iter()
                    .any(|r| (r.host_ptr() as usize, r.len()) == v.region)
            });
            if stays {
                continue;
            }
            if let Ok(Some(ab)) = v.weak.value() {
                // Already detached (transferred): nothing to do.
                let _ = env.detach_arraybuffer(ab);
            }
        }
    }
}
