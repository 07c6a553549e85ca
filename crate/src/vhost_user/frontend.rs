//! A vhost-user frontend of the package's own (feature `testing`), on rust-vmm's
//! `vhost` `Frontend`: it plays QEMU's part against any vhost-user backend
//! socket. Guest RAM is one memfd, mapped here too, so a guest driver in this
//! process writes rings and buffers the backend reads. Control requests that
//! wait for the backend's reply run on a thread of the frontend's own (the
//! backend may be served by the caller's own thread: Node's main thread in
//! the tests); each request gets a ticket, and its result is picked up later.
//! Kicks and interrupts go straight through the eventfds, on the caller's thread.
//!
//! The JavaScript tests drive it (`js::testing::frontend`); it is also the
//! seed of a load generator.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserHeaderFlag};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::mmap::SharedMapping;

/// Frontend user addresses are guest addresses plus this (as QEMU's are its
/// process's addresses of guest RAM).
pub const USER_BASE: u64 = 0x7f00_0000_0000;

/// A control request, answered on the frontend's thread.
#[derive(Debug, Clone)]
pub enum Request {
    /// Connects and negotiates as QEMU does (owner, protocol features,
    /// `NEED_REPLY` on every later request), acks `features & offered`, and
    /// sends the memory table: regions `(guest address, size, offset in the memfd)`.
    Setup {
        features: u64,
        regions: Vec<(u64, u64, u64)>,
    },
    /// A new memory table (`SET_MEM_TABLE`), same form.
    SetMemTable {
        regions: Vec<(u64, u64, u64)>,
    },
    /// Size, base, addresses (guest), kick and call eventfds, enable.
    StartVring {
        index: usize,
        size: u16,
        base: u16,
        desc: u64,
        avail: u64,
        used: u64,
    },
    /// `GET_VRING_BASE`: stops the ring; the answer is where it stopped.
    GetVringBase {
        index: usize,
    },
    /// Kicks vring `index` from the frontend's thread (as another process would); the
    /// answer is when (`CLOCK_MONOTONIC`, ns), taken just before the eventfd write.
    TimedKick {
        index: usize,
    },
    /// `SET_VRING_ENABLE`.
    EnableVring {
        index: usize,
        enable: bool,
    },
    GetConfig {
        offset: u32,
        size: u32,
    },
    SetConfig {
        offset: u32,
        data: Vec<u8>,
    },
    /// Closes the connection (and ends the frontend's thread).
    Disconnect,
}

/// What a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Done,
    Value(u64),
    Bytes(Vec<u8>),
}

type Results = Arc<Mutex<HashMap<u64, Result<Answer, String>>>>;

/// A frontend connected (or connecting) to one backend socket.
pub struct Session {
    tx: Mutex<Option<Sender<(u64, Request)>>>,
    results: Results,
    next: Mutex<u64>,
    memory: Arc<SharedMapping>,
    kicks: Vec<EventFd>,
    calls: Vec<EventFd>,
}

fn memfd(len: u64) -> Result<File, String> {
    // SAFETY: a NUL-terminated name; memfd_create returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"vhost-user-frontend".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the fd is new and owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(len)
        .map_err(|e| format!("sizing the memfd: {e}"))?;
    Ok(file)
}

