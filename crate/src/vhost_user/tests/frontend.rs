//! The setup QEMU does, with vhost's own frontend, then a descriptor chain
//! written by the driver and served through a virtio-queue `Queue` built
//! from the core's state and memory.

use std::os::unix::io::AsRawFd;

use vhost::vhost_user::message::{
    VhostUserConfigFlags, VhostUserHeaderFlag, VhostUserProtocolFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_queue::{QueueOwnedT, QueueState, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::super::backend::TRANSPORT_FEATURES;
use super::support::*;
use crate::vhost_user::StopReason;

const GIB: u64 = 1 << 30;
const LOW_USER: u64 = 0x7f00_0000_0000;
const HIGH_USER: u64 = 0x7f80_0000_0000;
/// The rings live 4 GiB into a region that starts at 4 GiB and is larger
/// than 4 GiB.
const DESC: u64 = 2 * 4 * GIB;
const AVAIL: u64 = DESC + 16 * MAX_SIZE as u64;
const USED: u64 = AVAIL + 0x1000;

/// Guest RAM: 1 MiB at 0, and 4 GiB + 1 MiB at 4 GiB (a sparse memfd,
/// mapped from offset 0x1000).
pub fn guest_ram() -> GuestRam {
    GuestRam::new(&[
        (0, 0x10_0000, LOW_USER, 0),
        (4 * GIB, 4 * GIB + 0x10_0000, HIGH_USER, 0x1000),
    ])
}

fn region_info(ram: &GuestRam, i: usize) -> VhostUserMemoryRegionInfo {
    let r = ram.regions[i];
    VhostUserMemoryRegionInfo {
        guest_phys_addr: r.guest_addr,
        memory_size: r.size,
        userspace_addr: r.user_addr,
        mmap_offset: r.mmap_offset,
        mmap_handle: ram.files[i].as_raw_fd(),
    }
}

/// Connects and negotiates as QEMU does; NEED_REPLY on every request after.
pub fn negotiate(h: &Harness) -> (Frontend, u64) {
    let mut fe = Frontend::connect(&h.path, 2).unwrap();
    let features = fe.get_features().unwrap();
    fe.set_owner().unwrap();
    let pf = fe.get_protocol_features().unwrap();
    assert_eq!(
        pf,
        VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
    );
    fe.set_protocol_features(pf).unwrap();
    fe.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
    (fe, features)
}

fn vring_config(ram: &GuestRam) -> VringConfigData {
    VringConfigData {
        queue_max_size: MAX_SIZE,
        queue_size: MAX_SIZE,
        flags: 0,
        desc_table_addr: ram.user(DESC),
        used_ring_addr: ram.user(USED),
        avail_ring_addr: ram.user(AVAIL),
        log_addr: None,
    }
}

#[test]
fn full_setup_then_a_chain_through_the_cores_queue() {
    let h = Harness::start("setup", 2);
    let (mut fe, features) = negotiate(&h);
    assert_eq!(features, TRANSPORT_FEATURES | DEVICE_FEATURES);
    assert_eq!(fe.get_queue_num().unwrap(), 2);
    assert_eq!(fe.get_max_mem_slots().unwrap(), 509);
    fe.set_features(features).unwrap();

    let ram = guest_ram();
    fe.set_mem_table(&[region_info(&ram, 0), region_info(&ram, 1)])
        .unwrap();
    // The driver's ring: used->idx already 7 (a ring in use before).
    ram.mem().write_obj(7u16, GuestAddress(USED + 2)).unwrap();
    fe.set_vring_num(0, MAX_SIZE).unwrap();
    fe.set_vring_base(0, 7).unwrap();
    fe.set_vring_addr(0, &vring_config(&ram)).unwrap();
    let kick = EventFd::new(0).unwrap();
    let call = EventFd::new(EFD_NONBLOCK).unwrap();
    fe.set_vring_kick(0, &kick).unwrap();
    fe.set_vring_call(0, &call).unwrap();
    // Not served before SET_VRING_ENABLE.
    assert!(!h.events().iter().any(|e| matches!(e, Event::Started(..))));
    fe.set_vring_enable(0, true).unwrap();
    let expected = QueueState {
        max_size: MAX_SIZE,
        next_avail: 7,
        next_used: 7,
        event_idx_enabled: true,
        size: MAX_SIZE,
        ready: true,
        desc_table: DESC,
        avail_ring: AVAIL,
        used_ring: USED,
    };
    assert!(h.events().contains(&Event::Started(0, expected)));
    assert!(h.events().contains(&Event::Memory(Some(2))));
    assert!(h.events().contains(&Event::Features(features)));

    // The driver: a two-descriptor chain (readable 16 bytes, writable 64)
    // at avail slot 7, then a kick.
    let m = ram.mem();
    let desc = |i: u64, addr: u64, len: u32, flags: u16, next: u16| {
        let at = GuestAddress(DESC + 16 * i);
        m.write_obj(addr, at).unwrap();
        m.write_obj(len, at.unchecked_add(8)).unwrap();
        m.write_obj(flags, at.unchecked_add(12)).unwrap();
        m.write_obj(next, at.unchecked_add(14)).unwrap();
    };
    desc(3, 0x1000, 16, 1, 4); // NEXT
    desc(4, 0x2000, 64, 2, 0); // WRITE
    m.write_slice(b"hello, vhost-usr", GuestAddress(0x1000))
        .unwrap();
    m.write_obj(3u16, GuestAddress(AVAIL + 4 + 2 * 7)).unwrap();
    m.write_obj(8u16, GuestAddress(AVAIL + 2)).unwrap();
    // used_event: interrupt me once used->idx passes 7.
    m.write_obj(7u16, GuestAddress(AVAIL + 4 + 2 * MAX_SIZE as u64))
        .unwrap();
    kick.write(1).unwrap();

    // The device, on the owner thread: the kick, the chain, a used entry,
    // the interrupt.
    let (read, kicks) = h.owner.with(|b| {
        let r = b.device_mut().running.get_mut(&0).unwrap();
        let kicks = r.kick.drain().unwrap();
        let mem = r.memory.clone();
        let chain = r.queue.iter(&*mem).unwrap().next().unwrap();
        let head = chain.head_index();
        let descs: Vec<_> = chain.collect();
        let mut buf = vec![0u8; descs[0].len() as usize];
        mem.read_slice(&mut buf, descs[0].addr()).unwrap();
        assert!(descs[1].is_write_only());
        mem.write_slice(b"done", descs[1].addr()).unwrap();
        r.queue.add_used(&*mem, head, 4).unwrap();
        assert!(r.queue.needs_notification(&*mem).unwrap());
        assert!(r.call.signal().unwrap());
        (buf, kicks)
    });
    assert_eq!(kicks, Some(1));
    assert_eq!(read, b"hello, vhost-usr");
    assert_eq!(call.read().unwrap(), 1);
    assert_eq!(m.read_obj::<u16>(GuestAddress(USED + 2)).unwrap(), 8);
    assert_eq!(
        m.read_obj::<u32>(GuestAddress(USED + 4 + 8 * 7)).unwrap(),
        3
    );
    assert_eq!(
        m.read_obj::<u32>(GuestAddress(USED + 8 + 8 * 7)).unwrap(),
        4
    );
    let mut out = [0u8; 4];
    m.read_slice(&mut out, GuestAddress(0x2000)).unwrap();
    assert_eq!(&out, b"done");

    // QEMU's stop: disable, then GET_VRING_BASE.
    fe.set_vring_enable(0, false).unwrap();
    assert!(h
        .events()
        .contains(&Event::Stopped(0, StopReason::Disabled)));
    assert_eq!(fe.get_vring_base(0).unwrap(), 8);
    h.owner.with(|b| {
        let v = b.vring(0).unwrap();
        assert!(!v.started() && v.kick().is_none() && !v.call().is_set());
        assert_eq!(v.base(), 8);
    });

    // The config space comes from the device.
    let (_, cfg) = fe
        .get_config(4, 8, VhostUserConfigFlags::empty(), &[0u8; 8])
        .unwrap();
    assert_eq!(cfg, (4u8..12).collect::<Vec<_>>());
    // (A read past the end gets the protocol's empty reply, which vhost's
    // frontend cannot read: tested with raw bytes in `hostile`.)
    fe.set_config(8, VhostUserConfigFlags::WRITABLE, &[1, 2])
        .unwrap();
    assert!(h.events().contains(&Event::ConfigWrite(8, vec![1, 2])));
    assert!(fe
        .set_config(0, VhostUserConfigFlags::WRITABLE, &[1])
        .is_err());
    // Refusals kept the connection.
    assert_eq!(fe.get_queue_num().unwrap(), 2);
    drop(fe);
    assert_eq!(h.wait_disconnected(), None);
}

#[test]
fn a_stop_waits_for_the_devices_in_flight_requests() {
    let h = Harness::start("pending", 1);
    let (fe, _ram, _kick) = running(&h);
    h.owner.with(|b| b.device_mut().hold_stops = true);
    let waiter = std::thread::spawn(move || {
        let base = fe.get_vring_base(0).unwrap();
        (fe, base)
    });
    h.wait_for("the stop", |e| {
        *e == Event::Stopped(0, StopReason::GetVringBase)
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!waiter.is_finished(), "the reply must wait for the device");
    h.owner.with(|b| {
        assert!(b.complete_stop(1, 9).is_err());
        b.complete_stop(0, 9).unwrap();
        assert!(b.complete_stop(0, 9).is_err());
    });
    let (fe, base) = waiter.join().unwrap();
    assert_eq!(base, 9);
    drop(fe);
    assert_eq!(h.wait_disconnected(), None);
}

#[test]
fn memory_slots_are_added_and_removed() {
    let h = Harness::start("slots", 1);
    let (mut fe, _) = negotiate(&h);
    let ram = guest_ram();
    fe.add_mem_region(&region_info(&ram, 1)).unwrap();
    fe.add_mem_region(&region_info(&ram, 0)).unwrap();
    // The same region again overlaps.
    assert!(fe.add_mem_region(&region_info(&ram, 0)).is_err());
    let old = h.owner.with(|b| b.memory().unwrap().clone());
    assert_eq!(old.num_regions(), 2);
    fe.remove_mem_region(&region_info(&ram, 1)).unwrap();
    // Memory reached through the old table stays mapped (keep-alive) and
    // still shared with the frontend's fd.
    old.write_obj(0xfeedu32, GuestAddress(8 * GIB)).unwrap();
    assert_eq!(
        ram.mem().read_obj::<u32>(GuestAddress(8 * GIB)).unwrap(),
        0xfeed
    );
    drop(old);
    assert!(fe.remove_mem_region(&region_info(&ram, 1)).is_err());
    h.owner.with(|b| {
        let m = b.memory().unwrap();
        assert_eq!(m.num_regions(), 1);
        assert!(m.find_region(GuestAddress(4 * GIB)).is_none());
    });
    fe.remove_mem_region(&region_info(&ram, 0)).unwrap();
    h.owner.with(|b| assert!(b.memory().is_none()));
    assert_eq!(
        h.events()
            .iter()
            .filter(|e| matches!(e, Event::Memory(_)))
            .cloned()
            .collect::<Vec<_>>(),
        [
            Event::Memory(Some(1)),
            Event::Memory(Some(2)),
            Event::Memory(Some(1)),
            Event::Memory(None)
        ]
    );
}

#[test]
fn the_next_frontend_finds_a_clean_backend() {
    let h = Harness::start("reconnect", 1);
    let (fe, _ram, _kick) = running(&h);
    drop(fe); // QEMU killed mid-run
    assert_eq!(h.wait_disconnected(), None);
    assert!(h
        .events()
        .contains(&Event::Stopped(0, StopReason::Disconnected)));
    h.owner.with(|b| {
        assert!(b.memory().is_none() && !b.has_owner() && b.acked_features() == 0);
        assert!(b.vring(0).unwrap().kick().is_none());
        assert!(b.device().running.is_empty());
    });
    h.take_events();
    let (mut fe, _) = negotiate(&h);
    assert_eq!(fe.get_queue_num().unwrap(), 1);
    assert_eq!(h.events()[0], Event::Connected);
}

/// Memory and a running vring 0, set up as QEMU does.
fn running(h: &Harness) -> (Frontend, GuestRam, EventFd) {
    let (mut fe, features) = negotiate(h);
    fe.set_features(features).unwrap();
    let ram = guest_ram();
    fe.set_mem_table(&[region_info(&ram, 0), region_info(&ram, 1)])
        .unwrap();
    fe.set_vring_num(0, MAX_SIZE).unwrap();
    fe.set_vring_addr(0, &vring_config(&ram)).unwrap();
    let kick = EventFd::new(0).unwrap();
    fe.set_vring_kick(0, &kick).unwrap();
    fe.set_vring_enable(0, true).unwrap();
    h.owner.with(|b| assert!(b.vring(0).unwrap().started()));
    (fe, ram, kick)
}

#[test]
fn the_call_fd_can_change_while_the_ring_runs() {
    let h = Harness::start("call-swap", 1);
    let (fe, _ram, _kick) = running(&h);
    let first = EventFd::new(EFD_NONBLOCK).unwrap();
    let second = EventFd::new(EFD_NONBLOCK).unwrap();
    fe.set_vring_call(0, &first).unwrap();
    let signal = |h: &Harness| {
        h.owner
            .with(|b| b.device().running[&0].call.signal().unwrap())
    };
    assert!(signal(&h));
    fe.set_vring_call(0, &second).unwrap();
    assert!(signal(&h));
    assert_eq!(first.read().unwrap(), 1);
    assert_eq!(second.read().unwrap(), 1);
    assert!(first.read().is_err(), "the old fd got no second signal");
}

#[test]
fn a_running_ring_keeps_its_layout_and_reset_owner_stops_it() {
    let h = Harness::start("reset", 1);
    let (fe, ram, kick) = running(&h);
    h.take_events();
    // Size, addresses, base and kick cannot change under the device.
    assert!(fe.set_vring_num(0, 64).is_err());
    assert!(fe.set_vring_addr(0, &vring_config(&ram)).is_err());
    assert!(fe.set_vring_base(0, 3).is_err());
    assert!(fe.set_vring_kick(0, &kick).is_err());
    // Refusals reach the device after the acknowledgement: wait for the last.
    h.wait_for(
        "the kick refusal",
        |e| matches!(e, Event::Refused(m) if m.starts_with("SET_VRING_KICK")),
    );
    let running = |e: &&Event| matches!(e, Event::Refused(m) if m.contains("vring 0 is running"));
    assert_eq!(h.events().iter().filter(running).count(), 4);
    fe.reset_owner().unwrap();
    let ev = h.events();
    assert!(ev.contains(&Event::Stopped(0, StopReason::Reset)), "{ev:?}");
    assert!(ev.contains(&Event::Memory(None)) && ev.contains(&Event::Reset));
    h.owner.with(|b| {
        assert!(!b.has_owner() && b.memory().is_none());
        assert!(!b.vring(0).unwrap().started());
    });
    // The connection continues: a new owner can set the ring up again.
    fe.set_owner().unwrap();
    fe.set_vring_num(0, 64).unwrap();
}
