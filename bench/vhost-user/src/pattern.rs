//! The data the load generator writes and expects to read back.
//!
//! Every 8-byte word of the disk holds `mix(seed) ^ byte_offset` (little-endian), so a read
//! proves three things at once: the data comes from this run (the seed), from the right place
//! (the offset: a block served from the wrong sector fails) and whole (every word is checked).
//! Writes during the measurement write the same pattern, so the expected content of a block
//! never depends on the order in which concurrent requests complete.

/// splitmix64's finalizer: spreads a seed over all 64 bits.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern of the disk bytes starting at `offset` (both multiples of 8).
pub fn fill(buf: &mut [u8], offset: u64, seed: u64) {
    debug_assert!(offset % 8 == 0 && buf.len() % 8 == 0);
    let key = mix(seed);
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(key ^ (offset + 8 * i as u64)).to_le_bytes());
    }
}

/// The first word of `buf` that does not hold the pattern for disk offset `offset`.
#[derive(Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Disk byte offset of the word.
    pub offset: u64,
    pub expected: u64,
    pub found: u64,
    /// The disk offset the found word was written for, under the same seed (useful to tell a
    /// misplaced block from stale or foreign data).
    pub found_was_for: u64,
}

/// Checks `buf` against the pattern of the disk bytes starting at `offset`.
pub fn check(buf: &[u8], offset: u64, seed: u64) -> Result<(), Mismatch> {
    let key = mix(seed);
    // A branch-free pass first (vectorizes); only a failing buffer is walked again.
    let mut diff = 0u64;
    for (i, word) in buf.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        diff |= w ^ key ^ (offset + 8 * i as u64);
    }
    if diff == 0 {
        return Ok(());
    }
    for (i, word) in buf.chunks_exact(8).enumerate() {
        let found = u64::from_le_bytes(word.try_into().unwrap());
        let at = offset + 8 * i as u64;
        if found != key ^ at {
            return Err(Mismatch {
                offset: at,
                expected: key ^ at,
                found,
                found_was_for: found ^ key,
            });
        }
    }
    unreachable!("a difference was seen")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_check_passes() {
        let mut b = vec![0u8; 4096];
        fill(&mut b, 8192, 7);
        assert_eq!(check(&b, 8192, 7), Ok(()));
    }

    #[test]
    fn wrong_seed_fails() {
        let mut b = vec![0u8; 512];
        fill(&mut b, 0, 7);
        let e = check(&b, 0, 8).unwrap_err();
        assert_eq!(e.offset, 0);
    }

    #[test]
    fn misplaced_block_fails_and_says_where_it_came_from() {
        let mut b = vec![0u8; 4096];
        fill(&mut b, 4096 * 3, 1);
        let e = check(&b, 4096 * 5, 1).unwrap_err();
        assert_eq!(e.offset, 4096 * 5);
        assert_eq!(e.found_was_for, 4096 * 3);
    }

    #[test]
    fn one_flipped_bit_in_the_middle_is_found() {
        let mut b = vec![0u8; 65536];
        fill(&mut b, 0, 3);
        b[40_001] ^= 0x10;
        let e = check(&b, 0, 3).unwrap_err();
        assert_eq!(e.offset, 40_000);
        assert_eq!(e.expected ^ e.found, 0x10 << 8);
    }

    #[test]
    fn zeroes_fail() {
        assert!(check(&[0u8; 512], 0, 0).is_err());
    }
}
