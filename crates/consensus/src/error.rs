//! Errors of the consensus core.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConsensusError {
    /// This server is not the leader (or is handing leadership over): the
    /// proposal must go to `leader`, if one is known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// This server leads but has not yet applied the entries before its
    /// term: writes wait (or are retried) until it has.
    #[error("the leader has applied up to {applied}, not yet its term's first entry {term_start}")]
    LeaderNotReady { term_start: u64, applied: u64 },
    /// The leader's term has used every zxid counter; leadership must move
    /// (a new term starts the counter again).
    #[error("term {term} has no zxid counter left; a new election is needed")]
    TermExhausted { term: u64 },
    /// Entries were given to the zxid counter out of log order.
    #[error(
        "entry {index} of term {term} is out of order (following term {current_term} from index {term_start})"
    )]
    ZxidOrder {
        index: u64,
        term: u64,
        current_term: u64,
        term_start: u64,
    },
    /// A snapshot was installed and `Node::resume_zxids` was not called
    /// before the next committed entries.
    #[error("committed entries after a snapshot, before the snapshot's last zxid was given")]
    SnapshotNotResumed,
    /// A membership change is proposed and not yet applied: one change at
    /// a time.
    #[error("membership change at index {index} is not applied yet")]
    MembershipInProgress { index: u64 },
    /// raft-rs refused (a bad configuration, a message from a removed
    /// peer, a storage error).
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}
