//! How much work a check may do before it answers "unknown".
//!
//! Checking linearizability is NP-complete (Gibbons & Korach 1997), and a
//! history with many concurrent or unknown-outcome operations on one key
//! can make the search explore exponentially many states. A budget turns
//! that into [`Verdict::Unknown`](crate::Verdict::Unknown) instead of a hang
//! or an out-of-memory kill.
//!
//! The state limit is deterministic, so the simulator should use only that:
//! a time limit makes the verdict depend on the machine's speed. The clock
//! is read only when a time limit is set.

use std::time::{Duration, Instant};

/// Limits on one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The most configurations (linearized set, state) one partition's
    /// search may reach. A correct history needs one to a few per
    /// operation; each costs 3 to 30 µs in a debug build and 100-200 bytes
    /// of memory.
    pub max_states_per_partition: u64,
    /// The longest the whole check may take.
    pub time_limit: Option<Duration>,
}

impl Budget {
    /// The default state limit: at most about 30 s of a debug build and
    /// 200 MB, and room for partitions of 100,000 operations.
    pub const DEFAULT_MAX_STATES_PER_PARTITION: u64 = 1_000_000;

    /// A budget with this state limit and no time limit.
    pub fn states(max_states_per_partition: u64) -> Self {
        Self {
            max_states_per_partition,
            time_limit: None,
        }
    }

    /// This budget with a time limit for the whole check as well.
    pub fn with_time_limit(self, time_limit: Duration) -> Self {
        Self {
            time_limit: Some(time_limit),
            ..self
        }
    }

    /// When the check must stop, if it has a time limit (a limit too far
    /// to represent is none). Reads the clock only then.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.time_limit
            .and_then(|limit| Instant::now().checked_add(limit))
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::states(Self::DEFAULT_MAX_STATES_PER_PARTITION)
    }
}
