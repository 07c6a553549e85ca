//! What the frontend has told the backend about one vring.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use virtio_queue::{Queue, QueueState, QueueT};

use super::eventfd::{Notifier, VringFd};
use crate::engine::memory::GuestMem;

/// A vring's parts, as guest physical addresses (translated from the
/// frontend's user addresses when `SET_VRING_ADDR` arrived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VringAddrs {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

/// One vring's state. Read it through the getters; the backend changes it.
#[derive(Debug, Default)]
pub struct Vring {
    pub(crate) size: Option<u16>,
    pub(crate) addrs: Option<VringAddrs>,
    pub(crate) base: u16,
    pub(crate) kick: Option<Arc<VringFd>>,
    pub(crate) call: Arc<Notifier>,
    pub(crate) err: Option<VringFd>,
    pub(crate) enabled: bool,
    pub(crate) started: bool,
}

impl Vring {
    /// The size the frontend set (`SET_VRING_NUM`).
    pub fn size(&self) -> Option<u16> {
        self.size
    }

    /// The ring addresses (`SET_VRING_ADDR`).
    pub fn addrs(&self) -> Option<VringAddrs> {
        self.addrs
    }

    /// The next available index to process: set by `SET_VRING_BASE`, updated
    /// when the device stops the ring.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// `SET_VRING_ENABLE`'s last word.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the device is serving the ring (it got `vring_started`, and
    /// not yet `vring_stopped`).
    pub fn started(&self) -> bool {
        self.started
    }

    /// The kick eventfd, when set.
    pub fn kick(&self) -> Option<&Arc<VringFd>> {
        self.kick.as_ref()
    }

    /// The call eventfd's slot.
    pub fn call(&self) -> &Arc<Notifier> {
        &self.call
    }

    /// Whether the frontend set an error eventfd.
    pub fn has_err(&self) -> bool {
        self.err.is_some()
    }

    /// Forgets the fds (the ring stopped: the frontend sends new ones before
    /// starting it again).
    pub(crate) fn forget_fds(&mut self) {
        self.kick = None;
        self.call.replace(None);
        self.err = None;
    }

    /// The state of a virtio-queue `Queue` serving this ring from `base`,
    /// with `next_used` read from the used ring; checked to be a valid queue
    /// whose parts lie in `mem`.
    pub fn queue_state(
        &self,
        max_size: u16,
        event_idx: bool,
        mem: &GuestMem,
    ) -> Result<QueueState, String> {
        let size = self.size.ok_or("the ring has no size (SET_VRING_NUM)")?;
        let a = self
            .addrs
            .ok_or("the ring has no addresses (SET_VRING_ADDR)")?;
        let mut state = QueueState {
            max_size,
            next_avail: self.base,
            next_used: 0,
            event_idx_enabled: event_idx,
            size,
            ready: true,
            desc_table: a.desc,
            avail_ring: a.avail,
            used_ring: a.used,
        };
        let queue = Queue::try_from(state).map_err(|e| format!("invalid ring: {e}"))?;
        if !queue.is_valid(mem) {
            return Err(format!(
                "the ring (size {size}, descriptors 0x{:x}, available 0x{:x}, used 0x{:x}) is not inside guest memory",
                a.desc, a.avail, a.used
            ));
        }
        state.next_used = queue
            .used_idx(mem, Ordering::Acquire)
            .map_err(|e| format!("cannot read the used index: {e}"))?
            .0;
        Ok(state)
    }
}
