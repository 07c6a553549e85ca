//! Work on libuv's threadpool (Node-API async work): how a call from
//! JavaScript runs something that may block for a while, such as a system
//! call over a large range, without blocking the event loop.
//!
//! A `Task` is moved to a threadpool thread, where `execute` runs without
//! any Node-API access; its output comes back to the environment's thread,
//! where `settle` turns it into the Promise's value or rejection. A panic in
//! either is caught: `settle` then receives `None` (or the Promise is
//! rejected with the layer's own error), and nothing unwinds into Node.
//!
//! A `Work` is the same without a Promise: its `complete` runs on the
//! environment's thread, in the callback scope Node opens for async work's
//! completion, and does what it likes there (calls a function, say).
//! Node calls it even when the environment is being torn down (the
//! teardown waits for work in flight), when JavaScript can no longer run.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use super::env::{check, Env, Value};
use super::error::{Error, ErrorClass, Result};
use super::sys::*;

/// How a Promise is settled.
pub enum Settled {
    Resolve(Value),
    Reject(Value),
}

/// Work for the threadpool, and how its outcome settles the Promise.
pub trait Task: Send + Sized + 'static {
    type Output: Send + 'static;

    /// Runs on a threadpool thread: no Node-API call, no JavaScript value.
    fn execute(&mut self) -> Self::Output;

    /// Runs on the environment's thread with `execute`'s output, or `None` when
    /// `execute` panicked or the work was cancelled.
    fn settle(env: Env, output: Option<Self::Output>) -> Result<Settled>;
}

/// Work for the threadpool whose completion is the implementer's own.
pub trait Work: Send + Sized + 'static {
    type Output: Send + 'static;

    /// Runs on a threadpool thread: no Node-API call, no JavaScript value.
    fn execute(&mut self) -> Self::Output;

    /// Runs on the environment's thread with `execute`'s output, or `None`
    /// when `execute` panicked or the work was cancelled. Node has opened a
    /// handle scope and a callback scope; calling JavaScript may fail (the
    /// environment is being torn down). A panic here is caught.
    fn complete(self, env: Env, output: Option<Self::Output>);
}

/// What a `Work`'s data points to.
struct Running<W: Work> {
    work: W,
    output: Option<W::Output>,
    handle: napi_async_work,
}

impl Env {
    /// Queues `work` on libuv's threadpool; its `complete` runs later on this
    /// environment's thread. `resource` is the async resource (what
    /// async_hooks reports: an existing object, so none is made per call, or
    /// a null value, and Node makes one) and `name` its type, a string. On
    /// failure the work comes back unrun.
    pub fn queue_work<W: Work>(
        self,
        resource: Value,
        name: Value,
        work: W,
    ) -> std::result::Result<(), (Error, W)> {
        let running = Box::into_raw(Box::new(Running {
            work,
            output: None,
            handle: null_mut(),
        }));
        let mut handle = null_mut();
        // SAFETY: `running` stays valid until `finish` frees it (or below, on failure).
        let created = check(unsafe {
            napi_create_async_work(
                self.raw(),
                resource.0,
                name.0,
                Some(run::<W>),
                Some(finish::<W>),
                running as *mut c_void,
                &mut handle,
            )
        });
        if let Err(e) = created {
            // SAFETY: not handed to Node; still ours.
            let running = unsafe { Box::from_raw(running) };
            return Err((e, running.work));
        }
        // SAFETY: nothing else has seen `running` yet.
        unsafe { (*running).handle = handle };
        // SAFETY: `handle` was just created on this environment.
        if let Err(e) = check(unsafe { napi_queue_async_work(self.raw(), handle) }) {
            // SAFETY: never queued, so neither callback will run: free both here.
            let running = unsafe {
                napi_delete_async_work(self.raw(), handle);
                Box::from_raw(running)
            };
            return Err((e, running.work));
        }
        Ok(())
    }
}

