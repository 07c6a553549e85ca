//! `FileIoBatch`'s native side (Linux): a list of preadv/pwritev/fdatasync
//! operations on guest memory (`engine::file_io_list`), queued from
//! JavaScript and run in order on one libuv threadpool thread.
//!
//! Lifetimes. Queueing resolves every buffer against its guest memory on the
//! JavaScript thread and keeps an `Rc<Memory>` of each distinct memory; a run
//! moves the list and those memories into the async work, which keeps them
//! until its completion has run, on this thread again. The threadpool thread
//! touches the list only. Memory over an ArrayBuffer is refused
//! (`DetachableMemory`): it could be detached and freed elsewhere while the
//! threadpool writes into it. A SharedArrayBuffer cannot be detached or
//! shrink, and the `Memory`'s references keep it alive; a vhost-user
//! frontend's regions are kept mapped by the `Arc`s of their `GuestMem`,
//! whatever happens to the memory table meanwhile.
//!
//! Results go into the batch's Float64Array (given at creation, held by a
//! strong reference), written at completion after asking V8 for its memory
//! again. Then the completion function the run was given is called; if it
//! throws, the exception is reported as uncaught, like any I/O callback's.

use std::cell::RefCell;
use std::rc::Rc;

use super::file_io::{resolve_error, span_arg, POSITION_MAX};
use super::state::memory::{Memory, MemoryHandle};
use super::Ctx;
use crate::engine::file_io_list::FileIoList;
use crate::engine::{Error, Result};
use crate::napi::{Called, Env, Ref, Tagged, TypeTag, TypedArrayKind, Value, ValueType, Work};

/// Most operations one batch holds.
pub const MAX_CAPACITY: u64 = 65536;

/// A batch's native state, shared by its handle and the run in flight.
struct Batch {
    capacity: usize,
    /// The Float64Array results are written to.
    results: Ref,
    /// `None` while a run has the list.
    list: RefCell<Option<Box<FileIoList>>>,
    /// The memories of the queued operations, one `Rc` each.
    memories: RefCell<Vec<Rc<Memory>>>,
}

impl Batch {
    /// The list, unless a run has it.
    fn with_list<T>(&self, f: impl FnOnce(&mut FileIoList) -> Result<T>) -> Result<T> {
        let mut list = self.list.borrow_mut();
        let list = list.as_mut().ok_or(Error::Busy(
            "the FileIoBatch is running: wait for its callback",
        ))?;
        f(list)
    }

    fn check_room(&self, list: &FileIoList) -> Result<()> {
        if list.len() >= self.capacity {
            return Err(Error::range(
                "operation",
                format!("the batch holds {} operations", self.capacity),
            ));
        }
        Ok(())
    }
}

/// The handle JavaScript holds.
pub struct FileIoBatchHandle(Rc<Batch>);

impl Tagged for FileIoBatchHandle {
    const TAG: TypeTag = TypeTag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x6669_6c65_696f_0001,
    };
    const EXPECTED: &'static str = "a file I/O batch handle";
}

/// `fileIoBatchNew(capacity, results: Float64Array) -> handle`.
pub fn new(ctx: &Ctx) -> Result<Value> {
    let capacity = ctx.uint_arg(0, "capacity", MAX_CAPACITY)? as usize;
    if capacity == 0 {
        return Err(Error::range("capacity", "it must be from 1 to 65536"));
    }
    let results = ctx.arg(1);
    let ta = ctx.typed_array(results, "results", TypedArrayKind::Float64)?;
    if ta.byte_len / 8 < capacity {
        return Err(Error::range("results", "it must hold `capacity` numbers"));
    }
    let batch = Batch {
        capacity,
        results: Ref::new(ctx.env(), results)?,
        list: RefCell::new(Some(Box::new(FileIoList::new()))),
        memories: RefCell::new(Vec::new()),
    };
    Ok(ctx.new_external(FileIoBatchHandle(Rc::new(batch)))?)
}

