//! Watching a vring's kick eventfd on the main loop: `uv_poll` says it is
//! readable, the counter is drained (`VringFd::drain_ready`), and the device's
//! kick handler runs, in the same loop callback: no thread hop, nothing
//! allocated per kick.

use std::rc::Rc;
use std::sync::Arc;

use super::host::{Event, Host};
use crate::engine::Result;
use crate::napi::{HandleScope, PollHandle};
use crate::vhost_user::{device::StopReason, VringFd};

type Callback = Box<dyn FnMut(i32)>;

/// One running vring's kick watch; dropping it stops watching.
pub struct KickWatch {
    poll: Option<PollHandle<Callback>>,
}

impl KickWatch {
    /// Starts watching `kick` for vring `index`.
    pub fn start(host: &Rc<Host>, index: u16, kick: Arc<VringFd>) -> Result<Self> {
        use std::os::unix::io::AsRawFd;
        let fd = kick.as_raw_fd();
        let h = Rc::clone(host);
        let callback: Callback = Box::new(move |status| {
            let Ok(_scope) = HandleScope::open(h.env) else {
                return;
            };
            if status < 0 {
                log(
                    index,
                    &format!("polling the kick eventfd failed (libuv status {status})"),
                );
                return;
            }
            if let Err(e) = kick.drain_ready() {
                log(index, &format!("reading the kick eventfd failed: {e}"));
                return;
            }
            let Ok(i) = h.env.number(index as f64) else {
                return;
            };
            if let Err(msg) = h.call(Event::Kick, &[i]) {
                log(index, &format!("the kick handler failed: {msg}"));
            }
        });
        let poll = PollHandle::readable(host.env.uv_loop()?, fd, callback)?;
        // The backend's async handle keeps the loop alive while it listens;
        // a ring's watch alone must not.
        poll.set_ref(false);
        Ok(KickWatch { poll: Some(poll) })
    }
}

impl Drop for KickWatch {
    fn drop(&mut self) {
        // The callback (and the kick fd's Arc in it) is freed in libuv's close callback.
        if let Some(p) = self.poll.take() {
            p.close(None);
        }
    }
}

/// The argument `StopReason` is given to JavaScript as.
pub fn reason_number(r: StopReason) -> f64 {
    match r {
        StopReason::GetVringBase => 0.0,
        StopReason::Disabled => 1.0,
        StopReason::Reset => 2.0,
        StopReason::Disconnected => 3.0,
    }
}

pub(super) fn log(index: u16, msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "vhost-user: vring {index}: {msg}");
}