/// The threadpool side of a `Work`.
unsafe extern "C" fn run<W: Work>(_env: napi_env, data: *mut c_void) {
    // SAFETY: `data` is the Running given to napi_create_async_work; between queuing
    // and `finish`, only this function uses it.
    let running = unsafe { &mut *(data as *mut Running<W>) };
    running.output = catch_unwind(AssertUnwindSafe(|| running.work.execute())).ok();
}

/// Back on the environment's thread: hands the output to `complete`, frees the work.
unsafe extern "C" fn finish<W: Work>(raw_env: napi_env, status: napi_status, data: *mut c_void) {
    // SAFETY: `data` is the Running leaked in `queue_work`; this is its last use.
    let running = unsafe { Box::from_raw(data as *mut Running<W>) };
    // SAFETY: Node calls this with the environment the work was created on, on its thread.
    let env = unsafe { Env::from_raw(raw_env) };
    let Running {
        work,
        output,
        handle,
    } = *running;
    let output = if status == NAPI_CANCELLED {
        None
    } else {
        output
    };
    let _ = catch_unwind(AssertUnwindSafe(|| work.complete(env, output)));
    // SAFETY: the work was created on this environment and has completed.
    unsafe { napi_delete_async_work(raw_env, handle) };
}

/// A `Task` as a `Work` whose completion settles its Promise.
struct Settling<T: Task> {
    task: T,
    deferred: Deferred,
}

/// The Promise's settling handle.
struct Deferred(napi_deferred);

// SAFETY: the handle is only used on the environment's thread (made in
// `spawn_promise`, used in `complete`); the threadpool thread touches only the task.
unsafe impl Send for Deferred {}

impl<T: Task> Work for Settling<T> {
    type Output = T::Output;

    fn execute(&mut self) -> T::Output {
        self.task.execute()
    }

    fn complete(self, env: Env, output: Option<T::Output>) {
        let settled = match catch_unwind(AssertUnwindSafe(|| T::settle(env, output))) {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => rejection(env, |env| e.throw(env)).map(Settled::Reject),
            Err(p) => rejection(env, |env| {
                let message = format!(
                    "a Rust panic while settling a Promise: {}",
                    panic_message(&p)
                );
                env.throw_error(ErrorClass::Error, "ERR_PANIC", &message)
            })
            .map(Settled::Reject),
        };
        let deferred = self.deferred.0;
        // SAFETY: `deferred` came from napi_create_promise and is settled exactly once.
        // If even making the rejection failed, the Promise stays pending.
        unsafe {
            match settled {
                Ok(Settled::Resolve(v)) => napi_resolve_deferred(env.raw(), deferred, v.0),
                Ok(Settled::Reject(v)) => napi_reject_deferred(env.raw(), deferred, v.0),
                Err(_) => NAPI_OK,
            }
        };
    }
}

impl Env {
    /// Queues `task` on libuv's threadpool and returns the Promise its
    /// `settle` will settle. `name` is the async resource's type (what
    /// async_hooks reports).
    pub fn spawn_promise<T: Task>(self, name: &str, task: T) -> Result<Value> {
        let (mut deferred, mut promise) = (null_mut(), null_mut());
        // SAFETY: plain Node-API call on this environment's thread.
        check(unsafe { napi_create_promise(self.raw(), &mut deferred, &mut promise) })?;
        let name = self.string(name)?;
        let work = Settling {
            task,
            deferred: Deferred(deferred),
        };
        // No resource object of the caller's: Node makes one. If queuing fails, the
        // Promise stays pending, unreachable.
        self.queue_work(Value(null_mut()), name, work)
            .map_err(|(e, _)| e)?;
        Ok(Value(promise))
    }
}

/// A rejection value: the exception already pending (a failed Node-API step
/// may leave one), else the one `throw` throws, taken back.
fn rejection(env: Env, throw: impl FnOnce(Env) -> Result<()>) -> Result<Value> {
    if let Some(pending) = env.take_exception()? {
        return Ok(pending);
    }
    throw(env)?;
    env.take_exception()?
        .ok_or(Error::Status(NAPI_PENDING_EXCEPTION))
}

fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
