//! The test device, the harness around a `Server`, and guest-side helpers.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virtio_queue::{Queue, QueueState};

use super::super::mmap::tests::memfd;
use super::super::*;
use crate::engine::memory::GuestMem;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Connected,
    Disconnected(Option<String>),
    Refused(String),
    Started(u16, QueueState),
    Stopped(u16, StopReason),
    Memory(Option<usize>),
    Features(u64),
    ConfigWrite(u32, Vec<u8>),
    Reset,
    Closed,
}

/// A running vring as the device holds it.
pub struct Running {
    pub queue: Queue,
    pub memory: Arc<GuestMem>,
    pub kick: Arc<VringFd>,
    pub call: Arc<Notifier>,
}

pub struct TestDevice {
    pub events: Arc<Mutex<Vec<Event>>>,
    pub running: HashMap<u16, Running>,
    /// Answer `vring_stopped` with `Pending` (in-flight requests).
    pub hold_stops: bool,
    pub config: Vec<u8>,
    pub queues: u16,
}

/// VIRTIO_BLK_F_FLUSH, and bit 63 (device-specific for virtio-net).
pub const DEVICE_FEATURES: u64 = (1 << 9) | (1 << 63);
pub const MAX_SIZE: u16 = 256;

impl TestDevice {
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }
}

impl Device for TestDevice {
    fn features(&self) -> u64 {
        // Bit 34 (packed ring) must never be offered: the backend drops it.
        DEVICE_FEATURES | (1 << 34)
    }

    fn num_queues(&self) -> u16 {
        self.queues
    }

    fn max_queue_size(&self) -> u16 {
        MAX_SIZE
    }

    fn config(&self) -> Vec<u8> {
        self.config.clone()
    }

    fn write_config(&mut self, offset: u32, data: &[u8]) -> std::result::Result<(), String> {
        if offset == 0 {
            return Err("offset 0 is read-only".into());
        }
        self.push(Event::ConfigWrite(offset, data.to_vec()));
        Ok(())
    }

    fn features_acked(&mut self, features: u64) {
        self.push(Event::Features(features));
    }

    fn memory_changed(&mut self, memory: Option<&Arc<GuestMem>>) {
        use vm_memory::GuestMemory;
        self.push(Event::Memory(memory.map(|m| m.num_regions())));
        if let Some(m) = memory {
            for r in self.running.values_mut() {
                r.memory = m.clone();
            }
        }
    }

    fn vring_started(&mut self, v: VringStart) -> std::result::Result<(), String> {
        self.push(Event::Started(v.index, v.state));
        let queue = Queue::try_from(v.state).map_err(|e| e.to_string())?;
        self.running.insert(
            v.index,
            Running {
                queue,
                memory: v.memory,
                kick: v.kick,
                call: v.call,
            },
        );
        Ok(())
    }

    fn vring_stopped(&mut self, index: u16, reason: StopReason) -> Stopped {
        use virtio_queue::QueueT;
        self.push(Event::Stopped(index, reason));
        let r = self.running.remove(&index);
        if self.hold_stops {
            return Stopped::Pending;
        }
        Stopped::Done {
            next_avail: r.map_or(0, |r| r.queue.next_avail()),
        }
    }

    fn connected(&mut self) {
        self.push(Event::Connected);
    }

    fn disconnected(&mut self, error: Option<&Error>) {
        self.push(Event::Disconnected(error.map(|e| e.to_string())));
    }

    fn refused(&mut self, error: &Error) {
        self.push(Event::Refused(error.to_string()));
    }

    fn reset(&mut self) {
        self.push(Event::Reset);
    }

    fn closed(&mut self) {
        self.push(Event::Closed);
    }
}

pub type Owner = OwnerThread<Backend<TestDevice>>;

pub struct Harness {
    pub owner: Arc<Owner>,
    pub server: Option<Server>,
    pub path: PathBuf,
    pub events: Arc<Mutex<Vec<Event>>>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A socket path of its own for each test.
pub fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "vq-vhost-{}-{}-{name}.sock",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ))
}

impl Harness {
    pub fn start(name: &str, queues: u16) -> Harness {
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let owner = OwnerThread::spawn(move || {
            Backend::new(TestDevice {
                events: ev,
                running: HashMap::new(),
                hold_stops: false,
                config: (0u8..60).collect(),
                queues,
            })
            .unwrap()
        })
        .unwrap();
        let path = socket_path(name);
        let server = Server::start(&path, owner.clone()).unwrap();
        Harness {
            owner,
            server: Some(server),
            path,
            events,
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    /// Waits (up to 10 s) until an event matches.
    pub fn wait_for(&self, what: &str, f: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.events().into_iter().find(&f) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for the current connection's end, and returns why it ended.
    pub fn wait_disconnected(&self) -> Option<String> {
        match self.wait_for("a disconnect", |e| matches!(e, Event::Disconnected(_))) {
            Event::Disconnected(r) => r,
            _ => unreachable!(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.join();
        }
        self.owner.stop();
    }
}

/// Guest RAM for the tests: a memfd per region, and the driver's own view
/// of it (a separate mapping of the same fds).
pub struct GuestRam {
    pub files: Vec<File>,
    pub regions: Vec<RegionDesc>,
    pub driver: MemoryTable,
}

impl GuestRam {
    /// Regions as (guest address, size, user address, mmap offset).
    pub fn new(layout: &[(u64, u64, u64, u64)]) -> GuestRam {
        let mut files = Vec::new();
        let mut regions = Vec::new();
        let mut mapped = Vec::new();
        for &(guest_addr, size, user_addr, mmap_offset) in layout {
            let f = memfd(mmap_offset + size);
            let d = RegionDesc {
                guest_addr,
                size,
                user_addr,
                mmap_offset,
            };
            mapped.push(memory_table::MappedRegion::map(d, &f).unwrap());
            files.push(f);
            regions.push(d);
        }
        GuestRam {
            files,
            regions,
            driver: MemoryTable::new(mapped).unwrap(),
        }
    }

    pub fn mem(&self) -> &GuestMem {
        self.driver.guest_memory()
    }

    /// The frontend user address of guest address `gpa`.
    pub fn user(&self, gpa: u64) -> u64 {
        let r = self
            .regions
            .iter()
            .find(|r| r.guest_addr <= gpa && gpa < r.guest_addr + r.size)
            .expect("gpa in a region");
        r.user_addr + (gpa - r.guest_addr)
    }
}
