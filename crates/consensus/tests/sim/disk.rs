//! A simulated server's disk: what raft reads (everything written) and what
//! survives a crash (only what the last sync covered).

use consensus::raft::eraftpb::{ConfState, Snapshot};

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
    /// The disk of a server of the initial ensemble: the static
    /// configuration as a snapshot point at `bootstrap` (index 1, term 1,
    /// as the server bootstraps; index 0 only for the deliberately broken
    /// ensembles of [`crate::sim::cluster::Faults::bootstrap_at_zero`]).
    ///
    /// Starting at index 1 means no server ever holds entry 1, so a joiner,
    /// which starts with an empty log and no configuration, can only catch
    /// up by a snapshot (which carries the configuration), never by
    /// replaying entries onto a configuration it never had.
    pub(crate) fn bootstrap(conf: &ConfState, bootstrap: u64) -> Disk {
        let mut core = LogCore::default();
        core.conf_state = conf.clone();
        if bootstrap > 0 {
            let mut point = Snapshot::default();
            point.mut_metadata().index = bootstrap;
            point.mut_metadata().term = 1;
            point.mut_metadata().set_conf_state(conf.clone());
            core.snapshot = point;
            core.hard_state.term = 1;
            core.hard_state.commit = bootstrap;
        }
        Disk::of(core)
    }

    /// The disk of a joiner: nothing at all, not even a configuration.
    pub(crate) fn empty() -> Disk {
        Disk::of(LogCore::default())
    }

    fn of(core: LogCore) -> Disk {
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
