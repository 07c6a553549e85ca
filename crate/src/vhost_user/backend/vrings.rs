//! The vring requests of the backend state machine: size, addresses, base,
//! fds, enable, and the start and stop of a ring's service by the device.

use std::sync::Arc;

use vhost::vhost_user::message::VhostUserVirtioFeatures;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

use super::{AfterStop, Backend, PendingStop};
use crate::vhost_user::device::{Device, StopReason, Stopped, VringStart};
use crate::vhost_user::error::{Error, Result};
use crate::vhost_user::eventfd::VringFd;
use crate::vhost_user::executor::Reply;
use crate::vhost_user::vring::{Vring, VringAddrs};

impl<D: Device> Backend<D> {
    /// Finishes a stop the device answered with `Stopped::Pending`: sends the
    /// frontend's reply (`GET_VRING_BASE` gets `next_avail`).
    pub fn complete_stop(&mut self, index: u16, next_avail: u16) -> Result<()> {
        match &self.pending {
            Some(p) if p.index == index => {}
            _ => {
                return Err(Error::Device(format!(
                    "vring {index} has no stop in progress"
                )))
            }
        }
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let v = &mut self.vrings[usize::from(index)];
        v.base = next_avail;
        v.started = false;
        match p.then {
            AfterStop::GetBase(reply) => {
                v.forget_fds();
                reply.send(Ok(next_avail));
            }
            AfterStop::Disable(reply) => reply.send(Ok(())),
        }
        Ok(())
    }

    fn vring_index(&self, request: &'static str, index: u32) -> Result<u16> {
        match u16::try_from(index) {
            Ok(i) if usize::from(i) < self.vrings.len() => Ok(i),
            _ => Err(Error::refused(
                request,
                format!(
                    "vring index {index} is out of range (the device has {} queues)",
                    self.vrings.len()
                ),
            )),
        }
    }

    fn stopped_vring(&mut self, request: &'static str, index: u32) -> Result<&mut Vring> {
        self.need_owner(request)?;
        let i = self.vring_index(request, index)?;
        let v = &mut self.vrings[usize::from(i)];
        if v.started {
            return Err(Error::refused(
                request,
                format!("vring {i} is running (stop it with GET_VRING_BASE first)"),
            ));
        }
        Ok(v)
    }

    fn protocol_features_acked(&self) -> bool {
        self.acked_features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() != 0
    }

    /// Starts ring `i` if it has everything it needs: size, addresses,
    /// memory, a kick fd, and `SET_VRING_ENABLE` 1 when protocol features
    /// were negotiated (a ring must not be served before).
    fn try_start(&mut self, request: &'static str, i: u16) -> Result<()> {
        let v = &self.vrings[usize::from(i)];
        let ready = !v.started
            && v.size.is_some()
            && v.addrs.is_some()
            && (v.enabled || !self.protocol_features_acked());
        let (Some(table), Some(kick)) = (self.memory.as_ref().filter(|_| ready), v.kick.clone())
        else {
            return Ok(());
        };
        let mem = table.guest_memory().clone();
        let event_idx = self.acked_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let state = v
            .queue_state(self.device.max_queue_size(), event_idx, &mem)
            .map_err(|e| Error::refused(request, format!("vring {i}: {e}")))?;
        let start = VringStart {
            index: i,
            state,
            memory: mem,
            kick,
            call: v.call.clone(),
        };
        self.device.vring_started(start).map_err(|e| {
            Error::refused(request, format!("the device did not start vring {i}: {e}"))
        })?;
        self.vrings[usize::from(i)].started = true;
        Ok(())
    }

    /// Asks the device to stop ring `i`; `Some(next_avail)` when it did.
    fn stop(&mut self, i: u16, reason: StopReason) -> Option<u16> {
        match self.device.vring_stopped(i, reason) {
            Stopped::Done { next_avail } => {
                let v = &mut self.vrings[usize::from(i)];
                v.base = next_avail;
                v.started = false;
                Some(next_avail)
            }
            Stopped::Pending => None,
        }
    }

    pub fn set_vring_num(&mut self, index: u32, num: u32) -> Result<()> {
        const R: &str = "SET_VRING_NUM";
        let max = self.device.max_queue_size();
        let v = self.stopped_vring(R, index)?;
        match u16::try_from(num) {
            Ok(n) if n.is_power_of_two() && n <= max => {
                v.size = Some(n);
                Ok(())
            }
            _ => Err(Error::refused(
                R,
                format!("size {num} is not a power of two from 1 to {max}"),
            )),
        }
    }

