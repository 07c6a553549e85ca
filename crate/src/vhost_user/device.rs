//! What the backend needs from a device model, and what it tells it.
//!
//! The JavaScript glue implements `Device` over the user's device object; the
//! core never knows about JavaScript. Every method runs on the owner thread
//! (Node's main thread), one at a time.

use std::sync::Arc;

use virtio_queue::QueueState;

use super::error::Error;
use super::eventfd::{Notifier, VringFd};
use crate::engine::memory::GuestMem;

/// Everything a device needs to serve a vring.
#[derive(Debug)]
pub struct VringStart {
    pub index: u16,
    /// Build a virtio-queue `Queue` with `Queue::try_from(state)`: size,
    /// guest addresses, `next_avail` (from `SET_VRING_BASE`), `next_used`
    /// (read from the used ring), event idx as negotiated, ready.
    pub state: QueueState,
    /// The guest memory the ring and its buffers live in (the current table;
    /// `memory_changed` brings the next one).
    pub memory: Arc<GuestMem>,
    /// The kick eventfd: watch it for readability (`uv_poll`), then
    /// `drain_ready()` it and process the ring. The Arc keeps the fd open
    /// until the device drops it, after `vring_stopped`.
    pub kick: Arc<VringFd>,
    /// Signal used buffers here (when `needs_notification` says so). The
    /// frontend may swap the fd behind it at any time.
    pub call: Arc<Notifier>,
}

/// Why a ring stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `GET_VRING_BASE`: the frontend wants the ring back, and where it
    /// stopped. The reply waits until the device says where.
    GetVringBase,
    /// `SET_VRING_ENABLE` 0. The acknowledgement waits likewise.
    Disabled,
    /// `RESET_OWNER`/`RESET_DEVICE`.
    Reset,
    /// The frontend disconnected (or was dropped for a protocol error).
    Disconnected,
}

/// A device's answer to `vring_stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Stopped; this is the next available index it would have processed
    /// (the queue's `next_avail`).
    Done { next_avail: u16 },
    /// The device still holds chains (I/O in flight). It finishes them and
    /// then calls `Backend::complete_stop`; the frontend's reply waits until
    /// then. For `Reset` and `Disconnected` nobody waits: the device just
    /// stops touching the ring once its in-flight requests end.
    Pending,
}

/// A device model served over vhost-user.
pub trait Device {
    /// Device-specific feature bits (0 to 23, 50 to 63) the device offers.
    /// The backend adds the transport bits it implements:
    /// `VIRTIO_F_VERSION_1`, `VIRTIO_RING_F_INDIRECT_DESC`,
    /// `VIRTIO_RING_F_EVENT_IDX` and `VHOST_USER_F_PROTOCOL_FEATURES`; other
    /// transport bits (24 to 49) are dropped.
    fn features(&self) -> u64;

    /// How many vrings the device serves (1 to 256).
    fn num_queues(&self) -> u16;

    /// The largest ring size the device accepts (a power of two, at most 32768).
    fn max_queue_size(&self) -> u16;

    /// The configuration space (`GET_CONFIG` reads from it).
    fn config(&self) -> Vec<u8> {
        Vec::new()
    }

    /// A `SET_CONFIG` write; the error refuses it.
    fn write_config(&mut self, offset: u32, data: &[u8]) -> Result<(), String> {
        let _ = (offset, data);
        Err("the configuration space is read-only".into())
    }

    /// `SET_FEATURES`: the features the driver accepted.
    fn features_acked(&mut self, features: u64) {
        let _ = features;
    }

    /// The memory table changed (`None`: no memory any more). Running rings
    /// keep their guest addresses; their queues now read this memory. Views
    /// into the old memory stay valid (the mappings live until the last
    /// `Arc` goes) but no longer show the guest's RAM if the frontend moved it.
    fn memory_changed(&mut self, memory: Option<&Arc<GuestMem>>) {
        let _ = memory;
    }

    /// Start serving a ring; an error refuses the request that started it.
    fn vring_started(&mut self, vring: VringStart) -> Result<(), String>;

    /// Stop serving ring `index` (stop watching its kick fd).
    fn vring_stopped(&mut self, index: u16, reason: StopReason) -> Stopped;

    /// A frontend connected.
    fn connected(&mut self) {}

    /// The frontend went away: `None` when it closed the connection between
    /// two messages, else why the connection was dropped. The rings are
    /// already stopped and the memory gone; the backend listens again.
    fn disconnected(&mut self, error: Option<&Error>) {
        if let Some(e) = error {
            log(&format!("frontend dropped: {e}"));
        }
    }

    /// A request was refused; the connection stays up.
    fn refused(&mut self, error: &Error) {
        log(&error.to_string());
    }

    /// `RESET_OWNER`/`RESET_DEVICE`, and after a disconnect: back to the
    /// state before any frontend. Persistent state (a disk) is the device's.
    fn reset(&mut self) {}

    /// The listener stopped (after `Server::shutdown`); no more calls follow.
    fn closed(&mut self) {}
}

/// Default logging: one line on stderr; a failing write is ignored.
pub(crate) fn log(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "vhost-user: {msg}");
}
