//! libuv handles on the event loop Node-API gives an environment: an async
//! handle (wakes the loop from any thread) and a poll handle (a file
//! descriptor's readiness). The node binary exports libuv's symbols; they are
//! declared here by hand, and only what the layer uses. Handle memory is sized
//! with `uv_handle_size`, so no libuv struct layout is assumed.
//!
//! Each handle owns a Rust callback, run on the loop's thread with panics
//! caught; `close` hands the handle to `uv_close`, and the memory and the
//! callback are freed in libuv's close callback (never before: libuv may
//! still touch the handle until then).

#![allow(non_camel_case_types)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use super::env::{check, Env};
use super::error::{Error, Result};
use super::sys::{napi_get_uv_event_loop, uv_loop_t};

type uv_handle_t = c_void;
type uv_close_cb = Option<unsafe extern "C" fn(handle: *mut uv_handle_t)>;
type uv_async_cb = Option<unsafe extern "C" fn(handle: *mut uv_handle_t)>;
type uv_poll_cb =
    Option<unsafe extern "C" fn(handle: *mut uv_handle_t, status: c_int, events: c_int)>;

/// `uv_handle_type` values (stable across libuv 1.x).
const UV_ASYNC: c_int = 1;
const UV_POLL: c_int = 8;
/// `uv_poll_event`.
const UV_READABLE: c_int = 1;

#[allow(non_camel_case_types)]
unsafe extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_handle_set_data(handle: *mut uv_handle_t, data: *mut c_void);
    fn uv_handle_get_data(handle: *const uv_handle_t) -> *mut c_void;
    fn uv_close(handle: *mut uv_handle_t, close_cb: uv_close_cb);
    fn uv_ref(handle: *mut uv_handle_t);
    fn uv_unref(handle: *mut uv_handle_t);
    fn uv_async_init(l: *mut uv_loop_t, handle: *mut uv_handle_t, cb: uv_async_cb) -> c_int;
    fn uv_async_send(handle: *mut uv_handle_t) -> c_int;
    fn uv_poll_init(l: *mut uv_loop_t, handle: *mut uv_handle_t, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut uv_handle_t, events: c_int, cb: uv_poll_cb) -> c_int;
}

/// An environment's libuv loop.
#[derive(Clone, Copy)]
pub struct Loop(*mut uv_loop_t);

impl Env {
    /// The event loop of this environment's thread.
    pub fn uv_loop(self) -> Result<Loop> {
        let mut l = std::ptr::null_mut();
        // SAFETY: plain Node-API call.
        check(unsafe { napi_get_uv_event_loop(self.raw(), &mut l) })?;
        Ok(Loop(l))
    }
}

/// What a handle's data pointer holds: its callback, and what to run once closed.
struct Data<F> {
    callback: F,
    on_close: Option<Box<dyn FnOnce()>>,
    layout: Layout,
}

/// Allocates zeroed memory for a handle of `kind`.
fn alloc_handle(kind: c_int) -> Result<(*mut uv_handle_t, Layout)> {
    // SAFETY: a libuv query with a valid handle type.
    let size = unsafe { uv_handle_size(kind) };
    let layout = Layout::from_size_align(size.max(1), 16).map_err(|_| Error::Status(-1))?;
    // SAFETY: non-zero size.
    let p = unsafe { alloc_zeroed(layout) } as *mut uv_handle_t;
    if p.is_null() {
        return Err(Error::Status(-1));
    }
    Ok((p, layout))
}

/// libuv's close callback: frees the handle's data and memory, then runs `on_close`.
unsafe extern "C" fn closed<F>(handle: *mut uv_handle_t) {
    // SAFETY: the data is the Box<Data<F>> set at init; libuv calls this once.
    let data = unsafe { Box::from_raw(uv_handle_get_data(handle) as *mut Data<F>) };
    let Data {
        callback,
        on_close,
        layout,
    } = *data;
    drop(callback);
    // SAFETY: allocated by alloc_handle with this layout; libuv no longer uses it.
    unsafe { dealloc(handle as *mut u8, layout) };
    if let Some(f) = on_close {
        let _ = catch_unwind(AssertUnwindSafe(f));
    }
}

/// Runs the handle's callback with panics caught (none may unwind into libuv).
unsafe fn data_of<F>(handle: *mut uv_handle_t) -> *mut Data<F> {
    // SAFETY: set at init, freed only in `closed`.
    unsafe { uv_handle_get_data(handle) as *mut Data<F> }
}

/// Common to both handle kinds: ref/unref and close.
struct Raw<F> {
    h: *mut uv_handle_t,
    _f: std::marker::PhantomData<F>,
}

impl<F> Raw<F> {
    /// Allocates a handle of `kind` holding `callback`, initialised by `init`
    /// (which returns libuv's status).
    fn new(kind: c_int, callback: F, init: impl FnOnce(*mut uv_handle_t) -> c_int) -> Result<Self> {
        let (h, layout) = alloc_handle(kind)?;
        let status = init(h);
        if status != 0 {
            // SAFETY: the init failed, so libuv does not know the handle.
            unsafe { dealloc(h as *mut u8, layout) };
            return Err(Error::Status(status));
        }
        let data = Box::into_raw(Box::new(Data {
            callback,
            on_close: None,
            layout,
        }));
        // SAFETY: an initialised handle; the data lives until `closed`.
        unsafe { uv_handle_set_data(h, data as *mut c_void) };
        Ok(Raw {
            h,
            _f: std::marker::PhantomData,
        })
    }