/// `fileIoBatchQueue(handle, memory, words, fd, position[, span]) -> k`: queues a
/// preadv/pwritev of the span (call area or `span`, as for `chainFileIo`), every
/// buffer resolved against `memory` now.
pub fn queue(ctx: &Ctx) -> Result<Value> {
    let (span, direction) = span_arg(ctx, 5)?;
    let batch = &ctx.external_arg::<FileIoBatchHandle>(0, "batch")?.0;
    let memory = &ctx.external_arg::<MemoryHandle>(1, "memory")?.0;
    // SAFETY: the only typed-array argument alive from here on, taken once.
    let words: &[u32] = unsafe { ctx.u32_slice_arg(2, "words")? };
    let fd = ctx.uint_arg(3, "fd", i32::MAX as u64)? as i32;
    let position = ctx.uint_arg(4, "position", POSITION_MAX)?;
    off_thread(memory)?;
    let k = batch.with_list(|list| {
        batch.check_room(list)?;
        list.push_transfer(&memory.mem, words, span, fd, position, direction)
            .map_err(resolve_error)
    })?;
    let mut memories = batch.memories.borrow_mut();
    if !memories.iter().any(|m| Rc::ptr_eq(m, memory)) {
        memories.push(memory.clone());
    }
    Ok(ctx.number(k as f64)?)
}

/// Fails with `DetachableMemory` unless a run may use `memory` off the JavaScript
/// thread: no region over an ArrayBuffer (a transfer could detach it and free it
/// elsewhere meanwhile).
fn off_thread(memory: &Memory) -> Result<()> {
    match memory.js.iter().find(|b| b.needs.is_some()) {
        Some(b) => Err(Error::DetachableMemory { region: b.index }),
        None => Ok(()),
    }
}

/// `fileIoBatchCheckMemory(memory)`: throws what queueing an operation on
/// `memory` would for the memory itself (`DetachableMemory`), else returns.
pub fn check_memory(ctx: &Ctx) -> Result<Value> {
    off_thread(&ctx.external_arg::<MemoryHandle>(0, "memory")?.0)?;
    Ok(ctx.undefined()?)
}

/// `fileIoBatchDatasync(handle, fd) -> k`.
pub fn datasync(ctx: &Ctx) -> Result<Value> {
    let batch = &ctx.external_arg::<FileIoBatchHandle>(0, "batch")?.0;
    let fd = ctx.uint_arg(1, "fd", i32::MAX as u64)? as i32;
    let k = batch.with_list(|list| {
        batch.check_room(list)?;
        Ok(list.push_datasync(fd))
    })?;
    Ok(ctx.number(k as f64)?)
}

/// `fileIoBatchClear(handle)`: forgets the queued operations and their memories.
pub fn clear(ctx: &Ctx) -> Result<Value> {
    let batch = &ctx.external_arg::<FileIoBatchHandle>(0, "batch")?.0;
    batch.with_list(|list| {
        list.clear();
        Ok(())
    })?;
    // Dropped after the borrow ends.
    let _memories = std::mem::take(&mut *batch.memories.borrow_mut());
    Ok(ctx.undefined()?)
}

