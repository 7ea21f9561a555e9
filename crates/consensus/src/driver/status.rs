//! What the driver reports about this server's part in the ensemble: the
//! four-letter words, the admin API and the metrics render it.

use super::Driver;
use super::io::{LogWriter, Transport};
use super::standing::StandingKind;
use crate::membership::{MemberRole, Membership};
use crate::node::{PeerProgress, Role};

/// This server in its ensemble, as of now.
#[derive(Debug, Clone)]
pub struct Status {
    pub my_id: u64,
    /// "leader", "follower", "observer", "looking" (no leader known),
    /// "discovering", "joining", "restoring" or "removed".
    pub state: &'static str,
    pub standing: StandingKind,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub applied_zxid: i64,
    /// The leader's view of every member; empty elsewhere.
    pub progress: Vec<PeerProgress>,
    /// While leading: each member's last reported applied (id, index,
    /// zxid), this server's own included.
    pub member_applied: Vec<(u64, u64, i64)>,
    /// ReadIndex rounds in flight.
    pub pending_reads: usize,
    /// The committed membership.
    pub membership: Membership,
    /// A membership change is under way (this server leads it).
    pub reconfig_in_progress: bool,
    /// Members heard from within the last election timeout (this server
    /// included).
    pub live: Vec<u64>,
}

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    pub fn status(&self) -> Status {
        let observer = self
            .membership
            .get(self.my_id)
            .is_some_and(|m| m.role == MemberRole::Observer);
        let state = match (self.standing.kind(), self.role.role, self.role.leader) {
            (StandingKind::Removed, _, _) => "removed",
            (StandingKind::Discovering, _, _) => "discovering",
            (StandingKind::Joining, _, _) => "joining",
            (StandingKind::Restoring, _, _) => "restoring",
            (StandingKind::Member, Role::Leader, _) => "leader",
            (StandingKind::Member, _, None) => "looking",
            (StandingKind::Member, _, _) if observer => "observer",
            (StandingKind::Member, _, _) => "follower",
        };
        let member_applied = if self.is_leader() {
            let mut all: Vec<(u64, u64, i64)> = self
                .member_applied
                .iter()
                .map(|(id, (index, zxid))| (*id, *index, *zxid))
                .chain([(self.my_id, self.applied_index, self.applied_zxid)])
                .collect();
            all.sort_unstable();
            all
        } else {
            Vec::new()
        };
        Status {
            my_id: self.my_id,
            state,
            standing: self.standing.kind(),
            leader: self.role.leader,
            term: self.role.term,
            commit_index: self.node.commit_index(),
            applied_index: self.applied_index,
            applied_zxid: self.applied_zxid,
            progress: self.node.progress(),
            member_applied,
            pending_reads: self.reads_in_flight(),
            membership: self.membership.clone(),
            reconfig_in_progress: self.job_in_progress(),
            live: self
                .membership
                .members
                .iter()
                .map(|m| m.id)
                .filter(|&id| self.is_live(id))
                .collect(),
        }
    }
}
