//! Transactions: the deterministic output of [`crate::prepare`] and the
//! input of [`crate::apply`]. Every value a replica needs to reach the same
//! state is resolved here (zxid, time, sequential name, ACL after `auth`
//! expansion, the ephemerals a closing session owns), so applying a
//! transaction never consults a clock, a session table or a random source.

use proto::{Acl, ErrorCode};

/// One committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// The session that issued it (0 for server-internal writes such as
    /// container reaping).
    pub session_id: i64,
    /// The client's xid, echoed for bookkeeping.
    pub cxid: i32,
    pub zxid: i64,
    /// Wall-clock milliseconds fixed when the write was prepared; every op
    /// of a multi shares it.
    pub time_ms: i64,
    pub op: TxnOp,
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    CreateSession {
        timeout_ms: i32,
        password: Vec<u8>,
    },
    /// The paths are the session's ephemerals at prepare time, sorted
    /// (`CloseSessionTxn`).
    CloseSession {
        paths_to_delete: Vec<String>,
    },
    Create(CreateTxn),
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        aversion: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    /// Ops of a multi; if any is `Error`, the multi failed and nothing is
    /// applied.
    Multi(Vec<TxnOp>),
    /// A write that failed in preparation: it still consumes its zxid.
    Error(ErrorCode),
}

/// `CreateTxn` / `CreateContainerTxn` / `CreateTTLTxn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTxn {
    /// Final path, sequence suffix included.
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    /// Stored owner: a session id, 0, or the container/TTL marker.
    pub ephemeral_owner: i64,
    /// The parent's stored cversion after this create.
    pub parent_cversion: i32,
    /// Whether the reply carries a Stat (create2, createContainer,
    /// createTTL) or only the path (create).
    pub with_stat: bool,
}

impl TxnOp {
    /// Whether this is the transaction of a failed multi.
    pub fn is_failed_multi(&self) -> bool {
        matches!(self, TxnOp::Multi(ops) if ops.iter().any(|op| matches!(op, TxnOp::Error(_))))
    }
}
