//! Applying committed membership changes, on every server: the
//! membership an entry describes is checked against Raft's and becomes the
//! committed one, `/zookeeper/config` is rewritten with the entry's zxid as
//! its version (firing watches, answering the reconfig the entry
//! completes), the peer transport follows, and a server that is no longer
//! a member stops serving (a leader hands over first). Carrying changes out
//! on the leader is `reconfig.rs`.

use consensus::raft::eraftpb::ConfState;
use storage::ApplyBatch;
use tree::{CONFIG, DataTree, Txn, TxnOp};

use super::Processor;
use super::replication::encode_conf_state;
use crate::durability::WriterCommand;
use crate::ensemble_config::MemberRole;
use crate::membership::{ChangeContext, Membership};
use crate::service_message::ServiceMessage;

/// The stored membership record of a server that was removed, followed by
/// the version (hex) that removed it.
pub(crate) const REMOVED_MARK: &str = "removed=";

/// The committed membership the tree holds (`/zookeeper/config`), if a
/// leader ever committed one.
pub(crate) fn committed_membership(tree: &DataTree) -> Result<Option<Membership>, String> {
    let text = tree
        .node(CONFIG)
        .and_then(|n| n.data.as_deref())
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(None);
    }
    Membership::parse(&text).map(Some)
}

fn same_conf(a: &ConfState, b: &ConfState) -> bool {
    let sorted = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    };
    sorted(&a.voters) == sorted(&b.voters) && sorted(&a.learners) == sorted(&b.learners)
}

impl Processor {
    /// A committed membership change (every server): checked against
    /// Raft's, written to `/zookeeper/config`, and followed.
    pub(super) fn membership_committed(
        &mut self,
        index: u64,
        zxid: i64,
        conf: ConfState,
        context: &[u8],
        batch: &mut ApplyBatch,
    ) -> Result<(), String> {
        let ctx =
            ChangeContext::decode(context).map_err(|e| format!("membership entry {index}: {e}"))?;
        let membership = Membership::new(zxid, ctx.members);
        if !same_conf(&membership.conf_state(), &conf) {
            return Err(format!(
                "the membership change at index {index} gives Raft voters {:?} and learners {:?}, \
                 but describes {}: this server's membership diverged from the ensemble's \
                 (a server joining an existing ensemble starts with an empty data directory \
                 and conclave.join=true)",
                conf.voters,
                conf.learners,
                membership.server_lines().trim_end().replace('\n', ", ")
            ));
        }
        self.write_config(&membership, ctx.answers, ctx.time_ms, batch);
        self.adopt_membership(membership, Some(conf));
        if let Some(replica) = self.replica.as_deref_mut() {
            replica.membership_index = index;
        }
        let Some(replica) = self.replica.as_deref_mut() else {
            return Ok(());
        };
        if replica.is_leader()
            && let Some(job) = replica.job.as_mut()
            && let Some(last) = job.in_flight.take()
            && last
        {
            self.end_job(Ok(()));
        }
        Ok(())
    }

    /// The first entry of the first leader confirms the static membership:
    /// its zxid becomes the version (as ZooKeeper's first NEWLEADER does).
    pub(super) fn confirm_static_membership(&mut self, zxid: i64, batch: &mut ApplyBatch) {
        let Some(replica) = self.replica.as_deref() else {
            return;
        };
        if replica.membership.version != 0 || replica.joining {
            return;
        }
        let membership = Membership::new(zxid, replica.membership.members.clone());
        self.write_config(&membership, None, 0, batch);
        self.adopt_membership(membership, None);
    }

    /// `/zookeeper/config` := the membership, as ZooKeeper's reconfig
    /// transaction sets it (version -1, fires watches).
    fn write_config(
        &mut self,
        membership: &Membership,
        answers: Option<(i64, i32)>,
        time_ms: i64,
        batch: &mut ApplyBatch,
    ) {
        let (session_id, cxid) = answers.unwrap_or((0, 0));
        let txn = Txn {
            session_id,
            cxid,
            zxid: membership.version,
            time_ms,
            op: TxnOp::SetData {
                path: CONFIG.to_owned(),
                data: Some(membership.render().into_bytes()),
                version: -1,
            },
        };
        self.apply_txn(&txn, batch, answers.is_some());
    }

    /// The committed membership changed (by a step, or with a snapshot).
    pub(super) fn adopt_membership(&mut self, membership: Membership, conf: Option<ConfState>) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if let Some(conf) = conf {
            replica.log.core().conf_state = conf.clone();
            self.writer
                .send(WriterCommand::Config(encode_conf_state(&conf)));
        }
        let me = membership.contains(replica.my_id);
        if replica.membership.members != membership.members {
            tracing::info!(
                version = format_args!("{:x}", membership.version),
                members = %membership.server_lines().trim_end().replace('\n', ", "),
                "membership changed"
            );
        }
        if replica.is_leader() {
            // A removed server may never learn that its removal committed
            // (replication to it stops): the leader tells it.
            let notice = ServiceMessage::Removed {
                version: membership.version,
            }
            .encode();
            for gone in replica
                .membership
                .members
                .iter()
                .filter(|m| !membership.contains(m.id))
            {
                replica.peers.send_service(gone.id, notice.clone());
            }
        }
        replica.peers.set_members(&membership.members);
        replica.ensemble.members = membership.members.clone();
        replica.membership = membership;
        if me && replica.joining {
            tracing::info!("this server is a member now");
            replica.joining = false;
        }
        if !me && !replica.joining && !replica.is_leader() {
            let version = replica.membership.version;
            self.become_removed(version);
        }
        // A leader that a change demoted or removed (it was elected while
        // the change was on its way): it proposes nothing more and hands
        // over; a removed one stops once someone else leads.
        self.hand_over_if_not_participant();
    }

    pub(super) fn hand_over_if_not_participant(&mut self) {
        let Some(replica) = self.replica.as_deref() else {
            return;
        };
        let participant = replica
            .membership
            .get(replica.my_id)
            .is_some_and(|m| m.role == MemberRole::Participant);
        if participant || !replica.is_leader() || replica.node.transferring_to().is_some() {
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
    pub(super) fn told_removed(&mut self, from: u64, version: i64) {
        let Some(replica) = self.replica.as_deref() else {
            return;
        };
        if replica.role.leader != Some(from) || replica.joining {
            tracing::warn!(
                peer = from,
                "a removal notice from a server that does not lead; ignored"
            );
            return;
        }
        self.become_removed(version);
    }

    pub(super) fn become_removed(&mut self, version: i64) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if replica.removed {
            return;
        }
        replica.removed = true;
        // Remembered across restarts even when the removal itself never
        // reached this server's log (the leader told it).
        self.writer.send(WriterCommand::Config(
            format!("{REMOVED_MARK}{version:x}").into_bytes(),
        ));
        tracing::error!(
            id = replica.my_id,
            version = format_args!("{version:x}"),
            "this server was removed from the ensemble: it serves no clients and will not \
             rejoin with this identity"
        );
        let conns: Vec<_> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn);
        }
    }
}