    /// `SET_VRING_ADDR`: user addresses, translated through the memory table.
    pub fn set_vring_addr(
        &mut self,
        index: u32,
        flags: u32,
        desc: u64,
        used: u64,
        avail: u64,
    ) -> Result<()> {
        const R: &str = "SET_VRING_ADDR";
        self.stopped_vring(R, index)?;
        if flags != 0 {
            return Err(Error::refused(
                R,
                format!("flags 0x{flags:x}: dirty-page logging is not supported"),
            ));
        }
        let table = self.memory.as_ref().ok_or_else(|| {
            Error::refused(R, "there is no memory table to translate the addresses")
        })?;
        let tr = |what: &str, user: u64| {
            table.translate(user).ok_or_else(|| {
                Error::refused(
                    R,
                    format!("the {what} address 0x{user:x} is outside the memory table"),
                )
            })
        };
        let addrs = VringAddrs {
            desc: tr("descriptor table", desc)?,
            avail: tr("available ring", avail)?,
            used: tr("used ring", used)?,
        };
        self.vrings[index as usize].addrs = Some(addrs);
        Ok(())
    }

    pub fn set_vring_base(&mut self, index: u32, base: u32) -> Result<()> {
        const R: &str = "SET_VRING_BASE";
        let v = self.stopped_vring(R, index)?;
        v.base = u16::try_from(base).map_err(|_| {
            Error::refused(
                R,
                format!("base {base} does not fit a split ring's 16-bit index"),
            )
        })?;
        Ok(())
    }

    /// `GET_VRING_BASE`: stops the ring; replies with where it stopped, now
    /// or when the device completes the stop.
    pub fn get_vring_base(&mut self, index: u32, reply: Reply<Result<u16>>) {
        const R: &str = "GET_VRING_BASE";
        let i = match self.need_owner(R).and_then(|()| self.vring_index(R, index)) {
            Ok(i) => i,
            Err(e) => return reply.send(Err(e)),
        };
        if self.vrings[usize::from(i)].started {
            match self.stop(i, StopReason::GetVringBase) {
                Some(_) => {}
                None => {
                    self.pending = Some(PendingStop {
                        index: i,
                        then: AfterStop::GetBase(reply),
                    });
                    return;
                }
            }
        }
        let v = &mut self.vrings[usize::from(i)];
        v.forget_fds();
        reply.send(Ok(v.base));
    }

    pub fn set_vring_kick(&mut self, index: u8, fd: Option<VringFd>) -> Result<()> {
        const R: &str = "SET_VRING_KICK";
        let v = self.stopped_vring(R, index.into())?;
        let fd =
            fd.ok_or_else(|| Error::refused(R, "no kick fd: polling the ring is not supported"))?;
        v.kick = Some(Arc::new(fd));
        if let Err(e) = self.try_start(R, index.into()) {
            self.vrings[usize::from(index)].kick = None;
            return Err(e);
        }
        Ok(())
    }

    pub fn set_vring_call(&mut self, index: u8, fd: Option<VringFd>) -> Result<()> {
        const R: &str = "SET_VRING_CALL";
        self.need_owner(R)?;
        let i = self.vring_index(R, index.into())?;
        self.vrings[usize::from(i)].call.replace(fd);
        Ok(())
    }

    pub fn set_vring_err(&mut self, index: u8, fd: Option<VringFd>) -> Result<()> {
        const R: &str = "SET_VRING_ERR";
        self.need_owner(R)?;
        let i = self.vring_index(R, index.into())?;
        self.vrings[usize::from(i)].err = fd;
        Ok(())
    }

    /// `SET_VRING_ENABLE`: starts the ring (when it has everything), or stops
    /// it; a stop's acknowledgement waits for the device like `GET_VRING_BASE`.
    pub fn set_vring_enable(&mut self, index: u32, enable: bool, reply: Reply<Result<()>>) {
        const R: &str = "SET_VRING_ENABLE";
        let i = match self.need_owner(R).and_then(|()| self.vring_index(R, index)) {
            Ok(i) => i,
            Err(e) => return reply.send(Err(e)),
        };
        let v = &mut self.vrings[usize::from(i)];
        if enable {
            let was = v.enabled;
            v.enabled = true;
            let res = self.try_start(R, i);
            if res.is_err() {
                self.vrings[usize::from(i)].enabled = was;
            }
            return reply.send(res);
        }
        v.enabled = false;
        if v.started && self.stop(i, StopReason::Disabled).is_none() {
            self.pending = Some(PendingStop {
                index: i,
                then: AfterStop::Disable(reply),
            });
            return;
        }
        reply.send(Ok(()));
    }
}
