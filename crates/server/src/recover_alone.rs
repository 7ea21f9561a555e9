//! `conclave-server recover-alone`: the way back from a lost quorum, run by
//! hand on the one server a person chose to keep (the one with the highest
//! last zxid, which `inspect` and the operator's status report). Like
//! etcd's `--force-new-cluster`, it makes that server the only voter of a
//! new membership with all the data it holds; the other servers are then
//! started empty and added back as new ones (`docs/membership.md`).
//!
//! Unlike etcd, it keeps the entries past the durable commit index: a
//! follower learns the commit index a heartbeat after the write was
//! acknowledged, so the last acknowledged writes are usually only in that
//! tail. Writes that were never acknowledged may come back too; their
//! clients never learned an outcome.
//!
//! Each step is one atomic store write, so a crash leaves a prefix of them.
//! The first marks the store as being recovered, and a server refuses to
//! start on such a store; running the command again finishes the job. The
//! last write, the new membership record, is the commit point.

use consensus::driver::{MembershipRecord, StoredConf};
use storage::consensus_log::committed_membership;
use storage::membership_record;
use storage::recovery::{self, RecoveryError, Replay};
use storage::{ApplyBatch, HardState, StorageError, Store};

use crate::ensemble_config::{Member, MemberRole};
use crate::membership::Membership;

#[derive(Debug, thiserror::Error)]
pub enum RecoverAloneError {
    #[error(
        "this data directory never belonged to a member of an ensemble (a standalone server's, or \
         empty): there is no lost quorum to recover from"
    )]
    NotAMember,
    #[error(
        "this server was removed from the ensemble: its data stopped following the ensemble's then, \
         so it cannot be the survivor"
    )]
    Removed,
    #[error(
        "this server joined the ensemble but never received its data (an empty membership record), \
         so it cannot be the survivor"
    )]
    NeverJoined,
    #[error(
        "this server was taking its state back after losing its store (a restoring membership \
         record): it may lack committed data, so it cannot be the survivor"
    )]
    Restoring,
    #[error("the data directory is being recovered as server {marked}, not as server {my_id}")]
    OtherServer { marked: String, my_id: u64 },
    #[error("the stored membership record does not parse: {0:?}")]
    BadRecord(String),
    #[error("/zookeeper/config: {0}")]
    BadConfig(String),
    #[error(
        "server {0} is neither in the committed membership nor in zoo.cfg's server lines: its \
         addresses are unknown"
    )]
    NoAddress(u64),
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What `recover-alone` did, for the person who ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The membership the store held before (its server lines).
    pub previous: String,
    /// The one member now: this server, as a participant.
    pub member: String,
    /// The log's last index and its zxid: everything up to it is kept.
    pub last_index: u64,
    pub last_zxid: i64,
    /// How many of those entries were past the durable commit index.
    pub past_commit: u64,
    /// Whether an interrupted run was finished.
    pub resumed: bool,
}

/// Makes `my_id` the only voter of the membership `store` holds, keeping
/// every entry of its log. `configured` is this server's line in zoo.cfg,
/// used when the committed membership does not name it.
pub fn recover_alone(
    mut store: Box<dyn Store>,
    my_id: u64,
    configured: Option<Member>,
) -> Result<(Report, Box<dyn Store>), RecoverAloneError> {
    let meta = store.meta();
    let record = meta
        .config
        .as_deref()
        .ok_or(RecoverAloneError::NotAMember)?;
    let resumed = match membership_record::decode(record) {
        MembershipRecord::Recovering { survivor } if survivor == my_id.to_string() => true,
        MembershipRecord::Recovering { survivor } => {
            return Err(RecoverAloneError::OtherServer {
                marked: survivor,
                my_id,
            });
        }
        MembershipRecord::Removed { .. } => return Err(RecoverAloneError::Removed),
        MembershipRecord::Unreadable(text) => return Err(RecoverAloneError::BadRecord(text)),
        MembershipRecord::Joining => return Err(RecoverAloneError::NeverJoined),
        MembershipRecord::Restoring(_) => return Err(RecoverAloneError::Restoring),
        MembershipRecord::Member(_) => false,
    };
    let durable_commit = meta.hard_state.commit.max(meta.applied_index);

    store.set_config(&membership_record::encode(&MembershipRecord::Recovering {
        survivor: my_id.to_string(),
    }))?;
    store.sync()?;

    let recovered = recovery::recover_with(store, Replay::Forced)?;
    let mut store = recovered.store;
    let tree = recovered.tree;
    let previous = committed_membership(&tree).map_err(RecoverAloneError::BadConfig)?;
    let mut me = previous
        .as_ref()
        .and_then(|m| m.get(my_id).cloned())
        .or(configured)
        .ok_or(RecoverAloneError::NoAddress(my_id))?;
    if me.role == MemberRole::Observer {
        tracing::warn!(id = my_id, "an observer becomes the only participant");
    }
    me.role = MemberRole::Participant;
    // Version 0, as a new ensemble's static membership: the first entry of
    // the server's first term as leader gives it its version.
    let membership = Membership::new(0, vec![me]);

    let last_index = store.last_index();
    let last_term = store.term(last_index)?;
    let meta = store.meta();
    let mut config_node = tree
        .node(tree::CONFIG)
        .map(recovery::node_record)
        .ok_or_else(|| RecoverAloneError::BadConfig("the node is missing".into()))?;
    config_node.data = Some(membership.render().into_bytes());
    store.apply(&ApplyBatch {
        applied_index: meta.applied_index,
        applied_zxid: meta.applied_zxid,
        nodes: vec![(tree::CONFIG.to_owned(), Some(config_node))],
        sessions: Vec::new(),
    })?;
    store.set_hard_state(HardState {
        term: meta.hard_state.term.max(last_term),
        vote: 0,
        commit: last_index,
    })?;
    store.set_config(&membership_record::encode(&MembershipRecord::Member(
        StoredConf {
            voters: vec![my_id],
            learners: Vec::new(),
            server: Some(my_id),
        },
    )))?;
    store.sync()?;

    let report = Report {
        previous: previous
            .map(|m| m.server_lines().trim_end().replace('\n', ", "))
            .unwrap_or_default(),
        member: membership.server_lines().trim_end().to_owned(),
        last_index,
        last_zxid: tree.last_zxid(),
        past_commit: last_index.saturating_sub(durable_commit),
        resumed,
    };
    Ok((report, store))
}

#[cfg(test)]
mod tests;
