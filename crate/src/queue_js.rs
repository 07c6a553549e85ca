//! The queue as JavaScript sees it: `virtio_queue::Queue` behind a handle,
//! with one exported function per `QueueGuard` method and the batch calls.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueOwnedT, QueueState, QueueT};
use vm_memory::GuestAddress;

use crate::batch;
use crate::error::{Error, Result};
use crate::memory_js::{Memory, MemoryHandle};
use crate::napi::sys::*;
use crate::napi::{Ctx, Tagged};

/// A queue and the guest memory it works on.
pub struct QueueHandle {
    pub(crate) queue: Queue,
    pub(crate) memory: Rc<Memory>,
}

impl Tagged for QueueHandle {
    const TAG: napi_type_tag = napi_type_tag { lower: 0x7669_7274_696f_2d71, upper: 0x7175_6575_6500_0001 };
    const EXPECTED: &'static str = "a queue handle";
}

/// Words in a serialised `QueueState`.
pub const STATE_WORDS: usize = 12;

fn queue(ctx: &Ctx) -> Result<&mut QueueHandle> {
    ctx.external::<QueueHandle>(0, "queue")
}

/// `queueNew(memory, maxSize)`.
pub fn queue_new(ctx: &Ctx) -> Result<napi_value> {
    let memory = Rc::clone(&ctx.external::<MemoryHandle>(0, "memory")?.0);
    // Any integer number is a size the crate judges: above u16 it is InvalidMaxSize, not an argument error.
    let max_size = u16::try_from(ctx.uint(1, "maxSize", (1 << 53) - 1)?).map_err(|_| virtio_queue::Error::InvalidMaxSize)?;
    let queue = Queue::new(max_size)?;
    ctx.new_external(QueueHandle { queue, memory })
}

/// `queueFromState(memory, state: Uint32Array(12))`, validated by `Queue::try_from`.
pub fn queue_from_state(ctx: &Ctx) -> Result<napi_value> {
    let memory = Rc::clone(&ctx.external::<MemoryHandle>(0, "memory")?.0);
    let w = ctx.u32_slice(1, "state")?;
    if w.len() < STATE_WORDS {
        return Err(Error::range("state", format!("expected {STATE_WORDS} words")));
    }
    let u16_field = |i: usize, name: &'static str| {
        u16::try_from(w[i]).map_err(|_| Error::range(name, format!("{} does not fit in 16 bits", w[i])))
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
    ctx.new_external(QueueHandle { queue, memory })
}

/// `queueState(queue, out: Uint32Array(12))`.
pub fn queue_state(ctx: &Ctx) -> Result<napi_value> {
    let s = queue(ctx)?.queue.state();
    let out = ctx.u32_slice(1, "out")?;
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
    let q = queue(ctx)?;
    let valid = q.queue.is_valid(q.memory.get()?);
    ctx.boolean(valid)
}

pub fn reset(ctx: &Ctx) -> Result<napi_value> {
    queue(ctx)?.queue.reset();
    Ok(ctx.undefined())
}

pub fn max_size(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.queue.max_size() as f64)
}

pub fn size(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.queue.size() as f64)
}

/// Uses `try_set_size`: an invalid size throws `InvalidSize` instead of being ignored.
pub fn set_size(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    // As for maxSize: an integer above u16 is an InvalidSize, like any other size above maxSize.
    let size = u16::try_from(ctx.uint(1, "size", (1 << 53) - 1)?).map_err(|_| virtio_queue::Error::InvalidSize)?;
    q.queue.try_set_size(size)?;
    Ok(ctx.undefined())
}

pub fn ready(ctx: &Ctx) -> Result<napi_value> {
    ctx.boolean(queue(ctx)?.queue.ready())
}

pub fn set_ready(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
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
    let q = queue(ctx)?;
    let addr = combine(ctx, q.queue.desc_table())?;
    q.queue.try_set_desc_table_address(addr)?;
    Ok(ctx.undefined())
}

pub fn set_avail_ring_address(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let addr = combine(ctx, q.queue.avail_ring())?;
    q.queue.try_set_avail_ring_address(addr)?;
    Ok(ctx.undefined())
}

pub fn set_used_ring_address(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let addr = combine(ctx, q.queue.used_ring())?;
    q.queue.try_set_used_ring_address(addr)?;
    Ok(ctx.undefined())
}

pub fn set_event_idx(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    q.queue.set_event_idx(ctx.bool(1, "enabled")?);
    Ok(ctx.undefined())
}

pub fn event_idx_enabled(ctx: &Ctx) -> Result<napi_value> {
    ctx.boolean(queue(ctx)?.queue.event_idx_enabled())
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
    let q = queue(ctx)?;
    let order = ordering(ctx, 1)?;
    let idx = q.queue.avail_idx(q.memory.get()?, order)?;
    ctx.number(idx.0 as f64)
}

pub fn used_idx(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let order = ordering(ctx, 1)?;
    let idx = q.queue.used_idx(q.memory.get()?, order)?;
    ctx.number(idx.0 as f64)
}

pub fn add_used(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let head = ctx.u16(1, "headIndex")?;
    let len = ctx.u32(2, "len")?;
    q.queue.add_used(q.memory.get()?, head, len)?;
    // Called per chain on the iterator path: skip napi_get_undefined.
    Ok(ctx.returns_undefined())
}

pub fn enable_notification(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let more = q.queue.enable_notification(q.memory.get()?)?;
    ctx.boolean(more)
}

pub fn disable_notification(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    q.queue.disable_notification(q.memory.get()?)?;
    Ok(ctx.undefined())
}

pub fn needs_notification(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let needed = q.queue.needs_notification(q.memory.get()?)?;
    ctx.boolean(needed)
}

pub fn next_avail(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.queue.next_avail() as f64)
}

pub fn next_used(ctx: &Ctx) -> Result<napi_value> {
    ctx.number(queue(ctx)?.queue.next_used() as f64)
}

pub fn set_next_avail(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    q.queue.set_next_avail(ctx.u16(1, "nextAvail")?);
    Ok(ctx.undefined())
}

pub fn set_next_used(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    q.queue.set_next_used(ctx.u16(1, "nextUsed")?);
    Ok(ctx.undefined())
}

pub fn go_to_previous_position(ctx: &Ctx) -> Result<napi_value> {
    queue(ctx)?.queue.go_to_previous_position();
    Ok(ctx.undefined())
}

/// `popChains(queue, out: Uint32Array, maxChains) -> count` (layout in `batch`).
pub fn pop_chains(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let out = ctx.u32_slice(1, "out")?;
    let max = ctx.uint(2, "maxChains", u16::MAX as u64)? as usize;
    let n = batch::pop_chains(&mut q.queue, q.memory.get()?, out, max)?;
    ctx.number(n as f64)
}

/// `addUsedBatch(queue, pairs: Uint32Array, count)`: `count` (head, len) pairs.
pub fn add_used_batch(ctx: &Ctx) -> Result<napi_value> {
    let q = queue(ctx)?;
    let pairs = ctx.u32_slice(1, "pairs")?;
    let count = ctx.u32(2, "count")? as usize;
    let mem = q.memory.get()?;
    batch::add_used(&mut q.queue, mem, pairs, count).map_err(|(i, e)| match e {
        Error::Queue(inner) => Error::BatchEntry { index: i, source: inner },
        e => e,
    })?;
    Ok(ctx.undefined())
}
