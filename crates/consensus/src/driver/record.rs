//! The membership record a server keeps in its store beside the log: what
//! it is in its ensemble, read back at every start before anything else.
//! The driver decides what it says (`driver::standing`); the storage crate
//! owns how it is written (`storage::membership_record`).

use raft::eraftpb::ConfState;

/// What the store says this server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipRecord {
    /// A member with its state: the Raft configuration in force at what it
    /// has applied (the bootstrap configuration before any change).
    Member(StoredConf),
    /// Not a member yet: started empty to join an existing ensemble, it
    /// waits to be added and caught up by snapshot.
    Joining,
    /// A member that started with an empty store (its disk was lost) and
    /// takes the ensemble's state back; it votes again only once it holds
    /// everything committed before it came back. The configuration is the
    /// one of what it has received so far (none at first).
    Restoring(StoredConf),
    /// The server was removed by the membership of this version (a zxid);
    /// it never takes part again under this identity.
    Removed { version: i64 },
    /// `recover-alone` was interrupted making this server the only member.
    Recovering { survivor: String },
    /// None of those: the text as stored.
    Unreadable(String),
}

/// A Raft configuration as stored, and the id of the server whose store
/// it is (records written by earlier releases name none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredConf {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub server: Option<u64>,
}

impl StoredConf {
    pub fn new(conf: &ConfState, server: u64) -> StoredConf {
        StoredConf {
            voters: conf.voters.clone(),
            learners: conf.learners.clone(),
            server: Some(server),
        }
    }

    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            ..ConfState::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.voters.is_empty() && self.learners.is_empty()
    }
}

impl MembershipRecord {
    /// The server id the record names, if it names one.
    pub fn server(&self) -> Option<u64> {
        match self {
            MembershipRecord::Member(c) | MembershipRecord::Restoring(c) => c.server,
            _ => None,
        }
    }
}
