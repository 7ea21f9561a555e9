//! Roles, liveness and the moments between leaders.
//!
//! - A change of role or leader is passed to the state machine, which
//!   fails what was in flight through a leader that is gone and decides
//!   whom it still serves; writes held back and ReadIndex rounds go too.
//! - A leader that steps down because it heard from no quorum
//!   (check-quorum) tells its followers: they may still be hearing its
//!   delayed heartbeats after a partition heals, and would refuse every
//!   pre-vote until its lease ran out (seconds without a leader). Told, they
//!   end its lease and elect a successor at once.
//! - A leader whose process is gone (the transport saw its connection
//!   close and its port refuse a new one) is not waited out either: the
//!   survivors campaign a tick apart, lowest id first.
//! - A leader hands over (to leave, or on request) telling every member
//!   first, so that the leaderless moment costs idle clients nothing.
//! - Followers report their applied position and their clients' sessions
//!   to the leader every few ticks; the leader records who it hears from.

use super::Driver;
use super::io::{LogWriter, RoleView, StateMachine, Transport};
use super::notice::Notice;
use crate::membership::MemberRole;
use crate::node::{Role, RoleChange};

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    pub(super) fn role_changed(&mut self, change: RoleChange, sm: &mut dyn StateMachine<W>) {
        let before = self.role;
        self.role = change;
        tracing::info!(
            id = self.my_id,
            role = ?change.role,
            leader = ?change.leader,
            term = change.term,
            "ensemble role changed"
        );
        if before.role == Role::Leader && change.role != Role::Leader && change.term == before.term
        {
            // Stepped down within its term: check-quorum found no quorum.
            self.tell_voters(&Notice::SteppedDown { term: change.term });
        }
        let leader_changed = before.leader != change.leader || before.term != change.term;
        if leader_changed {
            self.member_applied.clear();
            self.restores_accepted.clear();
            self.restoring.clear();
            self.stale_forgotten.clear();
            self.drop_reads();
            // The state machine fails their clients with the rest of what
            // went through the old leader.
            self.deferred.clear();
        }
        sm.role_changed(RoleView {
            role: change.role,
            leader: change.leader,
            term: change.term,
            leader_changed,
            serving: self.serving(),
            planned_handover: change.leader.is_none() && self.ticks < self.handover_until,
        });
        self.reconfig_role_changed(sm);
    }

    /// What this server is changed without a change of role (it became a
    /// member, or was removed): the state machine learns whether it serves
    /// now.
    pub(super) fn standing_changed(&mut self, sm: &mut dyn StateMachine<W>) {
        sm.role_changed(RoleView {
            role: self.role.role,
            leader: self.role.leader,
            term: self.role.term,
            leader_changed: false,
            serving: self.serving(),
            planned_handover: false,
        });
    }

    /// Every few ticks: a follower tells its leader how far it has applied
    /// and which sessions its clients used (the leader alone expires
    /// sessions).
    pub(super) fn report_status(&mut self, sm: &mut dyn StateMachine<W>) {
        if self.is_leader() || !self.standing.is_member() {
            return;
        }
        let Some(leader) = self.role.leader else {
            return;
        };
        let notice = Notice::Status {
            applied_index: self.applied_index,
            applied_zxid: self.applied_zxid,
            report: sm.status_report(),
        };
        self.notify(leader, &notice);
    }

    pub(super) fn status_heard(
        &mut self,
        from: u64,
        applied_index: u64,
        applied_zxid: i64,
        report: &[u8],
        sm: &mut dyn StateMachine<W>,
    ) {
        if !self.is_leader() {
            return;
        }
        self.member_applied
            .insert(from, (applied_index, applied_zxid));
        // Only members report: a restored one votes again.
        self.restoring.remove(&from);
        sm.status_heard(from, report);
    }

    /// The transport found `peer`'s process gone (its connection closed and
    /// its port refuses new ones). Survivors campaign one tick apart,
    /// lowest id first, so they do not split their votes.
    pub fn peer_gone(&mut self, peer: u64) {
        if self.role.leader == Some(peer) {
            tracing::info!(peer, "the leader's process is gone; electing a new one");
        }
        self.end_lease(peer);
    }

    /// A follower of `leader` stops waiting for it: it grants other
    /// candidates' votes now and campaigns after a delay by rank.
    fn end_lease(&mut self, leader: u64) {
        let rank = self
            .membership
            .voters()
            .filter(|&id| id != leader && id < self.my_id)
            .count();
        if self.standing.may_campaign(&self.config.faults) {
            self.node.leader_gone(leader, rank);
        }
    }

    pub(super) fn stepped_down(&mut self, from: u64, term: u64) {
        if self.role.leader == Some(from) && self.role.term == term {
            tracing::info!(
                leader = from,
                term,
                "the leader stepped down (it heard from no quorum); electing a new one"
            );
            self.end_lease(from);
        }
    }

    pub(super) fn handing_over(&mut self, from: u64, to: u64) {
        if self.role.leader == Some(from) {
            tracing::info!(leader = from, to, "the leader hands leadership over");
            self.handover_until = self.ticks + self.handover_ticks();
        }
    }

    /// How long a hand-over may take: two election timeouts.
    fn handover_ticks(&self) -> u64 {
        2 * self.config.election_ticks as u64
    }

    /// Starts a leadership transfer, telling every member first, so that
    /// the leaderless moment does not cost idle clients their connections.
    pub(super) fn hand_over(&mut self, to: u64) {
        let notice = Notice::HandingOver { to };
        let others: Vec<u64> = self
            .membership
            .members
            .iter()
            .map(|m| m.id)
            .filter(|&id| id != self.my_id)
            .collect();
        for id in others {
            self.notify(id, &notice);
        }
        self.handover_until = self.ticks + self.handover_ticks();
        self.node.transfer_leader(to);
    }

    fn tell_voters(&mut self, notice: &Notice) {
        let voters: Vec<u64> = self
            .membership
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Participant && m.id != self.my_id)
            .map(|m| m.id)
            .collect();
        for id in voters {
            self.notify(id, notice);
        }
    }

    /// Heard from within the last election timeout (itself always).
    pub(super) fn is_live(&self, id: u64) -> bool {
        id == self.my_id
            || self
                .last_heard
                .get(&id)
                .is_some_and(|&t| self.ticks.saturating_sub(t) <= self.config.election_ticks as u64)
    }
}
