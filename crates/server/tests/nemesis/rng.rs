//! The run's randomness: splitmix64 (Steele, Lea & Flood 2014), seeded
//! from `CONCLAVE_NEMESIS_SEED` or the clock. The nemesis draws every
//! choice from it, and each client thread gets its own generator forked
//! from it, so a seed names the whole schedule of choices (the timing of
//! real processes still differs from run to run).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// An index into a collection of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration between `lo_ms` and `hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(lo_ms + self.below(hi_ms.saturating_sub(lo_ms) + 1))
    }

    /// An independent generator for another thread.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// `CONCLAVE_NEMESIS_SEED` if set (decimal or 0x-hex), else the clock.
pub fn seed() -> u64 {
    if let Ok(text) = std::env::var("CONCLAVE_NEMESIS_SEED") {
        let text = text.trim();
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        return parsed.unwrap_or_else(|e| panic!("CONCLAVE_NEMESIS_SEED={text:?}: {e}"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Mixed, so that runs a second apart get unrelated schedules.
    Rng::new(now.as_nanos() as u64 ^ u64::from(std::process::id())).next_u64()
}
