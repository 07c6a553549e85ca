//! Completion latency histogram: log-linear buckets (32 per power of two, so any percentile is
//! within about 3% of the true value), fixed size, no allocation per sample, mergeable across
//! queue threads.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let top = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = top - SUB_BITS;
    let mantissa = (v >> shift) as usize & (SUB - 1);
    (shift as usize + 1) * SUB + mantissa
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i / SUB - 1) as u32;
    let mantissa = (i % SUB) as u64;
    let low = (SUB as u64 + mantissa) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value below or at which a fraction `q` (0..=1) of the samples lie: the upper bound of
    /// the bucket holding the sample of rank ceil(q * count), capped at the largest sample.
    /// Zero when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bounded() {
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            1000,
            123_456,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = index(v);
            assert!(upper(i) >= v, "{v}");
            if i > 0 {
                assert!(upper(i - 1) < v, "{v}");
            }
            // Within ~3%.
            assert!((upper(i) - v) as f64 <= v as f64 / 32.0 + 1.0, "{v}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_run() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        let p999 = h.quantile(0.999) as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.035, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.035, "{p99}");
        assert!((p999 / 9_990_000.0 - 1.0).abs() < 0.035, "{p999}");
        assert_eq!(h.quantile(1.0), 10_000_000);
    }

    #[test]
    fn tail_sample_sets_p999_but_not_p50() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(10_000);
        }
        h.record(5_000_000);
        assert!(h.quantile(0.5) <= 10_400);
        assert!(h.quantile(0.999) <= 10_400);
        assert_eq!(h.quantile(0.9999), 5_000_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(100);
        b.record(200);
        b.record(300);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(1.0), 300);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }
}
