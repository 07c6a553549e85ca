//! The backend state machine: what each frontend request does to the state,
//! with every frontend-supplied value checked. It runs on the owner thread
//! (jobs from `Dispatch`); the device model is called from here.

use std::sync::Arc;

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::message::VhostUserVirtioFeatures;
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

use super::device::{Device, StopReason};
use super::error::{Error, Result};
use super::executor::Reply;
use super::memory_table::{MappedRegion, MemoryTable, RegionDesc, MAX_MEM_SLOTS};
use super::vring::Vring;
use crate::engine::memory::GuestMem;

mod vrings;

/// Feature bits a device may offer: the device-specific ranges 0 to 23 and
/// 50 to 63. Bits 24 to 49 are transport bits this backend decides.
pub const DEVICE_FEATURE_MASK: u64 = ((1 << 24) - 1) | !((1 << 50) - 1);
/// The transport features this backend implements.
pub const TRANSPORT_FEATURES: u64 = (1 << VIRTIO_F_VERSION_1)
    | (1 << VIRTIO_RING_F_INDIRECT_DESC)
    | (1 << VIRTIO_RING_F_EVENT_IDX)
    | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
/// The most vrings a device may have.
pub const MAX_QUEUES: u16 = 256;
/// The largest split ring.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// The protocol features this backend implements.
pub fn protocol_features() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::CONFIG
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
}

/// A reply that waits for the device to finish stopping a ring.
enum AfterStop {
    GetBase(Reply<Result<u16>>),
    Disable(Reply<Result<()>>),
}

struct PendingStop {
    index: u16,
    then: AfterStop,
}

/// The state of one backend: the device, the negotiated features, the memory
/// table and the vrings.
pub struct Backend<D: Device> {
    device: D,
    owner: bool,
    acked_features: u64,
    acked_protocol: VhostUserProtocolFeatures,
    memory: Option<MemoryTable>,
    vrings: Vec<Vring>,
    pending: Option<PendingStop>,
}

