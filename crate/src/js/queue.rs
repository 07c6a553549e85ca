//! The queue's exports: one function per `QueueGuard` method and the batch
//! calls, each finding its queue by number in the environment's table.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueOwnedT, QueueState, QueueT};
use vm_memory::GuestAddress;

use super::state::memory::MemoryHandle;
use super::state::queue::{QueueAnchor, QueueHandle};
use super::Ctx;
use crate::engine::batch;
use crate::engine::{Error, Result};
use crate::napi::Value;

/// Words in a serialised `QueueState`.
pub const STATE_WORDS: usize = 12;

/// The queue named by argument 0, held for the rest of the call.
fn queue(ctx: &Ctx) -> Result<Rc<RefCell<QueueHandle>>> {
    queue_at(ctx, 0)
}

/// The queue named by argument `i` (a handle from `register`).
pub fn queue_at(ctx: &Ctx, i: usize) -> Result<Rc<RefCell<QueueHandle>>> {
    lookup(ctx, ctx.uint_arg(i, "queue", HANDLE_MAX)?)
}

/// Handles are integers below 2^53.
const HANDLE_MAX: u64 = (1 << 53) - 1;

/// The live queue a handle names.
fn lookup(ctx: &Ctx, handle: u64) -> Result<Rc<RefCell<QueueHandle>>> {
    ctx.state()
        .queues
        .borrow()
        .get(handle)
        .ok_or(Error::ArgType {
            name: "queue",
            expected: "a live queue handle",
        })
}

/// `let_queue!(mut q = held)` binds `q: &mut QueueHandle` to the queue `held` (an
/// `Rc<RefCell<QueueHandle>>`) for the rest of the enclosing function, and
/// `let_queue!(q = held)` binds `q: &QueueHandle` (read-only calls);
/// `let_queue!(ctx, mut q)` and `let_queue!(ctx, q)` do so for the queue of argument 0.
macro_rules! let_queue {
    (mut $q:ident = $held:expr) => {
        let held = $held;
        let mut borrowed = held.borrow_mut();
        let $q: &mut $crate::js::state::queue::QueueHandle = &mut borrowed;
    };
    ($q:ident = $held:expr) => {
        let held = $held;
        let borrowed = held.borrow();
        let $q: &$crate::js::state::queue::QueueHandle = &borrowed;
    };
    ($ctx:expr, mut $q:ident) => {
        let_queue!(mut $q = queue($ctx)?);
    };
    ($ctx:expr, $q:ident) => {
        let_queue!($q = queue($ctx)?);
    };
}
#[cfg(feature = "testing")]
pub(crate) use let_queue;

/// Puts a new queue in this environment's table: `[handle, anchor]`. The
/// handle is what queue functions take; the anchor, held by the JavaScript
/// `Queue`, frees the slot when collected.
fn register(ctx: &Ctx, value: QueueHandle) -> Result<Value> {
    let table = &ctx.state().queues;
    let handle = table
        .borrow_mut()
        .insert(value)
        .ok_or_else(|| Error::range("queue", "too many live queues in this thread"))?;
    // From here the anchor owns the slot: any early return drops it, freeing the slot
    // (new_external drops its value when it fails too).
    let anchor = QueueAnchor::new(table, handle);
    let number = ctx.number(handle as f64)?;
    let items = [number, ctx.new_external(anchor)?];
    Ok(ctx.array(&items)?)
}

/// `queueNew(memory, maxSize)`.
pub fn queue_new(ctx: &Ctx) -> Result<Value> {
    let memory = Rc::clone(&ctx.external_arg::<MemoryHandle>(0, "memory")?.0);
    // Any integer number is a size the crate judges: above u16 it is InvalidMaxSize, not an argument error.
    let max_size = u16::try_from(ctx.uint_arg(1, "maxSize", (1 << 53) - 1)?)
        .map_err(|_| virtio_queue::Error::InvalidMaxSize)?;
    let queue = Queue::new(max_size)?;
    register(ctx, QueueHandle { queue, memory })
}