    fn set_ref(&self, referenced: bool) {
        // SAFETY: an open handle (close consumes the owner).
        unsafe {
            if referenced {
                uv_ref(self.h)
            } else {
                uv_unref(self.h)
            }
        }
    }

    fn close(self, then: Option<Box<dyn FnOnce()>>) {
        // SAFETY: an open handle, closed once (close consumes the owner); the
        // data pointer is valid until `closed` runs.
        unsafe {
            (*data_of::<F>(self.h)).on_close = then;
            uv_close(self.h, Some(closed::<F>));
        }
    }
}

/// A `uv_async_t`: `Waker::wake` from any thread makes the loop run the
/// callback (wake-ups may coalesce into one run).
pub struct AsyncHandle<F: FnMut() + 'static> {
    raw: Raw<F>,
    slot: Arc<Mutex<Option<SendPtr>>>,
}

/// The handle pointer, shareable with other threads only through `Waker`.
struct SendPtr(*mut uv_handle_t);
// SAFETY: only `uv_async_send`, which libuv documents as thread-safe, is
// called through it, and only while the handle is open (the slot is cleared
// under the same lock before `uv_close`).
unsafe impl Send for SendPtr {}

/// Wakes an `AsyncHandle` from any thread; does nothing once it is closed.
#[derive(Clone)]
pub struct Waker(Arc<Mutex<Option<SendPtr>>>);

impl Waker {
    pub fn wake(&self) {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = &*slot {
            // SAFETY: the handle is open while the slot holds it (see SendPtr).
            unsafe { uv_async_send(p.0) };
        }
    }
}

unsafe extern "C" fn async_cb<F: FnMut()>(handle: *mut uv_handle_t) {
    // SAFETY: the handle's data, alive until `closed`; libuv runs callbacks
    // one at a time on the loop thread.
    let data = unsafe { &mut *data_of::<F>(handle) };
    let _ = catch_unwind(AssertUnwindSafe(|| (data.callback)()));
}

impl<F: FnMut() + 'static> AsyncHandle<F> {
    /// An async handle on `l` running `callback` when woken. It keeps the loop
    /// alive until closed or unreferenced.
    pub fn new(l: Loop, callback: F) -> Result<Self> {
        // SAFETY: `h` is fresh handle memory of the size libuv asked for.
        let raw = Raw::new(UV_ASYNC, callback, |h| unsafe {
            uv_async_init(l.0, h, Some(async_cb::<F>))
        })?;
        let slot = Arc::new(Mutex::new(Some(SendPtr(raw.h))));
        Ok(AsyncHandle { raw, slot })
    }

    pub fn waker(&self) -> Waker {
        Waker(self.slot.clone())
    }

    /// Whether the handle keeps the loop (and so the process) alive.
    pub fn set_ref(&self, referenced: bool) {
        self.raw.set_ref(referenced)
    }

    /// Closes the handle; wakers do nothing from now on. `then` runs on the
    /// loop once libuv is done with the handle.
    pub fn close(self, then: Option<Box<dyn FnOnce()>>) {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.raw.close(then)
    }
}

/// A `uv_poll_t` watching a file descriptor for readability.
pub struct PollHandle<F: FnMut(i32) + 'static> {
    raw: Raw<F>,
}

unsafe extern "C" fn poll_cb<F: FnMut(i32)>(
    handle: *mut uv_handle_t,
    status: c_int,
    _events: c_int,
) {
    // SAFETY: as in `async_cb`.
    let data = unsafe { &mut *data_of::<F>(handle) };
    let _ = catch_unwind(AssertUnwindSafe(|| (data.callback)(status)));
}

impl<F: FnMut(i32) + 'static> PollHandle<F> {
    /// Watches `fd` for readability on `l`; `callback` gets libuv's status (0,
    /// or a negative error). `fd` must stay open until the handle is closed.
    pub fn readable(l: Loop, fd: i32, callback: F) -> Result<Self> {
        // SAFETY: fresh handle memory; the caller keeps `fd` open.
        let raw = Raw::new(UV_POLL, callback, |h| unsafe { uv_poll_init(l.0, h, fd) })?;
        // SAFETY: an initialised poll handle.
        let status = unsafe { uv_poll_start(raw.h, UV_READABLE, Some(poll_cb::<F>)) };
        if status != 0 {
            raw.close(None);
            return Err(Error::Status(status));
        }
        Ok(PollHandle { raw })
    }

    pub fn set_ref(&self, referenced: bool) {
        self.raw.set_ref(referenced)
    }

    /// Stops watching and closes the handle (`uv_close` stops it); `then`
    /// runs once libuv is done with it.
    pub fn close(self, then: Option<Box<dyn FnOnce()>>) {
        self.raw.close(then)
    }
}
