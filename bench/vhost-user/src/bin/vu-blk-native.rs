//! vu-blk-native: the native ceiling for `npm run bench:vhost-user`. A vhost-user-blk backend
//! made of rust-vmm's `vhost-user-backend` 0.17 (`VhostUserDaemon`: protocol, memory table,
//! one epoll worker thread per queue) and virtio-queue 0.14's `Reader`/`Writer`, serving a
//! file: IN, OUT, FLUSH and GET_ID, UNSUPP for the rest, with event idx. The disk data moves
//! through one bounce buffer per queue (pread/pwrite on the file, `Reader`/`Writer` on guest
//! memory). After a frontend leaves, it listens again on the same path.
//!
//!   vu-blk-native --socket PATH --disk FILE [--queues N] [--queue-size N]

#[cfg(target_os = "linux")]
fn main() {
    let args = std::env::args().skip(1).collect();
    match vhost_user_bench::args::NativeOptions::parse(args) {
        Ok(o) => {
            if let Err(e) = native::run(o) {
                eprintln!("vu-blk-native: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(if std::env::args().any(|a| a == "--help") {
                0
            } else {
                2
            });
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("vu-blk-native runs on Linux only");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod native {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read, Write};
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, RwLock};

    use vhost::vhost_user::message::VhostUserProtocolFeatures;
    use vhost::vhost_user::Listener;
    use vhost_user_backend::{VhostUserBackend, VhostUserDaemon, VringRwLock, VringT};
    use vhost_user_bench::args::NativeOptions;
    use vhost_user_bench::blk::*;
    use virtio_queue::QueueT;
    use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
    use vmm_sys_util::epoll::EventSet;
    use vmm_sys_util::eventfd::EventFd;

    type Mem = GuestMemoryAtomic<GuestMemoryMmap>;

    struct Blk {
        file: File,
        capacity_sectors: u64,
        queues: usize,
        queue_size: u16,
        event_idx: AtomicBool,
        mem: RwLock<Option<Mem>>,
        /// One bounce buffer per queue (each queue has its own worker thread).
        bufs: Vec<Mutex<Vec<u8>>>,
        /// Each worker thread's exit event, fresh for every connection: dropping a daemon
        /// writes them and joins the threads.
        exits: Mutex<Vec<EventFd>>,
    }

    pub fn run(o: NativeOptions) -> Result<(), String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&o.disk)
            .map_err(|e| format!("{}: {e}", o.disk.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let blk = Arc::new(Blk {
            file,
            capacity_sectors: len / SECTOR,
            queues: o.queues as usize,
            queue_size: o.queue_size,
            event_idx: AtomicBool::new(false),
            mem: RwLock::new(None),
            bufs: (0..o.queues).map(|_| Mutex::new(Vec::new())).collect(),
            exits: Mutex::new(Vec::new()),
        });
        let mut first = true;
        loop {
            let listener = Listener::new(&o.socket, true)
                .map_err(|e| format!("{}: {e}", o.socket.display()))?;
            if first {
                println!("listening on {}", o.socket.display());
                first = false;
            }
            *blk.exits.lock().unwrap() = (0..o.queues)
                .map(|_| EventFd::new(0))
                .collect::<io::Result<_>>()
                .map_err(|e| format!("eventfd: {e}"))?;
            let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
            let mut daemon = VhostUserDaemon::new("vu-blk-native".into(), blk.clone(), mem)
                .map_err(|e| format!("daemon: {e}"))?;
            daemon.start(listener).map_err(|e| format!("accept: {e}"))?;
            eprintln!("vu-blk-native: frontend connected");
            if let Err(e) = daemon.wait() {
                eprintln!("vu-blk-native: connection ended: {e}");
            } else {
                eprintln!("vu-blk-native: frontend left");
            }
            // Dropping the daemon stops and joins its queue threads.
        }
    }

    impl Blk {
        /// Serves one request; returns the number of bytes written into the chain.
        fn serve<'a>(
            &self,
            buf: &mut Vec<u8>,
            mut r: virtio_queue::Reader<'a>,
            mut w: virtio_queue::Writer<'a>,
        ) -> u32 {
            let writable = w.available_bytes();
            if writable == 0 {
                return 0; // No room for a status byte: nothing to answer with.
            }
            let mut status_w = match w.split_at(writable - 1) {
                Ok(s) => s,
                Err(_) => return 0,
            };
            let mut written = 0usize;
            let status = match r.read_obj::<[u8; HEADER_LEN]>() {
                Err(_) => S_IOERR,
                Ok(h) => {
                    let (kind, sector) = parse_header(&h);
                    match kind {
                        T_IN => {
                            let n = w.available_bytes();
                            match self.range(sector, n) {
                                None => S_IOERR,
                                Some(at) => {
                                    buf.resize(n, 0);
                                    match self
                                        .file
                                        .read_exact_at(&mut buf[..n], at)
                                        .and_then(|_| w.write_all(&buf[..n]))
                                    {
                                        Ok(()) => {
                                            written = n;
                                            S_OK
                                        }
                                        Err(_) => S_IOERR,
                                    }
                                }
                            }
                        }
                        T_OUT => {
                            let n = r.available_bytes();
                            match self.range(sector, n) {
                                None => S_IOERR,
                                Some(at) => {
                                    buf.resize(n, 0);
                                    match r
                                        .read_exact(&mut buf[..n])
                                        .and_then(|_| self.file.write_all_at(&buf[..n], at))
                                    {
                                        Ok(()) => S_OK,
                                        Err(_) => S_IOERR,
                                    }
                                }
                            }
                        }
                        T_FLUSH => match self.file.sync_data() {
                            Ok(()) => S_OK,
                            Err(_) => S_IOERR,
                        },
                        T_GET_ID => {
                            let mut id = [0u8; ID_LEN];
                            let name = b"vu-blk-native";
                            id[..name.len()].copy_from_slice(name);
                            let n = w.available_bytes().min(ID_LEN);
                            match w.write_all(&id[..n]) {
                                Ok(()) => {
                                    written = n;
                                    S_OK
                                }
                                Err(_) => S_IOERR,
                            }
                        }
                        _ => S_UNSUPP,
                    }
                }
            };
            match status_w.write_obj(status) {
                Ok(()) => (written + 1) as u32,
                Err(_) => written as u32,
            }
        }

        /// The byte offset of `len` bytes at `sector`, if they lie within the disk.
        fn range(&self, sector: u64, len: usize) -> Option<u64> {
            let end = sector.checked_mul(SECTOR)?.checked_add(len as u64)?;
            (end <= self.capacity_sectors * SECTOR).then_some(sector * SECTOR)
        }

        fn process(&self, vring: &VringRwLock, queue: usize) -> io::Result<()> {
            let mem = self.mem.read().unwrap().clone();
            let Some(mem) = mem else { return Ok(()) };
            let m = mem.memory();
            let mut buf = self.bufs[queue].lock().unwrap();
            let event_idx = self.event_idx.load(Ordering::Relaxed);
            let mut state = vring.get_mut();
            loop {
                if event_idx {
                    state.disable_notification().map_err(io::Error::other)?;
                }
                let mut served = 0;
                while let Some(chain) = state.get_queue_mut().pop_descriptor_chain(&*m) {
                    let head = chain.head_index();
                    let len = match (chain.clone().reader(&*m), chain.writer(&*m)) {
                        (Ok(r), Ok(w)) => self.serve(&mut buf, r, w),
                        _ => 0,
                    };
                    state.add_used(head, len).map_err(io::Error::other)?;
                    served += 1;
                }
                if served > 0 && state.needs_notification().map_err(io::Error::other)? {
                    state.signal_used_queue()?;
                }
                if !event_idx || !state.enable_notification().map_err(io::Error::other)? {
                    return Ok(());
                }
            }
        }

        fn config(&self) -> [u8; CFG_LEN] {
            let mut c = [0u8; CFG_LEN];
            c[CFG_CAPACITY..CFG_CAPACITY + 8].copy_from_slice(&self.capacity_sectors.to_le_bytes());
            let seg_max = u32::from(self.queue_size) - 2;
            c[CFG_SEG_MAX..CFG_SEG_MAX + 4].copy_from_slice(&seg_max.to_le_bytes());
            c[CFG_BLK_SIZE..CFG_BLK_SIZE + 4].copy_from_slice(&512u32.to_le_bytes());
            c[CFG_NUM_QUEUES..CFG_NUM_QUEUES + 2]
                .copy_from_slice(&(self.queues as u16).to_le_bytes());
            c
        }
    }

    impl VhostUserBackend for Blk {
        type Bitmap = ();
        type Vring = VringRwLock;

        fn num_queues(&self) -> usize {
            self.queues
        }

        fn max_queue_size(&self) -> usize {
            self.queue_size as usize
        }

        fn features(&self) -> u64 {
            [
                F_VERSION_1,
                F_EVENT_IDX,
                F_INDIRECT_DESC,
                F_PROTOCOL_FEATURES,
                F_SEG_MAX,
                F_BLK_SIZE,
                F_FLUSH,
                F_MQ,
            ]
            .iter()
            .fold(0, |f, b| f | 1 << b)
        }

        fn protocol_features(&self) -> VhostUserProtocolFeatures {
            VhostUserProtocolFeatures::CONFIG
                | VhostUserProtocolFeatures::MQ
                | VhostUserProtocolFeatures::REPLY_ACK
        }

        fn set_event_idx(&self, enabled: bool) {
            self.event_idx.store(enabled, Ordering::Relaxed);
        }

        fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
            let c = self.config();
            let mut out = vec![0u8; size as usize];
            let start = (offset as usize).min(CFG_LEN);
            let end = (offset as usize).saturating_add(size as usize).min(CFG_LEN);
            out[..end - start].copy_from_slice(&c[start..end]);
            out
        }

        fn update_memory(&self, mem: Mem) -> io::Result<()> {
            *self.mem.write().unwrap() = Some(mem);
            Ok(())
        }

        /// One worker thread per queue.
        fn queues_per_thread(&self) -> Vec<u64> {
            (0..self.queues).map(|q| 1u64 << q).collect()
        }

        fn exit_event(&self, thread_index: usize) -> Option<EventFd> {
            self.exits
                .lock()
                .unwrap()
                .get(thread_index)?
                .try_clone()
                .ok()
        }

        fn handle_event(
            &self,
            device_event: u16,
            evset: EventSet,
            vrings: &[VringRwLock],
            thread_id: usize,
        ) -> io::Result<()> {
            if evset != EventSet::IN || device_event != 0 || vrings.len() != 1 {
                return Err(io::Error::other(format!(
                    "unexpected event {device_event} on thread {thread_id}"
                )));
            }
            self.process(&vrings[0], thread_id)
        }
    }
}
