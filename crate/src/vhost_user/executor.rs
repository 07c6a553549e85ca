//! Running backend work on the thread that owns the backend state.
//!
//! The protocol thread reads messages; the state (`Backend` and the device
//! in it) belongs to one owner thread, Node's main thread in the addon. An
//! `Executor` carries a job from the protocol thread to the owner, and a
//! `Reply` carries the answer back: two thread hops per control message, none
//! on the data path (kick fds are watched by the owner itself).

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Work for the owner of a `T`.
pub type Job<T> = Box<dyn FnOnce(&mut T) + Send>;

/// Delivers jobs to the owner thread of a `T`, in order.
pub trait Executor<T>: Send + Sync + 'static {
    /// Queues `job` to run on the owner thread. False when the owner takes no
    /// more work; the job is then dropped, and whoever waits on a `Reply` in
    /// it sees the owner gone.
    fn execute(&self, job: Job<T>) -> bool;
}

/// The answer to one job, sent from the owner thread (now, or later: a
/// `GET_VRING_BASE` reply waits for the device's in-flight requests).
#[derive(Debug)]
pub struct Reply<R>(SyncSender<R>);

impl<R> Reply<R> {
    pub fn send(self, value: R) {
        // The waiter may be gone (the protocol thread ended); nothing to do.
        let _ = self.0.send(value);
    }
}

/// Runs `f` on the owner and waits for its reply; `None` when the owner is
/// gone (or dropped the reply unanswered).
pub fn call<T: 'static, R, F>(executor: &dyn Executor<T>, f: F) -> Option<R>
where
    R: Send + 'static,
    F: FnOnce(&mut T, Reply<R>) + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    if !executor.execute(Box::new(move |t| f(t, Reply(tx)))) {
        return None;
    }
    rx.recv().ok()
}

/// The executor for an event-loop owner (the addon's): jobs wait in a queue,
/// `wake` tells the loop (libuv's `uv_async_send`, or a threadsafe function),
/// and the loop runs them with `run_pending`.
pub struct Mailbox<T> {
    jobs: Mutex<Option<VecDeque<Job<T>>>>,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl<T> Mailbox<T> {
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Self {
        Mailbox {
            jobs: Mutex::new(Some(VecDeque::new())),
            wake: Box::new(wake),
        }
    }

    /// Runs the queued jobs on `target` (call it on the owner thread when
    /// woken). Returns how many ran.
    pub fn run_pending(&self, target: &mut T) -> usize {
        let mut n = 0;
        loop {
            let job = match self.lock().as_mut().and_then(VecDeque::pop_front) {
                Some(job) => job,
                None => return n,
            };
            job(target);
            n += 1;
        }
    }

    /// Takes no more jobs and drops the queued ones (their waiters see the
    /// owner gone). Call it before the owner goes away.
    pub fn close(&self) {
        let dropped = self.lock().take();
        drop(dropped);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<VecDeque<Job<T>>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: 'static> Executor<T> for Mailbox<T> {
    fn execute(&self, job: Job<T>) -> bool {
        match self.lock().as_mut() {
            Some(q) => q.push_back(job),
            None => return false,
        }
        (self.wake)();
        true
    }
}

/// An owner that is a thread of its own, holding the `T` it makes (for
/// native users and tests). It ends when the `OwnerThread` is dropped.
pub struct OwnerThread<T> {
    tx: Mutex<Option<mpsc::Sender<Job<T>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: 'static> OwnerThread<T> {
    pub fn spawn(make: impl FnOnce() -> T + Send + 'static) -> std::io::Result<Arc<Self>> {
        let (tx, rx): (_, Receiver<Job<T>>) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vhost-user-owner".into())
            .spawn(move || {
                let mut target = make();
                for job in rx {
                    job(&mut target);
                }
            })?;
        Ok(Arc::new(OwnerThread {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Runs `f` on the owner thread and returns its result. Panics if the
    /// thread stopped (a convenience for tests and native callers; the addon
    /// uses a `Mailbox`).
    pub fn with<R: Send + 'static>(&self, f: impl FnOnce(&mut T) -> R + Send + 'static) -> R {
        call(self, move |t, reply| reply.send(f(t))).expect("the owner thread is running")
    }

    /// Stops taking jobs and waits for the thread to finish the queued ones.
    pub fn stop(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl<T: 'static> Executor<T> for OwnerThread<T> {
    fn execute(&self, job: Job<T>) -> bool {
        match &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn mailbox_runs_jobs_in_order_and_refuses_after_close() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let mb = Arc::new(Mailbox::<Vec<u32>>::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(mb.execute(Box::new(|v| v.push(1))));
        assert!(mb.execute(Box::new(|v| v.push(2))));
        let mut v = Vec::new();
        assert_eq!(mb.run_pending(&mut v), 2);
        assert_eq!(v, [1, 2]);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
        // A waiter whose job is dropped by close() sees the owner gone.
        let mb2 = mb.clone();
        let waiter = std::thread::spawn(move || call(&*mb2, |v: &mut Vec<u32>, r| r.send(v.len())));
        while mb.lock().as_ref().unwrap().is_empty() {
            std::thread::yield_now();
        }
        mb.close();
        assert_eq!(waiter.join().unwrap(), None);
        assert!(!mb.execute(Box::new(|v| v.push(3))));
    }

    #[test]
    fn owner_thread_owns_its_value() {
        let o = OwnerThread::spawn(|| 5u32).unwrap();
        assert_eq!(o.with(|v| *v + 1), 6);
        o.stop();
        assert!(call(&*o, |v: &mut u32, r| r.send(*v)).is_none());
    }
}
