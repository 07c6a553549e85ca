//! One listening backend as the main thread holds it: the core's `Server`
//! (protocol thread), the `Backend<JsDevice>` state, and the `Mailbox` that
//! carries the protocol thread's jobs to the main loop, woken by a
//! `uv_async_t`.
//!
//! Liveness: the async handle is referenced (it keeps the process alive)
//! while the backend listens, like a listening `net.Server`; `close()` stops
//! the listener, the core then sends `closed` as its last job, and the async
//! handle is closed: nothing of the backend keeps the loop alive afterwards.
//! Kick watches are never referenced.
//!
//! Teardown (the environment ends without `close()`): an async cleanup hook
//! shuts the listener down without waiting for its thread, closes the mailbox
//! (so the protocol thread sees the owner gone instead of waiting for it),
//! drops the backend (closing the kick watches) and closes the async handle,
//! telling Node it is done from libuv's close callback. No thread is joined
//! on the main thread.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::device::{JsDevice, Params};
use super::host::Host;
use crate::engine::{Error, Result};
use crate::napi::{AsyncCleanupHook, AsyncHandle, Env, HandleScope, Tagged, TypeTag};
use crate::vhost_user::{Backend, Executor, Mailbox, Server};

type Wake = Box<dyn FnMut()>;

pub struct Inner {
    env: Env,
    host: Rc<Host>,
    backend: RefCell<Option<Backend<JsDevice>>>,
    mailbox: Arc<Mailbox<Backend<JsDevice>>>,
    server: RefCell<Option<Server>>,
    wake: RefCell<Option<AsyncHandle<Wake>>>,
    cleanup: RefCell<Option<AsyncCleanupHook>>,
}

/// The handle JavaScript holds.
pub struct ServerHandle(pub Rc<Inner>);

impl Tagged for ServerHandle {
    const TAG: TypeTag = TypeTag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x7668_6f73_7400_0003,
    };
    const EXPECTED: &'static str = "a vhost-user backend handle";
}

fn core_error(e: crate::vhost_user::Error) -> Error {
    Error::VhostUser {
        code: e.code(),
        message: e.to_string(),
    }
}

impl Inner {
    /// Binds `path` and starts serving `host`'s device.
    pub fn start(env: Env, path: &str, host: Host, params: Params) -> Result<Rc<Inner>> {
        let host = Rc::new(host);
        let backend = Backend::new(JsDevice::new(Rc::clone(&host), params)).map_err(core_error)?;
        let slot: Rc<RefCell<Option<Rc<Inner>>>> = Rc::new(RefCell::new(None));
        let s = Rc::clone(&slot);
        let wake = AsyncHandle::new(
            env.uv_loop()?,
            Box::new(move || {
                let inner = s.borrow().clone();
                if let Some(inner) = inner {
                    inner.run_jobs();
                }
            }) as Wake,
        )?;
        let waker = wake.waker();
        let mailbox = Arc::new(Mailbox::new(move || waker.wake()));
        let inner = Rc::new(Inner {
            env,
            host,
            backend: RefCell::new(Some(backend)),
            mailbox: Arc::clone(&mailbox),
            server: RefCell::new(None),
            wake: RefCell::new(Some(wake)),
            cleanup: RefCell::new(None),
        });
        match Server::start::<JsDevice, _>(path, mailbox) {
            Ok(server) => *inner.server.borrow_mut() = Some(server),
            Err(e) => {
                inner.release(None);
                return Err(core_error(e));
            }
        }
        *slot.borrow_mut() = Some(Rc::clone(&inner));
        let weak = Rc::downgrade(&inner);
        let hook = env.add_async_cleanup_hook(move |done| match weak.upgrade() {
            Some(inner) => {
                inner.cleanup.borrow_mut().take();
                if let Some(s) = inner.server.borrow_mut().take() {
                    s.shutdown();
                }
                inner.release(Some(Box::new(move || done.finish())));
            }
            None => done.finish(),
        })?;
        *inner.cleanup.borrow_mut() = Some(hook);
        // The wake-up callback holds the Inner until the handle closes.
        drop(slot);
        Ok(inner)
    }

    /// Runs the protocol thread's jobs (in the async handle's callback).
    fn run_jobs(self: &Rc<Self>) {
        let Ok(_scope) = HandleScope::open(self.env) else {
            return;
        };
        let closed = {
            let Ok(mut b) = self.backend.try_borrow_mut() else {
                return;
            };
            let Some(b) = b.as_mut() else { return };
            self.mailbox.run_pending(b);
            self.host.closed.get()
        };
        if closed {
            // `closed` was the protocol thread's last job: release everything.
            self.server.borrow_mut().take();
            if let Some(h) = self.cleanup.borrow_mut().take() {
                h.remove();
            }
            self.release(None);
        }
    }

    /// Stops taking jobs, drops the backend (its kick watches close) and
    /// closes the async handle; `then` runs once libuv has closed it.
    fn release(&self, then: Option<Box<dyn FnOnce()>>) {
        self.mailbox.close();
        let backend = self
            .backend
            .try_borrow_mut()
            .ok()
            .and_then(|mut b| b.take());
        drop(backend);
        match self.wake.borrow_mut().take() {
            Some(h) => h.close(then),
            None => {
                if let Some(f) = then {
                    f()
                }
            }
        }
    }

    /// Stops listening and drops the frontend; `closed` follows through the mailbox.
    pub fn shutdown(&self) {
        if let Some(s) = &*self.server.borrow() {
            s.shutdown();
        }
    }

    /// Finishes a stop the device answered later (`queueStopped`'s promise):
    /// queued as a job, so it never re-enters a running backend call.
    pub fn complete_stop(&self, index: u16, next_avail: u16) -> bool {
        self.mailbox
            .execute(Box::new(move |b: &mut Backend<JsDevice>| {
                if let Err(e) = b.complete_stop(index, next_avail) {
                    crate::js::vhost_user::log(&e.to_string());
                }
            }))
    }
}
