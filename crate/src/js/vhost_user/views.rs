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
//! Transfers: no JavaScript route moves a view's memory to another thread.
//! Node 20 copies external ArrayBuffers in `postMessage`, `structuredClone`
//! and `workerData` even when they are in the transfer list; Node 22 to 26
//! refuse the transfer (`DataCloneError`) and copy them without one
//! (`__test__/vhost-user-transfer.spec.ts` tries every route on the Node it
//! runs on, and fails if one starts sharing the memory). Node 22's
//! `ArrayBuffer.prototype.transfer()` moves the memory to a new ArrayBuffer on
//! the same thread: that one keeps the mapping alive like a view (its backing
//! store holds the `Owner`) but is not detached by a table change, since the
//! backend does not know it. When the thread ends, Node runs the finalizer of
//! every view still alive, as part of the environment's teardown.
//!
//! (An earlier version also registered a teardown hook per view, meant to leak
//! the mappings of a view transferred to another thread instead of unmapping
//! them: no route can make such a view, and on Node 20, 22 and 26 the view's
//! finalizer ran first at teardown, unregistering the hook, so the hook never
//! ran at all. It is gone.)

use std::sync::Arc;

use vm_memory::{GuestMemory, GuestMemoryRegion};

use crate::engine::memory::GuestMem;
use crate::engine::{Error, Result};
use crate::napi::{Env, Value, WeakRef};

/// The finalize hint of a view's ArrayBuffer: the table's memory, kept
/// mapped until the last view of it goes.
struct Owner {
    _mem: Arc<GuestMem>,
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
            let owner = Owner {
                _mem: Arc::clone(mem),
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