impl Session {
    /// Guest RAM of `mem_size` bytes (a memfd, mapped here) and `queues`
    /// kick/call eventfd pairs; the thread connects to `path` at once.
    pub fn start(path: PathBuf, mem_size: u64, queues: usize) -> Result<Self, String> {
        let file = memfd(mem_size)?;
        let memory = Arc::new(SharedMapping::new(&file, 0, mem_size)?);
        let new_fd = |flags| EventFd::new(flags).map_err(|e| format!("eventfd: {e}"));
        let kicks = (0..queues)
            .map(|_| new_fd(0))
            .collect::<Result<Vec<_>, _>>()?;
        let calls = (0..queues)
            .map(|_| new_fd(EFD_NONBLOCK))
            .collect::<Result<Vec<_>, _>>()?;
        let dup = |v: &[EventFd]| {
            v.iter()
                .map(|e| e.try_clone().map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
        };
        let (tk, tc) = (dup(&kicks)?, dup(&calls)?);
        let results: Results = Arc::default();
        let (tx, rx) = mpsc::channel::<(u64, Request)>();
        let res = Arc::clone(&results);
        std::thread::Builder::new()
            .name("vhost-user-frontend".into())
            .spawn(move || {
                let mut fe: Option<Frontend> = None;
                for (ticket, req) in rx {
                    let last = matches!(req, Request::Disconnect);
                    let out = run(&mut fe, &path, queues, &file, &tk, &tc, req);
                    res.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(ticket, out);
                    if last {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start the frontend thread: {e}"))?;
        Ok(Session {
            tx: Mutex::new(Some(tx)),
            results,
            next: Mutex::new(0),
            memory,
            kicks,
            calls,
        })
    }

    /// Queues `req`; its ticket.
    pub fn request(&self, req: Request) -> Result<u64, String> {
        let ticket = {
            let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let ok = tx.as_ref().is_some_and(|t| t.send((ticket, req)).is_ok());
        if !ok {
            return Err("the frontend has disconnected".into());
        }
        Ok(ticket)
    }

    /// The result of `ticket`, once there is one (taken).
    pub fn result(&self, ticket: u64) -> Option<Result<Answer, String>> {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ticket)
    }

    /// The guest RAM mapping.
    pub fn memory(&self) -> &Arc<SharedMapping> {
        &self.memory
    }

    /// Kicks vring `index` (writes its kick eventfd).
    pub fn kick(&self, index: usize) -> Result<(), String> {
        let k = self.kicks.get(index).ok_or("no such vring")?;
        k.write(1).map_err(|e| e.to_string())
    }

    /// Interrupts vring `index` received since the last call (0 when none).
    pub fn take_calls(&self, index: usize) -> Result<u64, String> {
        let c = self.calls.get(index).ok_or("no such vring")?;
        match c.read() {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The raw call eventfd of vring `index` (to wait on it).
    pub fn call_fd(&self, index: usize) -> Option<i32> {
        self.calls.get(index).map(|c| c.as_raw_fd())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The thread ends once the channel closes (after any queued request).
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn table(file: &File, regions: &[(u64, u64, u64)]) -> Vec<VhostUserMemoryRegionInfo> {
    regions
        .iter()
        .map(|&(guest, size, offset)| VhostUserMemoryRegionInfo {
            guest_phys_addr: guest,
            memory_size: size,
            userspace_addr: USER_BASE + guest,
            mmap_offset: offset,
            mmap_handle: file.as_raw_fd(),
        })
        .collect()
}

/// Runs one request on the frontend's thread.
fn run(
    fe: &mut Option<Frontend>,
    path: &PathBuf,
    queues: usize,
    file: &File,
    kicks: &[EventFd],
    calls: &[EventFd],
    req: Request,
) -> Result<Answer, String> {
    let e = |e: vhost::Error| e.to_string();
    if let Request::Setup { features, regions } = &req {
        let mut f = Frontend::connect(path, queues as u64).map_err(e)?;
        let offered = f.get_features().map_err(e)?;
        f.set_owner().map_err(e)?;
        let pf = f.get_protocol_features().map_err(e)?;
        f.set_protocol_features(pf).map_err(e)?;
        f.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
        f.set_features(offered & features).map_err(e)?;
        f.set_mem_table(&table(file, regions)).map_err(e)?;
        *fe = Some(f);
        return Ok(Answer::Value(offered & features));
    }
    if let Request::TimedKick { index } = req {
        let k = kicks.get(index).ok_or("no such vring")?;
        let t = monotonic_ns();
        k.write(1).map_err(|e| e.to_string())?;
        return Ok(Answer::Value(t));
    }
    if let Request::Disconnect = req {
        *fe = None;
        return Ok(Answer::Done);
    }
    let f = fe.as_mut().ok_or("not connected (send Setup first)")?;
    match req {
        Request::SetMemTable { regions } => f.set_mem_table(&table(file, &regions)).map_err(e)?,
        Request::StartVring {
            index,
            size,
            base,
            desc,
            avail,
            used,
        } => {
            let (kick, call) = (
                kicks.get(index).ok_or("no such vring")?,
                calls.get(index).ok_or("no such vring")?,
            );
            f.set_vring_num(index, size).map_err(e)?;
            f.set_vring_base(index, base).map_err(e)?;
            let config = VringConfigData {
                queue_max_size: size,
                queue_size: size,
                flags: 0,
                desc_table_addr: USER_BASE + desc,
                used_ring_addr: USER_BASE + used,
                avail_ring_addr: USER_BASE + avail,
                log_addr: None,
            };
            f.set_vring_addr(index, &config).map_err(e)?;
            f.set_vring_kick(index, kick).map_err(e)?;
            f.set_vring_call(index, call).map_err(e)?;
            f.set_vring_enable(index, true).map_err(e)?;
        }
        Request::GetVringBase { index } => {
            return Ok(Answer::Value(f.get_vring_base(index).map_err(e)? as u64))
        }
        Request::EnableVring { index, enable } => f.set_vring_enable(index, enable).map_err(e)?,
        Request::GetConfig { offset, size } => {
            let buf = vec![0u8; size as usize];
            let (_, data) = f
                .get_config(offset, size, VhostUserConfigFlags::empty(), &buf)
                .map_err(e)?;
            return Ok(Answer::Bytes(data));
        }
        Request::SetConfig { offset, data } => f
            .set_config(offset, VhostUserConfigFlags::WRITABLE, &data)
            .map_err(e)?,
        // Handled above.
        Request::Setup { .. } | Request::Disconnect | Request::TimedKick { .. } => {}
    }
    Ok(Answer::Done)
}

/// `CLOCK_MONOTONIC` in nanoseconds (libuv's `uv_hrtime`, and so Node's `process.hrtime`, reads
/// the same clock).
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
