//! A simulated server's disk: what raft reads (everything written) and what
//! survives a crash (only what the last sync covered).

use consensus::raft::eraftpb::ConfState;

use consensus::{LogCore, MemLog as SimLog};

/// An entry the state machine applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppliedEntry {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) zxid: i64,
    /// Empty for a leader's first entry.
    pub(crate) data: Vec<u8>,
}

/// What a crash leaves behind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Durable {
    pub(crate) log: LogCore,
    /// The state machine's applied entries as of the last sync (apply
    /// batches are written unsynced, like the server's, and a later sync
    /// covers them).
    pub(crate) applied: Vec<AppliedEntry>,
}

pub(crate) struct Disk {
    /// Every write, readable at once (the OS page cache).
    pub(crate) live: SimLog,
    pub(crate) durable: Durable,
}

impl Disk {
    /// A fresh disk holding only the membership.
    pub(crate) fn new(conf: &ConfState) -> Disk {
        let mut core = LogCore::default();
        core.conf_state = conf.clone();
        Disk {
            live: SimLog::new(core.clone()),
            durable: Durable {
                log: core,
                applied: Vec::new(),
            },
        }
    }

    /// Makes everything written so far durable.
    pub(crate) fn sync(&mut self, applied: &[AppliedEntry]) {
        self.durable.log = self.live.core().clone();
        self.durable.applied = applied.to_vec();
    }

    /// A crash: the page cache is gone, the disk holds what was synced.
    pub(crate) fn crash(&mut self) {
        self.live = SimLog::new(self.durable.log.clone());
    }
}
