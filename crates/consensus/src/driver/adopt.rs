//! Committed membership changes, on every server: the membership an entry
//! describes is checked against Raft's, becomes the committed one and is
//! stored with Raft's configuration (the record a restart reads), the
//! transport follows, and a server that is no longer a member stops
//! serving (a leader hands over first). Carrying changes out on the leader
//! is `reconfig.rs`.

use raft::eraftpb::ConfState;

use super::io::{LogWriter, StateMachine, Transport};
use super::notice::Notice;
use super::record::{MembershipRecord, StoredConf};
use super::{Driver, DriverError};
use crate::membership::{MemberRole, Membership, same_conf};

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// The change at `index` must make the configuration it describes: a
    /// server whose Raft configuration went elsewhere has diverged from
    /// the ensemble and must not go on.
    pub(super) fn check_change(
        &self,
        index: u64,
        membership: &Membership,
        conf: &ConfState,
    ) -> Result<(), DriverError> {
        if same_conf(&membership.conf_state(), conf) {
            return Ok(());
        }
        Err(DriverError::MembershipDiverged {
            index,
            voters: conf.voters.clone(),
            learners: conf.learners.clone(),
            described: membership.summary(),
        })
    }

    /// A committed change (checked), after the state machine rewrote
    /// `/zookeeper/config`.
    pub(super) fn membership_committed(
        &mut self,
        index: u64,
        membership: Membership,
        conf: ConfState,
        sm: &mut dyn StateMachine<W>,
    ) {
        let before = self.applied_membership.replace(membership.clone());
        {
            let mut core = self.log.core();
            for m in &membership.members {
                if !before.as_ref().is_some_and(|b| b.contains(m.id)) {
                    core.member_added(m.id, index);
                }
            }
        }
        self.adopt_membership(membership, Some(conf), sm);
        self.membership_index = index;
        self.step_applied(sm);
    }

    /// The committed membership changed (by a step, with a snapshot, or
    /// the static one confirmed).
    pub(super) fn adopt_membership(
        &mut self,
        membership: Membership,
        conf: Option<ConfState>,
        sm: &mut dyn StateMachine<W>,
    ) {
        if let Some(conf) = conf {
            self.store_conf(&conf);
        }
        let me = membership.contains(self.my_id);
        if self.membership.members != membership.members {
            tracing::info!(
                version = format_args!("{:x}", membership.version),
                members = %membership.summary(),
                "membership changed"
            );
        }
        if self.is_leader() {
            // A removed server may never learn that its removal committed
            // (replication to it stops): the leader tells it.
            let notice = Notice::Removed {
                version: membership.version,
            };
            let gone: Vec<u64> = self
                .membership
                .members
                .iter()
                .filter(|m| !membership.contains(m.id))
                .map(|m| m.id)
                .collect();
            for id in gone {
                self.notify(id, &notice);
            }
        }
        self.net.set_members(&membership.members);
        self.membership = membership;
        if me && self.standing.is_joining() {
            tracing::info!("this server is a member now");
            self.standing.joined();
            self.standing_changed(sm);
        }
        if me
            && let Some(removed) = self.removed_version
            && self.membership.version > removed
        {
            // Added back under the same id (a server that replayed its own
            // earlier removal, or that a later change took back).
            tracing::info!(
                version = format_args!("{:x}", self.membership.version),
                "this server is a member again"
            );
            self.removed_version = None;
            self.standing.joined();
            let conf = self.log.core().conf_state.clone();
            self.store_conf(&conf);
            self.standing_changed(sm);
        }
        // A leader that a change demoted or removed (it was elected while
        // the change was on its way): it proposes nothing more and hands
        // over; a removed one stops once someone else leads.
        self.hand_over_if_not_participant();
    }

    /// Raft's configuration changed: raft-rs reads it from the log at the
    /// next start, and the store keeps it with this server's standing.
    pub(super) fn store_conf(&mut self, conf: &ConfState) {
        self.log.core().conf_state = conf.clone();
        let stored = StoredConf::new(conf, self.my_id);
        let record = if let Some(version) = self.removed_version {
            // A removed server applies what members that have not applied
            // its removal yet send it; it stays removed across restarts.
            MembershipRecord::Removed { version }
        } else if self.standing.is_restoring() {
            MembershipRecord::Restoring(stored)
        } else {
            MembershipRecord::Member(stored)
        };
        self.disk.set_membership(&record);
    }

    pub(super) fn hand_over_if_not_participant(&mut self) {
        let participant = self
            .membership
            .get(self.my_id)
            .is_some_and(|m| m.role == MemberRole::Participant);
        if participant || !self.is_leader() || self.node.transferring_to().is_some() {
            return;
        }
        if let Some(to) = self.transfer_candidate(&|_| true) {
            tracing::warn!(
                to,
                "this leader is no longer a participant: handing leadership over"
            );
            self.hand_over(to);
        }
    }

    /// The leader says a committed change removed this server.
    pub(super) fn told_removed(&mut self, from: u64, version: i64, sm: &mut dyn StateMachine<W>) {
        if self.role.leader != Some(from) || !self.standing.is_member() {
            tracing::warn!(
                peer = from,
                "a removal notice from a server that does not lead; ignored"
            );
            return;
        }
        if self.membership.version >= version && self.membership.contains(self.my_id) {
            // A late notice: this server holds a membership at least as
            // new that has it (it was added back since).
            tracing::info!(
                version = format_args!("{version:x}"),
                "a removal notice older than this server's membership; ignored"
            );
            return;
        }
        self.become_removed(version, sm);
    }

    /// A server that the newest membership it holds leaves out is removed
    /// — once it has applied everything it knows committed: a server back
    /// under an id that was removed and added again replays the removal
    /// before the change that added it back.
    pub(super) fn removed_if_left_out(&mut self, sm: &mut dyn StateMachine<W>) {
        if self.membership.contains(self.my_id)
            || !(self.standing.is_member() || self.standing.is_restoring())
            || self.is_leader()
            || self.applied_index < self.node.commit_index()
        {
            return;
        }
        let version = self.membership.version;
        self.become_removed(version, sm);
    }

    pub(super) fn become_removed(&mut self, version: i64, sm: &mut dyn StateMachine<W>) {
        if self.standing.is_removed() {
            return;
        }
        self.removed_version = Some(version);
        self.standing.removed();
        self.standing_changed(sm);
        // Remembered across restarts even when the removal itself never
        // reached this server's log (the leader told it).
        self.disk
            .set_membership(&MembershipRecord::Removed { version });
        tracing::error!(
            id = self.my_id,
            version = format_args!("{version:x}"),
            "this server was removed from the ensemble: it serves no clients and will not \
             rejoin with this identity"
        );
        sm.removed();
    }
}
