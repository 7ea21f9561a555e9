//! ReadIndex rounds: what a linearizable `sync` needs, and what a session
//! re-open needs before it is answered (ZooKeeper's followers ask the
//! leader, `revalidateSession`). A round is answered once the leader has
//! confirmed with a quorum that it still leads and this server has applied
//! up to the commit index of that moment: a read after it sees every write
//! acknowledged before it was asked, on any server.
//!
//! raft-rs drops a round that reaches a leader before it has committed an
//! entry of its term, and one that is lost on the way; neither is ever
//! answered. So a round unanswered for an election timeout is asked again
//! (under the same context: raft-rs answers it once). A round asked of a
//! server that knows no leader is refused at once: its client tries
//! another server. Rounds in flight when the leader changes are dropped;
//! the state machine fails their clients (`StateMachine::role_changed`).

use super::Driver;
use super::io::{LogWriter, StateMachine, Transport};

/// Why a ReadIndex round cannot be asked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotServing;

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// Asks for a ReadIndex round under `context` (unique among the
    /// caller's rounds in flight); answered through
    /// [`StateMachine::read_index_ready`].
    pub fn read_index(&mut self, context: u64) -> Result<(), NotServing> {
        if !self.serving() {
            return Err(NotServing);
        }
        self.reads_waiting.insert(context, self.ticks);
        self.node.read_index(context.to_be_bytes().to_vec());
        tracing::trace!(context, "ReadIndex round asked");
        Ok(())
    }

    /// Asks again the rounds that waited an election timeout.
    pub(super) fn retry_reads(&mut self) {
        let patience = self.config.election_ticks as u64;
        let now = self.ticks;
        let stale: Vec<u64> = self
            .reads_waiting
            .iter()
            .filter(|(_, asked)| now.saturating_sub(**asked) >= patience)
            .map(|(context, _)| *context)
            .collect();
        for context in stale {
            self.reads_waiting.insert(context, now);
            self.node.read_index(context.to_be_bytes().to_vec());
        }
    }

    /// Answers the rounds whose index this server has applied.
    pub(super) fn answer_reads(&mut self, sm: &mut dyn StateMachine<W>) {
        let applied = self.applied_index;
        let (done, waiting): (Vec<_>, Vec<_>) = self
            .reads_ready
            .drain(..)
            .partition(|(index, _)| *index <= applied);
        self.reads_ready = waiting;
        for (index, context) in done {
            tracing::trace!(context, index, "ReadIndex round answered");
            sm.read_index_ready(context);
        }
    }

    /// Rounds in flight through a leader that is gone.
    pub(super) fn drop_reads(&mut self) {
        self.reads_waiting.clear();
        self.reads_ready.clear();
    }

    pub(super) fn reads_in_flight(&self) -> usize {
        self.reads_waiting.len() + self.reads_ready.len()
    }
}
