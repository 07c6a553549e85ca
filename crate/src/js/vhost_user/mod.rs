//! The JavaScript side of the vhost-user backend (`virtio-queue/vhost-user`),
//! Linux only: the exports the TypeScript layer calls, over the protocol core
//! in `crate::vhost_user`.
//!
//! - `host`: the TypeScript dispatcher the backend calls, and how;
//! - `device`: `JsDevice`, the core's `Device` over that dispatcher;
//! - `kick`: a vring's kick eventfd watched on the main loop;
//! - `views`: frontend-shared guest memory as a memory handle and Buffers;
//! - `server`: one backend's state on the main thread, its wake-ups,
//!   close and teardown.
//!
//! The vrings' queues are made by the TypeScript layer (`Queue.fromState`
//! over the memory handle this module gives it), so they sit in the
//! environment's queue table like any other queue.

mod device;
mod host;
mod kick;
mod server;
mod views;

use super::Ctx;
use crate::engine::{Error, Result};
use crate::napi::Value;
use device::{NotifierHandle, Params};
use host::Host;
use server::{Inner, ServerHandle};

/// One line on stderr, for what no JavaScript caller can be told.
pub(crate) fn log(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "vhost-user: {msg}");
}

/// `vhostUserStart(path, features: bigint, numQueues, maxQueueSize, maxView, dispatch)`:
/// binds the socket and serves; returns the backend handle.
pub fn start(ctx: &Ctx) -> Result<Value> {
    let path = ctx.string_of(ctx.arg(0));
    if path.is_empty() || path.contains('\0') {
        return Err(Error::range(
            "socketPath",
            "a non-empty path without NUL characters",
        ));
    }
    let params = Params {
        features: ctx.u64_arg(1, "features")?,
        num_queues: ctx.uint_arg(2, "numQueues", u16::MAX as u64)? as u16,
        max_queue_size: ctx.uint_arg(3, "maxQueueSize", u16::MAX as u64)? as u16,
        max_view: ctx.uint_arg(4, "maxView", (1 << 53) - 1)?.max(4096) & !4095,
    };
    let host = Host::new(ctx.env(), ctx.arg(5))?;
    let inner = Inner::start(ctx.env(), &path, host, params)?;
    Ok(ctx.new_external(ServerHandle(inner))?)
}

/// `vhostUserClose(handle)`: stops listening and drops the frontend; the
/// dispatcher then gets `closed`.
pub fn close(ctx: &Ctx) -> Result<Value> {
    ctx.external_arg::<ServerHandle>(0, "backend")?.0.shutdown();
    Ok(ctx.undefined()?)
}

/// `vhostUserCompleteStop(handle, index, nextAvail)`: the device finished
/// the in-flight requests of a ring it was asked to stop.
pub fn complete_stop(ctx: &Ctx) -> Result<Value> {
    let inner = &ctx.external_arg::<ServerHandle>(0, "backend")?.0;
    let index = ctx.u16_arg(1, "index")?;
    let next = ctx.u16_arg(2, "nextAvail")?;
    Ok(ctx.boolean(inner.complete_stop(index, next))?)
}

/// `vhostUserNotify(notifier)`: writes the vring's call eventfd; false when
/// the frontend gave none.
pub fn notify(ctx: &Ctx) -> Result<Value> {
    let n = ctx.external_arg::<NotifierHandle>(0, "notifier")?;
    let signalled = n.0.signal().map_err(|e| Error::VhostUser {
        code: "VhostUserNotify",
        message: format!("writing the call eventfd failed: {e}"),
    })?;
    Ok(ctx.boolean(signalled)?)
}