/// `queueFromState(memory, state: Uint32Array(12))`, validated by `Queue::try_from`.
pub fn queue_from_state(ctx: &Ctx) -> Result<Value> {
    let memory = Rc::clone(&ctx.external_arg::<MemoryHandle>(0, "memory")?.0);
    // SAFETY: `state` is the only typed-array argument, taken once.
    let w = unsafe { ctx.u32_slice_arg(1, "state")? };
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
pub fn queue_state(ctx: &Ctx) -> Result<Value> {
    let s = queue(ctx)?.borrow().queue.state();
    // SAFETY: `out` is the only typed-array argument, taken once.
    let out = unsafe { ctx.u32_slice_arg(1, "out")? };
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
    Ok(ctx.undefined()?)
}

pub fn is_valid(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, q);
    let valid = q.queue.is_valid(q.memory.get()?);
    Ok(ctx.boolean(valid)?)
}

pub fn reset(ctx: &Ctx) -> Result<Value> {
    queue(ctx)?.borrow_mut().queue.reset();
    Ok(ctx.undefined()?)
}

pub fn max_size(ctx: &Ctx) -> Result<Value> {
    Ok(ctx.number(queue(ctx)?.borrow().queue.max_size() as f64)?)
}

pub fn size(ctx: &Ctx) -> Result<Value> {
    Ok(ctx.number(queue(ctx)?.borrow().queue.size() as f64)?)
}

/// Uses `try_set_size`: an invalid size throws `InvalidSize` instead of being ignored.
pub fn set_size(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    // As for maxSize: an integer above u16 is an InvalidSize, like any other size above maxSize.
    let size = u16::try_from(ctx.uint_arg(1, "size", (1 << 53) - 1)?)
        .map_err(|_| virtio_queue::Error::InvalidSize)?;
    q.queue.try_set_size(size)?;
    Ok(ctx.undefined()?)
}

pub fn ready(ctx: &Ctx) -> Result<Value> {
    Ok(ctx.boolean(queue(ctx)?.borrow().queue.ready())?)
}

pub fn set_ready(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    q.queue.set_ready(ctx.bool_arg(1, "ready")?);
    Ok(ctx.undefined()?)
}

/// The crate's `set_*_address(low, high)` combination of the two halves with
/// the current address, validated by the `try_set_*_address` variant.
fn combine(ctx: &Ctx, current: u64) -> Result<GuestAddress> {
    let low = ctx.opt_u32_arg(1, "low")?.unwrap_or(current as u32) as u64;
    let high = ctx
        .opt_u32_arg(2, "high")?
        .unwrap_or((current >> 32) as u32) as u64;
    Ok(GuestAddress(high << 32 | low))
}

pub fn set_desc_table_address(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    let addr = combine(ctx, q.queue.desc_table())?;
    q.queue.try_set_desc_table_address(addr)?;
    Ok(ctx.undefined()?)
}

pub fn set_avail_ring_address(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    let addr = combine(ctx, q.queue.avail_ring())?;
    q.queue.try_set_avail_ring_address(addr)?;
    Ok(ctx.undefined()?)
}

pub fn set_used_ring_address(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    let addr = combine(ctx, q.queue.used_ring())?;
    q.queue.try_set_used_ring_address(addr)?;
    Ok(ctx.undefined()?)
}

pub fn set_event_idx(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    q.queue.set_event_idx(ctx.bool_arg(1, "enabled")?);
    Ok(ctx.undefined()?)
}

pub fn event_idx_enabled(ctx: &Ctx) -> Result<Value> {
    Ok(ctx.boolean(queue(ctx)?.borrow().queue.event_idx_enabled())?)
}

/// The memory ordering named by argument `i`: 0 relaxed, 1 acquire (default), 2 seq-cst.
fn ordering(ctx: &Ctx, i: usize) -> Result<Ordering> {
    if ctx.is_nullish_arg(i)? {
        return Ok(Ordering::Acquire);
    }
    match ctx.u32_arg(i, "order")? {
        0 => Ok(Ordering::Relaxed),
        1 => Ok(Ordering::Acquire),
        2 => Ok(Ordering::SeqCst),
        n => Err(Error::range("order", format!("unknown ordering {n}"))),
    }
}

