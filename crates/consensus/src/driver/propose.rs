//! Writes on their way into the log. On the leader, the state machine
//! prepares a write at the index and zxid its entry will take (so the
//! transaction carries its final zxid) and the entry is proposed; a client's
//! `reconfig` becomes a membership job instead (`reconfig.rs`). A follower
//! or observer forwards the write to the leader, which does the same. A new
//! leader prepares nothing until it has applied its predecessors' entries:
//! `prepare` judges a write against the applied state plus the leader's own
//! pending writes, which is right only when nothing else sits between them
//! in the log (Zab's rule that a leader serves only after synchronising).
//! A write that cannot reach a leader fails at once; its client reconnects
//! and learns the outcome by reading.

use super::Driver;
use super::io::{LogWriter, Prepared, StateMachine, Submission, Transport};
use super::notice::{Notice, Requester};
use crate::error::ConsensusError;

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// A write of this server's (a client's, or the state machine's own
    /// expiry and reaping): proposed if this server leads, forwarded to
    /// the leader otherwise. It is answered when applied (the state
    /// machine matches it by its requester), or failed through
    /// [`StateMachine::submission_failed`].
    pub fn submit(&mut self, submission: Submission<W>, sm: &mut dyn StateMachine<W>) {
        if !self.standing.is_member() {
            sm.submission_failed(submission.requester);
            return;
        }
        if self.is_leader() {
            self.propose(submission, sm);
            return;
        }
        let sent = match self.role.leader {
            Some(leader) => {
                let notice = Notice::Forward {
                    requester: submission.requester,
                    submission: sm.encode_submission(&submission),
                };
                self.notify(leader, &notice)
            }
            None => false,
        };
        if !sent {
            sm.submission_failed(submission.requester);
        }
    }

    /// A write another server forwarded: proposed if this server leads.
    pub(super) fn forwarded(
        &mut self,
        from: u64,
        requester: Requester,
        bytes: &[u8],
        sm: &mut dyn StateMachine<W>,
    ) {
        if !self.is_leader() {
            // The sender thought this server leads; it learns better and
            // fails its client's request (the client retries).
            tracing::debug!(
                peer = from,
                "a forwarded write reached a server that does not lead"
            );
            return;
        }
        match sm.decode_submission(requester, bytes) {
            Ok(submission) => self.propose(submission, sm),
            Err(e) => self.refuse(from, "undecodable forwarded write", &e),
        }
    }

    /// Prepares and proposes, behind the writes a new leader holds back.
    pub(super) fn propose(&mut self, submission: Submission<W>, sm: &mut dyn StateMachine<W>) {
        if !self.deferred.is_empty() {
            self.deferred.push_back(submission);
            return;
        }
        self.propose_now(submission, sm);
    }

    /// Proposes the writes a new leader held back, once it may.
    pub(super) fn propose_deferred(&mut self, sm: &mut dyn StateMachine<W>) {
        self.start_continued(sm);
        while !self.deferred.is_empty() && self.is_leader() && self.node.ready_to_propose() {
            let Some(submission) = self.deferred.pop_front() else {
                return;
            };
            // Not `propose`: it would queue the submission behind the
            // others still waiting, and this loop would never end.
            if !self.propose_now(submission, sm) {
                return;
            }
        }
    }

    /// [`Driver::propose`] without waiting behind held-back writes; false
    /// if this new leader is not ready yet (the write is first in line
    /// again).
    fn propose_now(&mut self, submission: Submission<W>, sm: &mut dyn StateMachine<W>) -> bool {
        let at = match self.node.next_proposal() {
            Ok(at) => at,
            Err(ConsensusError::LeaderNotReady { .. }) => {
                self.deferred.push_front(submission);
                return false;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot propose");
                sm.submission_failed(submission.requester);
                return true;
            }
        };
        let requester = submission.requester;
        let data = match sm.prepare(&submission, at, &self.membership) {
            Prepared::Entry(data) => data,
            Prepared::Reconfig { target } => {
                self.start_reconfig(requester, target, sm);
                return true;
            }
        };
        if let Err(e) = self.node.propose(data, at) {
            tracing::debug!(error = %e, "proposal refused");
            sm.submission_failed(requester);
        }
        true
    }

    /// Proposes the error transaction that answers a refused reconfig (at
    /// the next position), or fails it if this server cannot propose.
    pub(super) fn propose_refusal(
        &mut self,
        requester: Requester,
        error: &crate::membership::ReconfigError,
        sm: &mut dyn StateMachine<W>,
    ) {
        let Ok(at) = self.node.next_proposal() else {
            sm.submission_failed(requester);
            return;
        };
        let data = sm.refusal(requester, error, at);
        if let Err(e) = self.node.propose(data, at) {
            tracing::debug!(error = %e, "refusal not proposed");
            sm.submission_failed(requester);
        }
    }
}
