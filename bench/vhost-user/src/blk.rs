//! virtio-blk wire format (virtio 1.2, 5.2): request types, status bytes, feature bits and the
//! config space layout, as both programs use them.

/// Request types (the `type` field of the 16-byte request header).
pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;

/// Status byte values, written by the device into the last writable byte.
pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;

/// The request header: type, reserved, sector (512-byte units), little-endian.
pub const HEADER_LEN: usize = 16;
pub const SECTOR: u64 = 512;
/// GET_ID answers with up to 20 bytes.
pub const ID_LEN: usize = 20;

/// Device feature bits.
pub const F_SIZE_MAX: u32 = 1;
pub const F_SEG_MAX: u32 = 2;
pub const F_RO: u32 = 5;
pub const F_BLK_SIZE: u32 = 6;
pub const F_FLUSH: u32 = 9;
pub const F_MQ: u32 = 12;
/// Transport feature bits.
pub const F_INDIRECT_DESC: u32 = 28;
pub const F_EVENT_IDX: u32 = 29;
pub const F_VERSION_1: u32 = 32;
/// vhost-user's own bit in the feature word.
pub const F_PROTOCOL_FEATURES: u32 = 30;

/// Config space offsets and the size of the part both programs use (up to `num_queues`).
pub const CFG_CAPACITY: usize = 0;
pub const CFG_SIZE_MAX: usize = 8;
pub const CFG_SEG_MAX: usize = 12;
pub const CFG_BLK_SIZE: usize = 20;
pub const CFG_NUM_QUEUES: usize = 34;
pub const CFG_LEN: usize = 36;

/// Encodes a request header.
pub fn header(kind: u32, sector: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&kind.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    h
}

/// Decodes a request header into (type, sector).
pub fn parse_header(h: &[u8; HEADER_LEN]) -> (u32, u64) {
    let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&h[8..16]);
    (kind, u64::from_le_bytes(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = header(T_OUT, 0x1234_5678_9abc);
        assert_eq!(&h[0..4], &[1, 0, 0, 0]);
        assert_eq!(&h[4..8], &[0, 0, 0, 0]);
        assert_eq!(parse_header(&h), (T_OUT, 0x1234_5678_9abc));
    }
}
