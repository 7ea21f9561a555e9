//! Why a driver stops. Every one of these ends the server's process with
//! its message: either the store is unusable as it is (and the message
//! says what to do), or the store failed under it. Nothing a peer sends
//! leads here: peer messages are checked before they reach Raft
//! (`driver::guard`) and refused with a log line.

use thiserror::Error;

use crate::error::ConsensusError;

#[derive(Debug, Error)]
pub enum DriverError {
    #[error(
        "server {id} was removed from the ensemble (membership version {version:x}); it does not \
         rejoin under its old identity: to join again, start it with an empty data directory and \
         add it with reconfig"
    )]
    Removed { id: u64, version: i64 },
    #[error(
        "`conclave-server recover-alone` was interrupted on this data directory (making server \
         {survivor} the only member): run it again to finish"
    )]
    RecoveryInterrupted { survivor: String },
    #[error(
        "this data directory belongs to server {stored}, but myid says {configured}: start each \
         server on its own data directory"
    )]
    WrongServer { stored: u64, configured: u64 },
    #[error("the stored membership record {0:?} is not one this release reads")]
    UnreadableRecord(String),
    #[error("the stored commit index {commit} is past the end of the log {last}")]
    CommitPastLog { commit: u64, last: u64 },
    #[error("the committed membership (/zookeeper/config) does not parse: {0}")]
    CommittedMembership(String),
    #[error(
        "the membership change at index {index} gives Raft voters {voters:?} and learners \
         {learners:?}, but describes {described}: this server's membership diverged from the \
         ensemble's"
    )]
    MembershipDiverged {
        index: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
        described: String,
    },
    #[error("the membership change at index {index} does not decode: {reason}")]
    MembershipEntry { index: u64, reason: String },
    #[error("applying committed entry {index}: {reason}")]
    Apply { index: u64, reason: String },
    #[error("installing the snapshot at index {index}: {reason}")]
    Snapshot { index: u64, reason: String },
    #[error("the store failed: {0}")]
    Store(String),
    #[error("consensus: {0}")]
    Consensus(#[from] ConsensusError),
}
