//! The frontend's side of the vhost-user handshake, in the order QEMU's vhost-user-blk uses:
//! owner, features, protocol features, queue count, config, then (NEED_REPLY on every message
//! when REPLY_ACK was negotiated) SET_FEATURES, the memory table and each ring.

use std::path::Path;
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{
    VhostUserConfigFlags, VhostUserHeaderFlag, VhostUserProtocolFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vhost_user_bench::blk::*;

use crate::guest::{DriverQueue, GuestMem};

pub struct Session {
    fe: Frontend,
    pub features: u64,
    pub protocol: VhostUserProtocolFeatures,
    pub max_queues: u64,
    /// Disk size in bytes (config capacity).
    pub capacity: u64,
    /// The largest single segment the device accepts (SIZE_MAX), if it said.
    pub size_max: Option<u32>,
}

fn has(features: u64, bit: u32) -> bool {
    features & (1 << bit) != 0
}

impl Session {
    pub fn event_idx(&self) -> bool {
        has(self.features, F_EVENT_IDX)
    }

    pub fn indirect(&self) -> bool {
        has(self.features, F_INDIRECT_DESC)
    }

    /// Connects (retrying for up to `patience` while the backend comes up) and negotiates.
    pub fn connect(
        path: &Path,
        queues: u16,
        indirect: bool,
        patience: Duration,
    ) -> Result<Session, String> {
        let deadline = Instant::now() + patience;
        let fe = loop {
            match Frontend::connect(path, u64::from(queues)) {
                Ok(fe) => break fe,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("connect {}: {e}", path.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let err = |what: &'static str| move |e: vhost::Error| format!("{what}: {e}");
        fe.set_owner().map_err(err("SET_OWNER"))?;
        let offered = fe.get_features().map_err(err("GET_FEATURES"))?;
        if !has(offered, F_VERSION_1) {
            return Err("the backend does not offer VIRTIO_F_VERSION_1".into());
        }
        let wanted = [
            F_VERSION_1,
            F_EVENT_IDX,
            F_INDIRECT_DESC,
            F_PROTOCOL_FEATURES,
            F_SIZE_MAX,
            F_SEG_MAX,
            F_BLK_SIZE,
            F_FLUSH,
            F_MQ,
        ];
        let mut features = offered & wanted.iter().fold(0u64, |f, b| f | 1 << b);
        if !indirect {
            features &= !(1 << F_INDIRECT_DESC);
        }
        let mut s = Session {
            fe,
            features,
            protocol: VhostUserProtocolFeatures::empty(),
            max_queues: 1,
            capacity: 0,
            size_max: None,
        };
        if has(features, F_PROTOCOL_FEATURES) {
            let pf =
                s.fe.get_protocol_features()
                    .map_err(err("GET_PROTOCOL_FEATURES"))?;
            s.protocol = pf
                & (VhostUserProtocolFeatures::REPLY_ACK
                    | VhostUserProtocolFeatures::CONFIG
                    | VhostUserProtocolFeatures::MQ);
            s.fe.set_protocol_features(s.protocol)
                .map_err(err("SET_PROTOCOL_FEATURES"))?;
            if s.protocol.contains(VhostUserProtocolFeatures::MQ) {
                s.max_queues = s.fe.get_queue_num().map_err(err("GET_QUEUE_NUM"))?;
            }
        }
        if u64::from(queues) > s.max_queues {
            return Err(format!(
                "{queues} queues asked, the backend serves {}",
                s.max_queues
            ));
        }
        if !s.protocol.contains(VhostUserProtocolFeatures::CONFIG) {
            return Err(
                "the backend does not offer VHOST_USER_PROTOCOL_F_CONFIG: no capacity to read"
                    .into(),
            );
        }
        let (_, cfg) =
            s.fe.get_config(
                0,
                CFG_LEN as u32,
                VhostUserConfigFlags::empty(),
                &[0u8; CFG_LEN],
            )
            .map_err(err("GET_CONFIG"))?;
        let u32_at = |o: usize| u32::from_le_bytes(cfg[o..o + 4].try_into().unwrap());
        s.capacity =
            u64::from_le_bytes(cfg[CFG_CAPACITY..CFG_CAPACITY + 8].try_into().unwrap()) * SECTOR;
        if has(features, F_SIZE_MAX) {
            s.size_max = Some(u32_at(CFG_SIZE_MAX));
        }
        if s.protocol.contains(VhostUserProtocolFeatures::REPLY_ACK) {
            s.fe.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
        }
        s.fe.set_features(features).map_err(err("SET_FEATURES"))?;
        Ok(s)
    }

    pub fn set_memory(&self, mem: &GuestMem) -> Result<(), String> {
        let region = VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: mem.len() as u64,
            userspace_addr: mem.hva(0),
            mmap_offset: 0,
            mmap_handle: mem.fd(),
        };
        self.fe
            .set_mem_table(&[region])
            .map_err(|e| format!("SET_MEM_TABLE: {e}"))
    }

    /// Hands ring `index` to the backend and enables it.
    pub fn start_queue(
        &mut self,
        index: usize,
        q: &DriverQueue,
        mem: &GuestMem,
    ) -> Result<(), String> {
        let l = q.layout();
        let err =
            |what: &'static str| move |e: vhost::Error| format!("{what} (queue {index}): {e}");
        self.fe
            .set_vring_num(index, l.size)
            .map_err(err("SET_VRING_NUM"))?;
        self.fe
            .set_vring_base(index, 0)
            .map_err(err("SET_VRING_BASE"))?;
        let addrs = VringConfigData {
            queue_max_size: l.size,
            queue_size: l.size,
            flags: 0,
            desc_table_addr: mem.hva(l.desc),
            used_ring_addr: mem.hva(l.used),
            avail_ring_addr: mem.hva(l.avail),
            log_addr: None,
        };
        self.fe
            .set_vring_addr(index, &addrs)
            .map_err(err("SET_VRING_ADDR"))?;
        self.fe
            .set_vring_kick(index, &q.kick)
            .map_err(err("SET_VRING_KICK"))?;
        self.fe
            .set_vring_call(index, &q.call)
            .map_err(err("SET_VRING_CALL"))?;
        if has(self.features, F_PROTOCOL_FEATURES) {
            self.fe
                .set_vring_enable(index, true)
                .map_err(err("SET_VRING_ENABLE"))?;
        }
        Ok(())
    }

    /// Stops ring `index` (GET_VRING_BASE) and returns the backend's next avail index.
    pub fn stop_queue(&mut self, index: usize) -> Result<u32, String> {
        self.fe
            .get_vring_base(index)
            .map_err(|e| format!("GET_VRING_BASE (queue {index}): {e}"))
    }
}