/// `fileIoBatchRun(handle, complete, resource, name)`: runs the queued operations on
/// the threadpool; then writes the results and calls `complete()` on this thread.
/// `resource` is the async resource (the FileIoBatch object) and `name` its type, a
/// string the caller keeps (nothing is made on the JavaScript heap per run).
pub fn run(ctx: &Ctx) -> Result<Value> {
    let batch = &ctx.external_arg::<FileIoBatchHandle>(0, "batch")?.0;
    let complete = ctx.arg(1);
    if ctx.type_of(complete)? != ValueType::Function {
        return Err(Error::ArgType {
            name: "complete",
            expected: "a function",
        });
    }
    let resource = ctx.arg(2);
    if ctx.type_of(resource)? != ValueType::Object {
        return Err(Error::ArgType {
            name: "resource",
            expected: "an object",
        });
    }
    let name = ctx.arg(3);
    if ctx.type_of(name)? != ValueType::String {
        return Err(Error::ArgType {
            name: "name",
            expected: "a string",
        });
    }
    let complete = Ref::new(ctx.env(), complete)?;
    let list = batch
        .list
        .borrow_mut()
        .take()
        .ok_or(Error::Busy("the FileIoBatch is already running"))?;
    let memories = std::mem::take(&mut *batch.memories.borrow_mut());
    let job = Job {
        list,
        js: JsThread(JobJs {
            batch: batch.clone(),
            memories,
            complete,
        }),
    };
    if let Err((e, job)) = ctx.env().queue_work(resource, name, job) {
        // Not queued: the batch gets its list and memories back, unrun.
        let JobJs {
            batch, memories, ..
        } = job.js.0;
        *batch.list.borrow_mut() = Some(job.list);
        *batch.memories.borrow_mut() = memories;
        return Err(e.into());
    }
    Ok(ctx.undefined()?)
}

/// What a run needs back on the JavaScript thread.
struct JobJs {
    batch: Rc<Batch>,
    /// Keep the guest memory the list points into mapped until the run is over.
    memories: Vec<Rc<Memory>>,
    complete: Ref,
}

/// A value only ever used, and dropped, on the environment's thread.
struct JsThread<T>(T);

// SAFETY: `JsThread` is made in `run` on the environment's thread, moved with
// the job into the async work, and used and dropped only in `complete` (or in
// `run` if queueing fails), both on that thread. The threadpool thread's
// `execute` touches only `Job::list`, never this field: the `Rc`s' counts and
// the Node-API references are never used from two threads.
unsafe impl<T> Send for JsThread<T> {}

/// One run: the list for the threadpool, the rest for the completion.
struct Job {
    list: Box<FileIoList>,
    js: JsThread<JobJs>,
}

impl Work for Job {
    type Output = ();

    fn execute(&mut self) {
        // SAFETY: `js.memories` holds every memory the list points into (each queued
        // operation added its own), and is dropped only in `complete`, after this
        // returns. None is over an ArrayBuffer (refused when queued); SharedArrayBuffers
        // cannot be detached or shrink; native and vhost-user regions stay mapped while
        // their `GuestMem` lives.
        unsafe { self.list.run() }
    }

    fn complete(self, env: Env, _output: Option<()>) {
        let Job { mut list, js } = self;
        let JobJs {
            batch,
            memories,
            complete,
        } = js.0;
        // The guest memory is no longer used.
        drop(memories);
        write_results(env, &batch, &list);
        list.clear();
        *batch.list.borrow_mut() = Some(list);
        // JavaScript may not run any more (the environment is being torn down): then
        // the function is not called, and nothing else is left to do.
        if let Ok(f) = complete.value() {
            if let Ok(Called::Threw(e)) = env.call_function(f, &[]) {
                let _ = env.fatal_exception(e);
            }
        }
    }
}

/// Writes each operation's outcome (bytes moved, or `-errno`) into the batch's
/// Float64Array, whose memory is asked of V8 now and bounds-checked.
fn write_results(env: Env, batch: &Batch, list: &FileIoList) {
    let Ok(v) = batch.results.value() else { return };
    let Ok(ta) = env.typed_array(v, "results", TypedArrayKind::Float64) else {
        return;
    };
    if ta.data.is_null() {
        return;
    }
    let n = list.len().min(ta.byte_len / 8);
    for k in 0..n {
        // SAFETY: `k < byte_len / 8`: within the array's memory, which V8 reported just
        // now and which no JavaScript can change while this runs; a Float64Array's data
        // is 8-byte aligned, but an unaligned write costs nothing here and assumes nothing.
        unsafe {
            (ta.data as *mut f64)
                .add(k)
                .write_unaligned(list.result(k) as f64)
        };
    }
}
