//! Queues as JavaScript holds them: each in its environment's table
//! (`engine::slots`), addressed by number, its slot freed by an anchor.

use std::cell::RefCell;
use std::rc::Rc;

use virtio_queue::Queue;

use super::memory::Memory;
use crate::engine::slots::Slots;
use crate::napi::Tagged;
use crate::napi::TypeTag;

/// A queue and the guest memory it works on.
pub struct QueueHandle {
    pub(crate) queue: Queue,
    pub(crate) memory: Rc<Memory>,
}

/// The queues of one environment; queue anchors share it.
pub type QueueTable = Rc<RefCell<Slots<QueueHandle>>>;

/// Frees its queue's slot when JavaScript collects the `Queue` holding it.
pub struct QueueAnchor {
    table: QueueTable,
    handle: u64,
}

impl QueueAnchor {
    /// The anchor of `handle` in `table`: dropping it frees the slot.
    pub fn new(table: &QueueTable, handle: u64) -> Self {
        QueueAnchor {
            table: Rc::clone(table),
            handle,
        }
    }
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
    const TAG: TypeTag = TypeTag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x7175_6575_6500_0002,
    };
    const EXPECTED: &'static str = "a queue anchor";
}
