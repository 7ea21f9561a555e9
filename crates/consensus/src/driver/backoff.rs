//! How long a transport waits before it connects again to a peer that
//! refused it or could not be reached: exponential, capped, and jittered
//! from a seeded source (so that servers refused together do not come back
//! together, and a simulation replays). Sans-IO: it hands out delays; the
//! caller sleeps.

use crate::random::SplitMix;

/// Delays in milliseconds: `initial`, doubling up to `max`, each drawn
/// uniformly from its upper half (so the mean still doubles).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    next_ms: u64,
    rng: SplitMix,
}

impl Backoff {
    pub fn new(initial_ms: u64, max_ms: u64, seed: u64) -> Backoff {
        let initial_ms = initial_ms.max(1);
        Backoff {
            initial_ms,
            max_ms: max_ms.max(initial_ms),
            next_ms: initial_ms,
            rng: SplitMix::new(seed),
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay_ms(&mut self) -> u64 {
        let ceiling = self.next_ms;
        self.next_ms = self.next_ms.saturating_mul(2).min(self.max_ms);
        let half = ceiling / 2;
        half + self.rng.below(ceiling - half + 1)
    }

    /// A success: the next failure starts from the beginning again.
    pub fn reset(&mut self) {
        self.next_ms = self.initial_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(50, 2000, 7);
        let delays: Vec<u64> = (0..10).map(|_| b.next_delay_ms()).collect();
        assert!((25..=50).contains(&delays[0]), "{delays:?}");
        assert!((50..=100).contains(&delays[1]), "{delays:?}");
        assert!(
            delays[6..].iter().all(|d| (1000..=2000).contains(d)),
            "{delays:?}"
        );
        b.reset();
        assert!(b.next_delay_ms() <= 50);
    }

    #[test]
    fn the_seed_decides_the_jitter() {
        let draw = |seed| {
            let mut b = Backoff::new(50, 2000, seed);
            (0..8).map(|_| b.next_delay_ms()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
