//! xorshift64*: a tiny, fast generator for request offsets (not for anything secret).

pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped, xorshift's one fixed point).
    pub fn new(seed: u64) -> Self {
        Rng(crate::pattern::mix(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`), by multiply-shift (no modulo bias worth the name here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(0);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let v = r.below(7);
            assert!(v < 7);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn seeds_give_different_streams() {
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