impl<D: Device> Backend<D> {
    /// A backend for `device`, after checking its queue count and size.
    pub fn new(device: D) -> Result<Self> {
        let n = device.num_queues();
        if n == 0 || n > MAX_QUEUES {
            return Err(Error::Device(format!(
                "a device has 1 to {MAX_QUEUES} queues, not {n}"
            )));
        }
        let max = device.max_queue_size();
        if !max.is_power_of_two() || max > MAX_QUEUE_SIZE {
            return Err(Error::Device(format!(
                "the maximum queue size must be a power of two up to {MAX_QUEUE_SIZE}, not {max}"
            )));
        }
        Ok(Backend {
            device,
            owner: false,
            acked_features: 0,
            acked_protocol: VhostUserProtocolFeatures::empty(),
            memory: None,
            vrings: (0..n).map(|_| Vring::default()).collect(),
            pending: None,
        })
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The current guest memory, if the frontend sent a table.
    pub fn memory(&self) -> Option<&Arc<GuestMem>> {
        self.memory.as_ref().map(MemoryTable::guest_memory)
    }

    /// The current memory table.
    pub fn memory_table(&self) -> Option<&MemoryTable> {
        self.memory.as_ref()
    }

    pub fn vring(&self, index: u16) -> Option<&Vring> {
        self.vrings.get(usize::from(index))
    }

    pub fn acked_features(&self) -> u64 {
        self.acked_features
    }

    pub fn acked_protocol_features(&self) -> VhostUserProtocolFeatures {
        self.acked_protocol
    }

    pub fn has_owner(&self) -> bool {
        self.owner
    }

    /// The features offered to the frontend.
    pub fn offered_features(&self) -> u64 {
        (self.device.features() & DEVICE_FEATURE_MASK) | TRANSPORT_FEATURES
    }

    // ---- connection lifecycle ----

    pub(crate) fn connected(&mut self) {
        self.device.connected();
    }

    pub(crate) fn disconnected(&mut self, error: Option<&Error>) {
        self.reset(StopReason::Disconnected);
        self.device.disconnected(error);
    }

    pub(crate) fn refused(&mut self, error: &Error) {
        self.device.refused(error);
    }

    pub(crate) fn closed(&mut self) {
        self.device.closed();
    }

    /// Back to the state before any frontend: rings stopped, fds and memory
    /// dropped, features forgotten.
    fn reset(&mut self, reason: StopReason) {
        // A pending reply is dropped: its waiter sees the owner gone.
        self.pending = None;
        for i in 0..self.vrings.len() {
            if self.vrings[i].started {
                let _ = self.device.vring_stopped(i as u16, reason);
            }
            self.vrings[i].forget_fds();
            self.vrings[i] = Vring::default();
        }
        if self.memory.take().is_some() {
            self.device.memory_changed(None);
        }
        self.owner = false;
        self.acked_features = 0;
        self.acked_protocol = VhostUserProtocolFeatures::empty();
        self.device.reset();
    }

    // ---- checks ----

    fn need_owner(&self, request: &'static str) -> Result<()> {
        if self.owner {
            Ok(())
        } else {
            Err(Error::refused(request, "no SET_OWNER yet"))
        }
    }

    fn install(&mut self, table: Option<MemoryTable>) {
        self.memory = table;
        let mem = self.memory.as_ref().map(MemoryTable::guest_memory);
        self.device.memory_changed(mem);
    }

    // ---- requests ----

    pub fn set_owner(&mut self) -> Result<()> {
        self.owner = true;
        Ok(())
    }

    pub fn reset_owner(&mut self) -> Result<()> {
        self.reset(StopReason::Reset);
        Ok(())
    }

    pub fn reset_device(&mut self) -> Result<()> {
        let owner = self.owner;
        let protocol = self.acked_protocol;
        self.reset(StopReason::Reset);
        self.owner = owner;
        self.acked_protocol = protocol;
        Ok(())
    }

    pub fn get_features(&mut self) -> Result<u64> {
        Ok(self.offered_features())
    }

    pub fn set_features(&mut self, features: u64) -> Result<()> {
        const R: &str = "SET_FEATURES";
        self.need_owner(R)?;
        let offered = self.offered_features();
        if features & !offered != 0 {
            return Err(Error::refused(
                R,
                format!(
                    "features 0x{:x} were not offered (offered 0x{offered:x})",
                    features & !offered
                ),
            ));
        }
        if features != self.acked_features && self.vrings.iter().any(|v| v.started) {
            return Err(Error::refused(
                R,
                "features cannot change while a vring runs",
            ));
        }
        self.acked_features = features;
        self.device.features_acked(features);
        Ok(())
    }

    pub fn get_protocol_features(&mut self) -> Result<VhostUserProtocolFeatures> {
        Ok(protocol_features())
    }

    pub fn set_protocol_features(&mut self, features: u64) -> Result<()> {
        let offered = protocol_features();
        match VhostUserProtocolFeatures::from_bits(features) {
            Some(f) if offered.contains(f) => {
                self.acked_protocol = f;
                Ok(())
            }
            _ => Err(Error::refused(
                "SET_PROTOCOL_FEATURES",
                format!(
                    "protocol features 0x{:x} were not offered (offered 0x{:x})",
                    features & !offered.bits(),
                    offered.bits()
                ),
            )),
        }
    }

    pub fn get_queue_num(&mut self) -> Result<u64> {
        Ok(self.vrings.len() as u64)
    }

    pub fn get_max_mem_slots(&mut self) -> Result<u64> {
        Ok(MAX_MEM_SLOTS)
    }

    /// `SET_MEM_TABLE`, with the regions already mapped.
    pub fn set_mem_table(&mut self, regions: Vec<MappedRegion>) -> Result<()> {
        const R: &str = "SET_MEM_TABLE";
        self.need_owner(R)?;
        let table = MemoryTable::new(regions).map_err(|e| Error::refused(R, e))?;
        self.install(Some(table));
        Ok(())
    }

    /// `ADD_MEM_REG`, with the region already mapped.
    pub fn add_mem_region(&mut self, region: MappedRegion) -> Result<()> {
        const R: &str = "ADD_MEM_REG";
        self.need_owner(R)?;
        let table = match &self.memory {
            Some(t) => t.with_added(region),
            None => MemoryTable::new(vec![region]),
        }
        .map_err(|e| Error::refused(R, e))?;
        self.install(Some(table));
        Ok(())
    }

    pub fn remove_mem_region(&mut self, desc: &RegionDesc) -> Result<()> {
        const R: &str = "REM_MEM_REG";
        self.need_owner(R)?;
        let table = self
            .memory
            .as_ref()
            .ok_or_else(|| Error::refused(R, "there is no memory table"))?
            .without(desc)
            .map_err(|e| Error::refused(R, e))?;
        self.install(table);
        Ok(())
    }

    pub fn get_config(&mut self, offset: u32, size: u32) -> Result<Vec<u8>> {
        let config = self.device.config();
        let range = usize::try_from(offset).ok().and_then(|o| {
            let end = o.checked_add(usize::try_from(size).ok()?)?;
            config.get(o..end)
        });
        range.map(<[u8]>::to_vec).ok_or_else(|| {
            Error::refused(
                "GET_CONFIG",
                format!(
                    "{size} bytes at offset {offset} are outside the {}-byte configuration space",
                    config.len()
                ),
            )
        })
    }

    pub fn set_config(&mut self, offset: u32, data: &[u8]) -> Result<()> {
        self.device
            .write_config(offset, data)
            .map_err(|e| Error::refused("SET_CONFIG", e))
    }
}