pub fn avail_idx(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, q);
    let order = ordering(ctx, 1)?;
    let idx = q.queue.avail_idx(q.memory.get()?, order)?;
    Ok(ctx.number(idx.0 as f64)?)
}

pub fn used_idx(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, q);
    let order = ordering(ctx, 1)?;
    let idx = q.queue.used_idx(q.memory.get()?, order)?;
    Ok(ctx.number(idx.0 as f64)?)
}

pub fn add_used(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    let head = ctx.u16_arg(1, "headIndex")?;
    let len = ctx.u32_arg(2, "len")?;
    q.queue.add_used(q.memory.get()?, head, len)?;
    // Called per chain on the iterator path: skip napi_get_undefined.
    Ok(Value::undefined_result())
}

/// `addUsedArea()`: `addUsed` with its arguments (queue, headIndex, len) in the
/// call area's first three slots, validated as `add_used` validates them; the
/// slots are poisoned once read (`CallArea::take`).
pub fn add_used_area(ctx: &Ctx) -> Result<Value> {
    let args = ctx.state().call_area.take();
    let_queue!(mut q = lookup(ctx, args.uint(0, "queue", HANDLE_MAX)?)?);
    let head = args.uint(1, "headIndex", u16::MAX as u64)? as u16;
    let len = args.uint(2, "len", u32::MAX as u64)? as u32;
    q.queue.add_used(q.memory.get()?, head, len)?;
    Ok(Value::undefined_result())
}

pub fn enable_notification(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    let more = q.queue.enable_notification(q.memory.get()?)?;
    Ok(ctx.boolean(more)?)
}

pub fn disable_notification(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    q.queue.disable_notification(q.memory.get()?)?;
    Ok(ctx.undefined()?)
}

pub fn needs_notification(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    let needed = q.queue.needs_notification(q.memory.get()?)?;
    Ok(ctx.boolean(needed)?)
}

pub fn next_avail(ctx: &Ctx) -> Result<Value> {
    Ok(ctx.number(queue(ctx)?.borrow().queue.next_avail() as f64)?)
}

pub fn next_used(ctx: &Ctx) -> Result<Value> {
    Ok(ctx.number(queue(ctx)?.borrow().queue.next_used() as f64)?)
}

pub fn set_next_avail(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    q.queue.set_next_avail(ctx.u16_arg(1, "nextAvail")?);
    Ok(ctx.undefined()?)
}

pub fn set_next_used(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    q.queue.set_next_used(ctx.u16_arg(1, "nextUsed")?);
    Ok(ctx.undefined()?)
}

pub fn go_to_previous_position(ctx: &Ctx) -> Result<Value> {
    queue(ctx)?.borrow_mut().queue.go_to_previous_position();
    Ok(ctx.undefined()?)
}

/// `popChains(queue, out: Uint32Array, maxChains) -> count` (layout in `batch`).
pub fn pop_chains(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    // SAFETY: `out` is the only typed-array argument, taken once.
    let out = unsafe { ctx.u32_slice_arg(1, "out")? };
    let max = ctx.uint_arg(2, "maxChains", u16::MAX as u64)? as usize;
    let n = batch::pop_chains(&mut q.queue, q.memory.get()?, out, max)?;
    Ok(ctx.number(n as f64)?)
}

/// `addUsedBatch(queue, pairs: Uint32Array, count)`: `count` (head, len) pairs.
pub fn add_used_batch(ctx: &Ctx) -> Result<Value> {
    let_queue!(ctx, mut q);
    // SAFETY: `pairs` is the only typed-array argument, taken once.
    let pairs = unsafe { ctx.u32_slice_arg(1, "pairs")? };
    let count = ctx.u32_arg(2, "count")? as usize;
    let mem = q.memory.get()?;
    batch::add_used(&mut q.queue, mem, pairs, count)?;
    Ok(ctx.undefined()?)
}
