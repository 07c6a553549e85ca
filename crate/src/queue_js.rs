//! The queue as JavaScript sees it: `virtio_queue::Queue` behind a handle,
//! with one exported function per `QueueGuard` method and the batch calls.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueOwnedT, QueueState, QueueT};
use vm_memory::GuestAddress;

use crate::batch;
use crate::call_area;
use crate::error::{Error, Result};
use crate::instance::{self, QueueTable};
use crate::memory_js::{Memory, MemoryHandle};
use crate::napi::sys::*;
use crate::napi::{Ctx, Tagged};

/// A queue and the guest memory it works on.
pub struct QueueHandle {
    pub(crate) queue: Queue,
    pub(crate) memory: Rc<Memory>,
}

/// Words in a serialised `QueueState`.
pub const STATE_WORDS: usize = 12;

/// The queue named by argument 0, held for the rest of the call.
fn queue(ctx: &Ctx) -> Result<Rc<RefCell<QueueHandle>>> {
    queue_at(ctx, 0)
}

/// The queue named by argument `i` (a handle from `register`).
pub fn queue_at(ctx: &Ctx, i: usize) -> Result<Rc<RefCell<QueueHandle>>> {
    lookup(ctx, ctx.uint(i, "queue", HANDLE_MAX)?)
}

/// Handles are integers below 2^53.
const HANDLE_MAX: u64 = (1 << 53) - 1;

/// The live queue a handle names.
fn lookup(ctx: &Ctx, handle: u64) -> Result<Rc<RefCell<QueueHandle>>> {
    instance::queues(ctx.env)
        .and_then(|table| table.borrow().get(handle))
        .ok_or(Error::ArgType {
            name: "queue",
            expected: "a live queue handle",
        })
}

/// `let_queue!(q = held)` binds `q: &mut QueueHandle` to the queue `held` (an
/// `Rc<RefCell<QueueHandle>>`) for the rest of the enclosing function;
/// `let_queue!(ctx, q)` does so for the queue of argument 0.
macro_rules! let_queue {
    ($q:ident = $held:expr) => {
        let held = $held;
        let mut borrowed = held.borrow_mut();
        let $q: &mut $crate::queue_js::QueueHandle = &mut borrowed;
    };
    ($ctx:expr, $q:ident) => {
        let_queue!($q = queue($ctx)?);
    };
}
pub(crate) use let_queue;

/// Puts a new queue in this environment's table: `[handle, anchor]`. The
/// handle is what queue functions take; the anchor, held by the JavaScript
/// `Queue`, frees the slot when collected.
fn register(ctx: &Ctx, value: QueueHandle) -> Result<napi_value> {
    let table = instance::queues(ctx.env).ok_or(Error::Napi(NAPI_GENERIC_FAILURE))?;
    let handle = table
        .borrow_mut()
        .insert(value)
        .ok_or_else(|| Error::range("queue", "too many live queues in this thread"))?;
    // From here the anchor owns the slot: any early return drops it, freeing the slot
    // (new_external drops its value when it fails too).
    let anchor = QueueAnchor {
        table: Rc::clone(table),
        handle,
    };
    let number = ctx.number(handle as f64)?;
    let items = [number, ctx.new_external(anchor)?];
    ctx.array(&items)
}

/// Frees its queue's slot when JavaScript collects the `Queue` holding it.
pub struct QueueAnchor {
    table: QueueTable,
    handle: u64,
}

impl Drop for QueueAnchor {
    fn drop(&mut self) {
        // The queue itself drops after the table is released (or later, if a call holds it).
        // The table is only borrowed for a lookup inside a call, never while a finalizer can
        // run, so try_borrow_mut succeeds; were it to fail, the slot would just stay taken.
        let removed = self
            .table
            .try_borrow_mut()
            .ok()
            .and_then(|mut t| t.remove(self.handle));
        drop(removed);
    }
}

impl Tagged for QueueAnchor {
    const TAG: napi_type_tag = napi_type_tag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x7175_6575_6500_0002,
    };
    const EXPECTED: &'static str = "a queue anchor";
}

/// `queueNew(memory, maxSize)`.
pub fn queue_new(ctx: &Ctx) -> Result<napi_value> {
    let memory = Rc::clone(&ctx.external::<MemoryHandle>(0, "memory")?.0);
    // Any integer number is a size the crate judges: above u16 it is InvalidMaxSize, not an argument error.
    let max_size = u16::try_from(ctx.uint(1, "maxSize", (1 << 53) - 1)?)
        .map_err(|_| virtio_queue::Error::InvalidMaxSize)?;
    let queue = Queue::new(max_size)?;
    register(ctx, QueueHandle { queue, memory })
}

