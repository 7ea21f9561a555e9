//! Snapshots for laggards and log compaction. raft-rs reads the log from
//! memory (`MemLog`), so a member keeps a bounded number of entries behind
//! its applied index; a follower further behind gets a snapshot, made on
//! demand: when raft-rs asks for one newer than any at hand, the log says
//! "temporarily unavailable" and raises a flag, and after the round the
//! state machine serializes its applied state, which raft-rs sends at its
//! next contact with that follower.

use raft::eraftpb::Snapshot;

use super::Driver;
use super::io::{LogWriter, StateMachine, Transport};

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// raft-rs wants a snapshot to send: one of the state as applied.
    /// True if it made one (and queued it for the followers waiting).
    pub(super) fn offer_snapshot_if_wanted(&mut self, sm: &mut dyn StateMachine<W>) -> bool {
        if !self.log.core().snapshot_wanted() {
            return false;
        }
        let index = self.applied_index;
        let (term, conf) = {
            let core = self.log.core();
            (core.term(index), core.conf_state.clone())
        };
        let Some(term) = term else {
            return false;
        };
        let data = sm.snapshot(index, term, self.applied_zxid);
        tracing::info!(
            index,
            zxid = format_args!("0x{:x}", self.applied_zxid),
            bytes = data.len(),
            "made a snapshot for a follower too far behind"
        );
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = index;
        snapshot.mut_metadata().term = term;
        snapshot.mut_metadata().set_conf_state(conf);
        snapshot.data = data.into();
        self.log.core().offer_snapshot(snapshot);
        // The followers that asked for it get it now, not at their next
        // heartbeat; `drive` sends what this queues.
        self.node.resend_to_snapshot_waiters();
        true
    }

    /// Keeps `retained_entries` behind the applied index, dropping older
    /// ones in steps (so a compaction is not one write per entry).
    pub(super) fn compact_log(&mut self, applied_index: u64) {
        let retain = self.config.retained_entries.max(1);
        if applied_index <= self.compacted_through + 2 * retain {
            return;
        }
        let through = applied_index - retain;
        let mut core = self.log.core();
        let Some(term) = core.term(through) else {
            return;
        };
        let mut point = Snapshot::default();
        point.mut_metadata().index = through;
        point.mut_metadata().term = term;
        point.mut_metadata().set_conf_state(core.conf_state.clone());
        core.compact(point);
        drop(core);
        self.compacted_through = through;
        self.disk.compact(through);
    }
}
