//! A simulated server's disk: what raft reads (everything written) and what
//! survives a crash (only what the last sync covered).

use consensus::raft::eraftpb::{ConfState, Entry, HardState};
use consensus::raft::storage::MemStorage;

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
    pub(crate) hard_state: HardState,
    pub(crate) conf_state: ConfState,
    pub(crate) entries: Vec<Entry>,
    /// The state machine as of the last sync (apply batches are written
    /// unsynced, like the server's, and a later sync covers them).
    pub(crate) applied: Vec<AppliedEntry>,
}

pub(crate) struct Disk {
    /// Every write, readable at once (the OS page cache).
    pub(crate) live: MemStorage,
    pub(crate) durable: Durable,
}

impl Disk {
    pub(crate) fn new(voters: &[u64]) -> Disk {
        let conf_state = ConfState::from((voters.to_vec(), Vec::<u64>::new()));
        Disk {
            live: MemStorage::new_with_conf_state(conf_state.clone()),
            durable: Durable {
                conf_state,
                ..Durable::default()
            },
        }
    }

    /// Makes everything written so far durable.
    pub(crate) fn sync(&mut self, applied: &[AppliedEntry]) {
        use consensus::raft::Storage as _;
        let state = self.live.initial_state().expect("memory storage");
        self.durable.hard_state = state.hard_state;
        self.durable.conf_state = state.conf_state;
        self.durable.entries = self.live_entries();
        self.durable.applied = applied.to_vec();
    }

    /// A crash: the page cache is gone, the disk holds what was synced.
    pub(crate) fn crash(&mut self) {
        let storage = MemStorage::new_with_conf_state(self.durable.conf_state.clone());
        {
            let mut core = storage.wl();
            core.set_hardstate(self.durable.hard_state.clone());
            if !self.durable.entries.is_empty() {
                core.append(&self.durable.entries)
                    .expect("durable entries start at 1 and are contiguous");
            }
        }
        self.live = storage;
    }

    fn live_entries(&self) -> Vec<Entry> {
        use consensus::raft::Storage as _;
        let last = self.live.last_index().expect("memory storage");
        if last == 0 {
            return Vec::new();
        }
        self.live
            .entries(
                1,
                last + 1,
                None,
                consensus::raft::GetEntriesContext::empty(false),
            )
            .expect("memory storage keeps every entry")
    }
}
