//! The vhost crate's request handler, on the protocol thread: checks and
//! prepares what can be done off the owner thread (mapping memory fds,
//! checking eventfds), then runs the request on the owner thread's `Backend`
//! through the `Executor` and waits for its answer.

use std::fs::File;
use std::marker::PhantomData;
use std::sync::Arc;

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserSingleMemoryRegion,
    VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{GpuBackend, VhostUserBackendReqHandler};

use super::backend::Backend;
use super::device::Device;
use super::error::{Error, Result};
use super::eventfd::VringFd;
use super::executor::{call, Executor, Reply};
use super::memory_table::{MappedRegion, RegionDesc};

type VResult<T> = vhost::vhost_user::Result<T>;

/// Forwards each request to the `Backend` on the owner thread.
pub struct Dispatch<D, E> {
    executor: Arc<E>,
    _device: PhantomData<fn(&mut D)>,
}

impl<D, E> Dispatch<D, E>
where
    D: Device + 'static,
    E: Executor<Backend<D>>,
{
    pub fn new(executor: Arc<E>) -> Self {
        Dispatch {
            executor,
            _device: PhantomData,
        }
    }

    /// Runs `f` on the owner thread; its reply may come later.
    fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Backend<D>, Reply<Result<R>>) + Send + 'static,
    {
        call(&*self.executor, f).unwrap_or(Err(Error::OwnerGone))
    }

    /// Runs `f` on the owner thread and answers with its result; a refusal
    /// is an error acknowledgement, the connection stays up.
    fn ack<F>(&self, f: F) -> VResult<()>
    where
        F: FnOnce(&mut Backend<D>) -> Result<()> + Send + 'static,
    {
        self.run(move |b, reply| reply.send(f(b)))
            .map_err(Error::into_vhost)
    }

    /// Like `ack`, for a request whose reply carries a value: the protocol has
    /// no error form for it, so a refusal drops the connection.
    fn value<R, F>(&self, f: F) -> VResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Backend<D>) -> Result<R> + Send + 'static,
    {
        self.run(move |b, reply| reply.send(f(b)))
            .map_err(|e| e.into_no_reply().into_vhost())
    }
}

fn refuse(request: &'static str, reason: impl Into<String>) -> vhost::vhost_user::Error {
    Error::refused(request, reason).into_vhost()
}

fn desc(r: &VhostUserMemoryRegion) -> RegionDesc {
    // Copies out of the packed struct.
    RegionDesc {
        guest_addr: r.guest_phys_addr,
        size: r.memory_size,
        user_addr: r.user_addr,
        mmap_offset: r.mmap_offset,
    }
}

fn vring_fd(request: &'static str, index: u8, fd: Option<File>) -> VResult<Option<VringFd>> {
    fd.map(|f| VringFd::new(f).map_err(|e| refuse(request, format!("vring {index}: {e}"))))
        .transpose()
}

