//! What the client threads of every workload share: the members'
//! addresses, the stop flag, reconnection to another member, and the
//! bookkeeping of progress (the longest stretch without an acknowledged
//! write) and of replies the workloads did not expect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::raw_client::Client;
use crate::rng::Rng;

/// The session timeout of the register and sequential clients: the
/// largest the servers grant by default (20 ticks of 200 ms).
pub const SESSION_MS: i32 = 4000;

/// How long a request may wait for its reply before its outcome is
/// called unknown and the connection dropped: longer than the longest
/// pause, so that most requests on a paused server are answered (or
/// refused) once it resumes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

/// The register keys change every epoch, so that each key's history
/// (which the linearizability search takes as one piece, with every
/// unknown-outcome write in it) stays about as long in a one-hour run as
/// in a short one.
pub const REGISTER_EPOCH: Duration = Duration::from_secs(30);

/// The parent of sequential nodes changes every epoch, so that a read of
/// its children (kept in the history) stays small in a long run.
pub const SEQUENTIAL_EPOCH: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Env {
    pub addrs: Vec<SocketAddr>,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    /// When the workloads started; epochs count from here.
    pub started: Instant,
    /// How long the workloads may run at most: the last epoch lasts
    /// until the end.
    pub horizon: Duration,
}

/// Counts the workloads keep besides their histories.
#[derive(Debug)]
pub struct Stats {
    /// The last acknowledged write and the longest stretch between two.
    progress: Mutex<(Instant, Duration)>,
    /// Error codes no workload expects, by workload and code.
    unexpected: Mutex<BTreeMap<(&'static str, i32), u64>>,
    /// Sessions opened.
    pub sessions: std::sync::atomic::AtomicU64,
    /// Writes acknowledged.
    writes: std::sync::atomic::AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            progress: Mutex::new((Instant::now(), Duration::ZERO)),
            unexpected: Mutex::default(),
            sessions: Default::default(),
            writes: Default::default(),
        }
    }
}

impl Stats {
    /// A write was acknowledged now.
    pub fn acknowledged_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let gap = p.0.elapsed();
        p.1 = p.1.max(gap);
        p.0 = Instant::now();
    }

    /// Writes acknowledged so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The longest stretch without an acknowledged write, until now.
    pub fn longest_gap(&self) -> Duration {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.1.max(p.0.elapsed())
    }

    /// Forgets the stretches so far (the gap is measured from now).
    pub fn reset_gap(&self) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), Duration::ZERO);
    }

    pub fn unexpected(&self, workload: &'static str, code: i32) {
        *self
            .unexpected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((workload, code))
            .or_default() += 1;
    }

    pub fn unexpected_codes(&self) -> BTreeMap<(&'static str, i32), u64> {
        self.unexpected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Env {
    /// The current epoch of `period`.
    pub fn epoch(&self, period: Duration) -> u64 {
        (self.started.elapsed().as_secs() / period.as_secs()).min(self.epochs(period) - 1)
    }

    /// How many epochs of `period` the run may have.
    pub fn epochs(&self, period: Duration) -> u64 {
        self.horizon.as_secs() / period.as_secs() + 1
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Opens a session on member `*home`, moving on to another member
    /// while that one refuses (down, paused, or without a leader); None
    /// once the run stops.
    pub fn connect(&self, home: &mut usize, rng: &mut Rng, timeout_ms: i32) -> Option<Client> {
        while !self.stopped() {
            match Client::connect(self.addrs[*home], timeout_ms) {
                Ok(client) => {
                    self.stats
                        .sessions
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Some(client);
                }
                Err(_) => {
                    self.move_on(home, rng);
                    std::thread::sleep(rng.millis(20, 100));
                }
            }
        }
        None
    }

    /// Picks another member than `*home`.
    pub fn move_on(&self, home: &mut usize, rng: &mut Rng) {
        let n = self.addrs.len();
        if n > 1 {
            *home = (*home + 1 + rng.index(n - 1)) % n;
        }
    }
}
