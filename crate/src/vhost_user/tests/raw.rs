//! A raw vhost-user frontend for the hostile tests: header, body and fds
//! exactly as given, and the helpers around it.
use std::io::Read;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use super::super::mmap::tests::memfd;
use super::support::*;

pub(super) const GET_FEATURES: u32 = 1;
pub(super) const SET_FEATURES: u32 = 2;
pub(super) const SET_OWNER: u32 = 3;
pub(super) const SET_MEM_TABLE: u32 = 5;
pub(super) const SET_VRING_NUM: u32 = 8;
pub(super) const SET_VRING_ADDR: u32 = 9;
pub(super) const GET_VRING_BASE: u32 = 11;
pub(super) const SET_VRING_KICK: u32 = 12;
pub(super) const GET_PROTOCOL_FEATURES: u32 = 15;
pub(super) const SET_PROTOCOL_FEATURES: u32 = 16;
pub(super) const ADD_MEM_REG: u32 = 37;

pub(super) const VERSION: u32 = 1;
pub(super) const NEED_REPLY: u32 = 0x8;
pub(super) const PROTOCOL_FEATURES: u64 = 1 << 30;
/// REPLY_ACK | MQ | CONFIG | CONFIGURE_MEM_SLOTS.
pub(super) const PROTOCOL: u64 = 0x8 | 0x1 | 0x200 | 0x8000;

/// Sends one hostile message.
pub(super) type Sender = Box<dyn Fn(&Raw)>;
pub(super) type Fds = Vec<RawFd>;

pub(super) struct Raw {
    pub(super) sock: UnixStream,
}

pub(super) fn u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Raw {
    pub(super) fn connect(h: &Harness) -> Raw {
        let sock = UnixStream::connect(&h.path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw { sock }
    }

    pub(super) fn send(&self, req: u32, flags: u32, body: &[u8], fds: &[RawFd]) {
        let hdr = u32s(&[req, VERSION | flags, body.len() as u32]);
        self.sock.send_with_fds(&[&hdr, body], fds).unwrap();
    }

    pub(super) fn reply(&mut self) -> Vec<u8> {
        let mut hdr = [0u8; 12];
        self.sock.read_exact(&mut hdr).unwrap();
        let size = u32::from_le_bytes(hdr[8..12].try_into().unwrap()) as usize;
        let mut body = vec![0u8; size];
        self.sock.read_exact(&mut body).unwrap();
        body
    }

    pub(super) fn reply_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.reply()[..8].try_into().unwrap())
    }

    /// Sends with NEED_REPLY and returns the acknowledgement (0 = done).
    pub(super) fn ack(&mut self, req: u32, body: &[u8], fds: &[RawFd]) -> u64 {
        self.send(req, NEED_REPLY, body, fds);
        self.reply_u64()
    }

    /// Features, protocol features with REPLY_ACK, and (if `owner`) SET_OWNER.
    pub(super) fn negotiate(h: &Harness, owner: bool) -> Raw {
        let mut r = Raw::connect(h);
        r.send(GET_FEATURES, 0, &[], &[]);
        assert_ne!(r.reply_u64() & PROTOCOL_FEATURES, 0);
        r.send(GET_PROTOCOL_FEATURES, 0, &[], &[]);
        assert_eq!(r.reply_u64(), PROTOCOL);
        assert_eq!(r.ack(SET_PROTOCOL_FEATURES, &u64s(&[PROTOCOL]), &[]), 0);
        if owner {
            assert_eq!(r.ack(SET_OWNER, &[], &[]), 0);
            assert_eq!(r.ack(SET_FEATURES, &u64s(&[PROTOCOL_FEATURES]), &[]), 0);
        }
        r
    }

    /// The backend closed the connection (after an error acknowledgement,
    /// when the vhost crate sent one before giving up).
    pub(super) fn assert_dropped(&mut self) {
        let mut rest = Vec::new();
        match self.sock.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the backend to close the connection: {e}"),
        }
        if !rest.is_empty() {
            assert_eq!(rest.len(), 20, "only an acknowledgement may come: {rest:?}");
            assert_eq!(u64::from_le_bytes(rest[12..].try_into().unwrap()), 1);
        }
    }
}

/// A memory table body: (guest, size, user, offset) per region.
pub(super) fn table(regions: &[(u64, u64, u64, u64)]) -> Vec<u8> {
    let mut b = u32s(&[regions.len() as u32, 0]);
    for &(g, s, u, o) in regions {
        b.extend(u64s(&[g, s, u, o]));
    }
    b
}

/// After a hostile frontend: the backend serves a well-behaved one.
pub(super) fn still_serves(h: &Harness) {
    let mut r = Raw::negotiate(h, true);
    let f = memfd(0x10000);
    let fd = f.as_raw_fd();
    assert_eq!(
        r.ack(
            SET_MEM_TABLE,
            &table(&[(0, 0x10000, 0x1000_0000, 0)]),
            &[fd]
        ),
        0
    );
    assert_eq!(r.ack(SET_VRING_NUM, &u32s(&[0, 64]), &[]), 0);
}

/// The reason the last connection was dropped.
pub(super) fn dropped_because(h: &Harness) -> String {
    h.wait_disconnected().expect("a logged reason")
}