/// `queueFromState(memory, state: Uint32Array(12))`, validated by `Queue::try_from`.
pub fn queue_from_state(ctx: &Ctx) -> Result<napi_value> {
    let memory = Rc::clone(&ctx.external::<MemoryHandle>(0, "memory")?.0);
    // SAFETY: `state` is the only typed-array argument, taken once.
    let w = unsafe { ctx.u32_slice(1, "state")? };
    if w.len() < STATE_WORDS {
        return Err(Error::range(
            "state",
            format!("expected {STATE_WORDS} words"),
        ));
    }
    let u16_field = |i: usize, name: &'static str| {
        u16::try_from(w[i])
            .map_err(|_| Error::range(name, format!("{} does not fit in 16 bits", w[i])))
    };
    let addr = |i: usize| (w[i + 1] as u64) << 32 | w[i] as u64;
    let state = QueueState {
        max_size: u16_field(0, "maxSize")?,
        next_avail: u16_field(1, "nextAvail")?,
        next_used: u16_field(2, "nextUsed")?,
        event_idx_enabled: w[3] != 0,
        size: u16_field(4, "size")?,
        ready: w[5] != 0,
        desc_table: addr(6),
        avail_ring: addr(8),
        used_ring: addr(10),
    };
    let queue = Queue::try_from(state)?;
    register(ctx, QueueHandle { queue, memory })
}

/// `queueState(queue, out: Uint32Array(12))`.
pub fn queue_state(ctx: &Ctx) -> Result<napi_value> {
    let s = queue(ctx)?.borrow_mut().queue.state();
    // SAFETY: `out` is the only typed-array argument, taken once.
    let out = unsafe { ctx.u32_slice(1, "out")? };
    if out.len() < STATE_WORDS {
        return Err(Error::range("out", format!("expected {STATE_WORDS} words")));
    }
    let words = [
        s.max_size as u32,
        s.next_avail as u32,
        s.next_used as u32,
        s.event_idx_enabled as u32,
        s.size as u32,
        s.ready as u32,
        s.desc_table as u32,
        (s.desc_table >> 32) as u32,
        s.avail_ring as u32,
        (s.avail_ring >> 32) as u32,
        s.used_ring as u32,
        (s.used_ring >> 32) as u32,
    ];
    out[..STATE_WORDS].copy_from_slice(&words);
    Ok(ctx.undefined())
}

pub fn is_valid(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let valid = q.queue.is_valid(q.memory.get()?);
    ctx.boolean(valid)
}

pub fn reset(ctx: &Ctx) -> Result<napi_value> {
    queue(ctx)?.borrow_mut().queue.reset();
    Ok(ctx.undefined())
}

pub fn max_size(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.borrow_mut().queue.max_size() as f64)
}

pub fn size(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.borrow_mut().queue.size() as f64)
}

/// Uses `try_set_size`: an invalid size throws `InvalidSize` instead of being ignored.
pub fn set_size(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    // As for maxSize: an integer above u16 is an InvalidSize, like any other size above maxSize.
    let size = u16::try_from(ctx.uint(1, "size", (1 << 53) - 1)?)
        .map_err(|_| virtio_queue::Error::InvalidSize)?;
    q.queue.try_set_size(size)?;
    Ok(ctx.undefined())
}

pub fn ready(ctx: &Ctx) -> Result<napi_value> {
    ctx.boolean(queue(ctx)?.borrow_mut().queue.ready())
}

pub fn set_ready(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    q.queue.set_ready(ctx.bool(1, "ready")?);
    Ok(ctx.undefined())
}

/// The crate's `set_*_address(low, high)` combination of the two halves with
/// the current address, validated by the `try_set_*_address` variant.
fn combine(ctx: &Ctx, current: u64) -> Result<GuestAddress> {
    let low = ctx.opt_u32(1, "low")?.unwrap_or(current as u32) as u64;
    let high = ctx.opt_u32(2, "high")?.unwrap_or((current >> 32) as u32) as u64;
    Ok(GuestAddress(high << 32 | low))
}

pub fn set_desc_table_address(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let addr = combine(ctx, q.queue.desc_table())?;
    q.queue.try_set_desc_table_address(addr)?;
    Ok(ctx.undefined())
}

pub fn set_avail_ring_address(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let addr = combine(ctx, q.queue.avail_ring())?;
    q.queue.try_set_avail_ring_address(addr)?;
    Ok(ctx.undefined())
}

