//! Queue handles as plain numbers.
//!
//! Every queue call crosses the boundary with its queue, so finding the queue
//! must be cheap. A type-tagged external costs a tag lookup (a private
//! property read inside V8) on every call, about a third of a small call such
//! as `addUsed`. Instead, each environment keeps its queues in a table, and
//! JavaScript passes a number: the slot index and the slot's generation. A
//! number that names no live queue (stale, forged, or from another thread) is
//! refused, never dereferenced.
//!
//! The queue's lifetime is still tied to JavaScript's garbage collector: the
//! `Queue` object also holds an anchor, an external whose finalizer frees the
//! slot. A call holds its own strong reference to the queue for its duration,
//! so a slot freed meanwhile cannot free the queue under it.

use std::cell::RefCell;
use std::rc::Rc;

/// Slot indices take the low bits of a handle, the generation the rest.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// Generations wrap below 2^29, so a handle stays below 2^53 (an exact JavaScript number).
const GENERATION_MASK: u32 = (1 << 29) - 1;

/// A table of values addressed by generation-checked numbers.
pub struct Slots<T> {
    entries: Vec<Entry<T>>,
    free: Vec<usize>,
}

struct Entry<T> {
    generation: u32,
    value: Option<Rc<RefCell<T>>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    /// Stores `value`; returns its handle, or `None` when the table is full.
    pub fn insert(&mut self, value: T) -> Option<u64> {
        let index = match self.free.pop() {
            Some(i) => i,
            None if (self.entries.len() as u64) <= INDEX_MASK => {
                self.entries.push(Entry {
                    generation: 1,
                    value: None,
                });
                self.entries.len() - 1
            }
            None => return None,
        };
        let entry = &mut self.entries[index];
        entry.value = Some(Rc::new(RefCell::new(value)));
        Some((entry.generation as u64) << INDEX_BITS | index as u64)
    }

    /// The live value a handle names.
    pub fn get(&self, handle: u64) -> Option<Rc<RefCell<T>>> {
        let entry = self.entries.get((handle & INDEX_MASK) as usize)?;
        if entry.generation as u64 != handle >> INDEX_BITS {
            return None;
        }
        entry.value.clone()
    }

    /// Frees a handle's slot (nothing if it is not live); the value drops when
    /// the last call using it returns. The slot's next handle differs.
    pub fn remove(&mut self, handle: u64) -> Option<Rc<RefCell<T>>> {
        let index = (handle & INDEX_MASK) as usize;
        let entry = self.entries.get_mut(index)?;
        if entry.generation as u64 != handle >> INDEX_BITS || entry.value.is_none() {
            return None;
        }
        entry.generation = (entry.generation % GENERATION_MASK) + 1;
        self.free.push(index);
        entry.value.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_generation_checked() {
        let mut s = Slots::default();
        let a = s.insert("a").unwrap();
        let b = s.insert("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(*s.get(a).unwrap().borrow(), "a");
        let held = s.get(b).unwrap();
        assert!(s.remove(b).is_some());
        assert!(s.get(b).is_none(), "a removed handle is refused");
        assert!(s.remove(b).is_none(), "removing twice does nothing");
        assert_eq!(*held.borrow(), "b", "a call's reference outlives the slot");
        let c = s.insert("c").unwrap();
        assert_eq!(c & INDEX_MASK, b & INDEX_MASK, "the slot is reused");
        assert_ne!(c, b, "with a new generation");
        assert!(s.get(b).is_none());
        assert!(s.get(1 << 40).is_none());
        assert!(s.get(u64::MAX).is_none());
        assert!(c < 1 << 53);
    }
}