impl<D, E> VhostUserBackendReqHandler for Dispatch<D, E>
where
    D: Device + 'static,
    E: Executor<Backend<D>>,
{
    fn set_owner(&self) -> VResult<()> {
        self.ack(Backend::set_owner)
    }

    fn reset_owner(&self) -> VResult<()> {
        self.ack(Backend::reset_owner)
    }

    fn reset_device(&self) -> VResult<()> {
        self.ack(Backend::reset_device)
    }

    fn get_features(&self) -> VResult<u64> {
        self.value(Backend::get_features)
    }

    fn set_features(&self, features: u64) -> VResult<()> {
        self.ack(move |b| b.set_features(features))
    }

    fn set_mem_table(&self, ctx: &[VhostUserMemoryRegion], files: Vec<File>) -> VResult<()> {
        const R: &str = "SET_MEM_TABLE";
        if ctx.len() != files.len() {
            return Err(refuse(
                R,
                format!("{} regions but {} fds", ctx.len(), files.len()),
            ));
        }
        let regions = ctx
            .iter()
            .zip(&files)
            .map(|(r, f)| MappedRegion::map(desc(r), f))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| refuse(R, e))?;
        self.ack(move |b| b.set_mem_table(regions))
    }

    fn set_vring_num(&self, index: u32, num: u32) -> VResult<()> {
        self.ack(move |b| b.set_vring_num(index, num))
    }

    fn set_vring_addr(
        &self,
        index: u32,
        flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> VResult<()> {
        let flags = flags.bits();
        self.ack(move |b| b.set_vring_addr(index, flags, descriptor, used, available))
    }

    fn set_vring_base(&self, index: u32, base: u32) -> VResult<()> {
        self.ack(move |b| b.set_vring_base(index, base))
    }

    fn get_vring_base(&self, index: u32) -> VResult<VhostUserVringState> {
        self.run(move |b, reply| b.get_vring_base(index, reply))
            .map(|base| VhostUserVringState::new(index, base.into()))
            .map_err(|e| e.into_no_reply().into_vhost())
    }

    fn set_vring_kick(&self, index: u8, fd: Option<File>) -> VResult<()> {
        let fd = vring_fd("SET_VRING_KICK", index, fd)?;
        self.ack(move |b| b.set_vring_kick(index, fd))
    }

    fn set_vring_call(&self, index: u8, fd: Option<File>) -> VResult<()> {
        let fd = vring_fd("SET_VRING_CALL", index, fd)?;
        self.ack(move |b| b.set_vring_call(index, fd))
    }

    fn set_vring_err(&self, index: u8, fd: Option<File>) -> VResult<()> {
        let fd = vring_fd("SET_VRING_ERR", index, fd)?;
        self.ack(move |b| b.set_vring_err(index, fd))
    }

    fn get_protocol_features(&self) -> VResult<VhostUserProtocolFeatures> {
        self.value(Backend::get_protocol_features)
    }

    fn set_protocol_features(&self, features: u64) -> VResult<()> {
        self.ack(move |b| b.set_protocol_features(features))
    }

    fn get_queue_num(&self) -> VResult<u64> {
        self.value(Backend::get_queue_num)
    }

    fn set_vring_enable(&self, index: u32, enable: bool) -> VResult<()> {
        self.run(move |b, reply| b.set_vring_enable(index, enable, reply))
            .map_err(Error::into_vhost)
    }

    fn get_config(&self, offset: u32, size: u32, _flags: VhostUserConfigFlags) -> VResult<Vec<u8>> {
        // The vhost crate answers a failed GET_CONFIG with an empty payload,
        // the protocol's error form: the connection stays up.
        self.run(move |b, reply| reply.send(b.get_config(offset, size)))
            .map_err(Error::into_vhost)
    }

    fn set_config(&self, offset: u32, buf: &[u8], _flags: VhostUserConfigFlags) -> VResult<()> {
        let data = buf.to_vec();
        self.ack(move |b| b.set_config(offset, &data))
    }

    fn set_gpu_socket(&self, _gpu_backend: GpuBackend) -> VResult<()> {
        Err(refuse("GPU_SET_SOCKET", "not a GPU device"))
    }

    fn get_inflight_fd(&self, _inflight: &VhostUserInflight) -> VResult<(VhostUserInflight, File)> {
        Err(Error::NoReply {
            request: "GET_INFLIGHT_FD",
            reason: "inflight tracking is not supported (not offered)".into(),
        }
        .into_vhost())
    }

    fn set_inflight_fd(&self, _inflight: &VhostUserInflight, _file: File) -> VResult<()> {
        Err(refuse(
            "SET_INFLIGHT_FD",
            "inflight tracking is not supported (not offered)",
        ))
    }

    fn get_max_mem_slots(&self) -> VResult<u64> {
        self.value(Backend::get_max_mem_slots)
    }

    fn add_mem_region(&self, region: &VhostUserSingleMemoryRegion, fd: File) -> VResult<()> {
        let region = MappedRegion::map(desc(region), &fd).map_err(|e| refuse("ADD_MEM_REG", e))?;
        self.ack(move |b| b.add_mem_region(region))
    }

    fn remove_mem_region(&self, region: &VhostUserSingleMemoryRegion) -> VResult<()> {
        let d = desc(region);
        self.ack(move |b| b.remove_mem_region(&d))
    }

    fn set_device_state_fd(
        &self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _fd: File,
    ) -> VResult<Option<File>> {
        Err(refuse(
            "SET_DEVICE_STATE_FD",
            "device state transfer is not supported (not offered)",
        ))
    }

    fn check_device_state(&self) -> VResult<()> {
        Err(refuse(
            "CHECK_DEVICE_STATE",
            "device state transfer is not supported (not offered)",
        ))
    }

    fn set_log_base(&self, _log: &VhostUserLog, _file: File) -> VResult<()> {
        Err(Error::NoReply {
            request: "SET_LOG_BASE",
            reason: "dirty-page logging is not supported (not offered)".into(),
        }
        .into_vhost())
    }
}