pub fn set_used_ring_address(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let addr = combine(ctx, q.queue.used_ring())?;
    q.queue.try_set_used_ring_address(addr)?;
    Ok(ctx.undefined())
}

pub fn set_event_idx(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    q.queue.set_event_idx(ctx.bool(1, "enabled")?);
    Ok(ctx.undefined())
}

pub fn event_idx_enabled(ctx: &Ctx) -> Result<napi_value> {
    ctx.boolean(queue(ctx)?.borrow_mut().queue.event_idx_enabled())
}

/// The memory ordering named by argument `i`: 0 relaxed, 1 acquire (default), 2 seq-cst.
fn ordering(ctx: &Ctx, i: usize) -> Result<Ordering> {
    if ctx.is_nullish(i)? {
        return Ok(Ordering::Acquire);
    }
    match ctx.u32(i, "order")? {
        0 => Ok(Ordering::Relaxed),
        1 => Ok(Ordering::Acquire),
        2 => Ok(Ordering::SeqCst),
        n => Err(Error::range("order", format!("unknown ordering {n}"))),
    }
}

pub fn avail_idx(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let order = ordering(ctx, 1)?;
    let idx = q.queue.avail_idx(q.memory.get()?, order)?;
    ctx.number(idx.0 as f64)
}

pub fn used_idx(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let order = ordering(ctx, 1)?;
    let idx = q.queue.used_idx(q.memory.get()?, order)?;
    ctx.number(idx.0 as f64)
}

pub fn add_used(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let head = ctx.u16(1, "headIndex")?;
    let len = ctx.u32(2, "len")?;
    q.queue.add_used(q.memory.get()?, head, len)?;
    // Called per chain on the iterator path: skip napi_get_undefined.
    Ok(ctx.returns_undefined())
}

/// `addUsedArea()`: `addUsed` with its arguments (queue, headIndex, len) in the
/// call area's first three slots, validated as `add_used` validates them.
pub fn add_used_area(ctx: &Ctx) -> Result<napi_value> {
    let area = call_area::of(ctx)?;
    let_queue!(q = lookup(ctx, area.uint(0, "queue", HANDLE_MAX)?)?);
    let head = area.uint(1, "headIndex", u16::MAX as u64)? as u16;
    let len = area.uint(2, "len", u32::MAX as u64)? as u32;
    q.queue.add_used(q.memory.get()?, head, len)?;
    Ok(ctx.returns_undefined())
}

pub fn enable_notification(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let more = q.queue.enable_notification(q.memory.get()?)?;
    ctx.boolean(more)
}

pub fn disable_notification(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    q.queue.disable_notification(q.memory.get()?)?;
    Ok(ctx.undefined())
}

pub fn needs_notification(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    let needed = q.queue.needs_notification(q.memory.get()?)?;
    ctx.boolean(needed)
}

pub fn next_avail(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.borrow_mut().queue.next_avail() as f64)
}

pub fn next_used(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.borrow_mut().queue.next_used() as f64)
}

pub fn set_next_avail(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    q.queue.set_next_avail(ctx.u16(1, "nextAvail")?);
    Ok(ctx.undefined())
}

pub fn set_next_used(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    q.queue.set_next_used(ctx.u16(1, "nextUsed")?);
    Ok(ctx.undefined())
}

pub fn go_to_previous_position(ctx: &Ctx) -> Result<napi_value> {
    queue(ctx)?.borrow_mut().queue.go_to_previous_position();
    Ok(ctx.undefined())
}

/// `popChains(queue, out: Uint32Array, maxChains) -> count` (layout in `batch`).
pub fn pop_chains(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    // SAFETY: `out` is the only typed-array argument, taken once.
    let out = unsafe { ctx.u32_slice(1, "out")? };
    let max = ctx.uint(2, "maxChains", u16::MAX as u64)? as usize;
    let n = batch::pop_chains(&mut q.queue, q.memory.get()?, out, max)?;
    ctx.number(n as f64)
}

/// `addUsedBatch(queue, pairs: Uint32Array, count)`: `count` (head, len) pairs.
pub fn add_used_batch(ctx: &Ctx) -> Result<napi_value> {
    let_queue!(ctx, q);
    // SAFETY: `pairs` is the only typed-array argument, taken once.
    let pairs = unsafe { ctx.u32_slice(1, "pairs")? };
    let count = ctx.u32(2, "count")? as usize;
    let mem = q.memory.get()?;
    batch::add_used(&mut q.queue, mem, pairs, count).map_err(|(i, e)| match e {
        Error::Queue(inner) => Error::BatchEntry {
            index: i,
            source: inner,
        },
        e => e,
    })?;
    Ok(ctx.undefined())
}
