//! Per-environment state (the main thread and every worker have their own):
//! the `VirtioQueueError` class errors are thrown as, the queue table and the
//! call area. The Node-API layer owns it for the environment's lifetime and
//! hands it to every call (`Ctx::state`). The state's types live here, below
//! the exported functions that use them.

use std::cell::RefCell;
use std::rc::Rc;

pub mod call_area;
pub mod memory;
pub mod queue;

use call_area::CallArea;
use queue::QueueTable;

use crate::engine::Result;
use crate::napi::{Env, Ref, Value};

#[derive(Default)]
pub struct Instance {
    error_class: RefCell<Option<Ref>>,
    pub queues: QueueTable,
    pub call_area: Rc<CallArea>,
}

impl Instance {
    /// Remembers the class errors are thrown as.
    pub fn set_error_class(&self, env: Env, class: Value) -> Result<()> {
        let class = Ref::new(env, class)?;
        // The previous class, if any, is released after the borrow ends.
        let _previous = self.error_class.replace(Some(class));
        Ok(())
    }

    /// The class errors are thrown as, once the JavaScript layer has set it.
    pub fn error_class(&self) -> Option<Value> {
        self.error_class.borrow().as_ref()?.value().ok()
    }
}
