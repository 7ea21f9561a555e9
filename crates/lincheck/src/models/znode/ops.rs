//! The client operations the znode model knows, and their outcomes, as
//! ZooKeeper 3.8 reports them (`ZooKeeper.java`, `KeeperException.Code`).

use serde::{Deserialize, Serialize};

use crate::models::data::Data;

/// A ZooKeeper error an operation can end with that leaves the tree
/// unchanged. Connection loss, timeouts and session expiry are not
/// outcomes: record those operations as unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZkError {
    /// `NONODE` (-101).
    NoNode,
    /// `NODEEXISTS` (-110).
    NodeExists,
    /// `BADVERSION` (-103).
    BadVersion,
}

impl ZkError {
    /// ZooKeeper's code for this error.
    pub fn code(self) -> i32 {
        match self {
            ZkError::NoNode => -101,
            ZkError::BadVersion => -103,
            ZkError::NodeExists => -110,
        }
    }

    /// The error with ZooKeeper's code `code`, if the model knows it.
    pub fn from_code(code: i32) -> Option<Self> {
        [ZkError::NoNode, ZkError::BadVersion, ZkError::NodeExists]
            .into_iter()
            .find(|error| error.code() == code)
    }
}

/// A client operation on znodes.
///
/// Versions are ZooKeeper's `dataVersion`: 0 after create, +1 per setData.
/// An expected version of `None` (or ZooKeeper's `-1`) matches any version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZnodeOp {
    /// `create(path, data)`, persistent and not sequential: Created or
    /// NodeExists. The parent is assumed to exist.
    Create { path: String, data: Data },
    /// `setData(path, data, version)`: Set with the new version, NoNode or
    /// BadVersion.
    SetData {
        path: String,
        data: Data,
        version: Option<i32>,
    },
    /// `getData(path)` right after `sync` on the same session, so
    /// linearizable: Data or NoNode. Plain ZooKeeper reads may be stale and
    /// must not be recorded as this.
    GetData { path: String },
    /// `delete(path, version)`: Deleted, NoNode or BadVersion. Children are
    /// not modelled (no NotEmpty).
    Delete { path: String, version: Option<i32> },
    /// `check(path, version)`, on its own: Checked, NoNode or BadVersion.
    CheckVersion { path: String, version: i32 },
    /// `multi(ops)`: atomic, ops applied in order, each seeing the ones
    /// before it.
    Multi(Vec<MultiOp>),
    /// `sync(path)`: Synced. It changes nothing and touches no key, so it is
    /// recorded for the reader of the history but not checked.
    Sync { path: String },
}

/// An operation inside a [`ZnodeOp::Multi`]: the writes and checks
/// ZooKeeper allows in a write transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MultiOp {
    Create {
        path: String,
        data: Data,
    },
    SetData {
        path: String,
        data: Data,
        version: Option<i32>,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    CheckVersion {
        path: String,
        version: i32,
    },
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZnodeOutput {
    /// Create succeeded.
    Created,
    /// SetData succeeded; the node's new `dataVersion` from its Stat.
    Set { version: i32 },
    /// GetData succeeded: the data and its `dataVersion`.
    Data { data: Data, version: i32 },
    /// Delete succeeded.
    Deleted,
    /// CheckVersion succeeded.
    Checked,
    /// The result of a multi.
    Multi(MultiResult),
    /// Sync returned.
    Synced,
    /// The operation failed and changed nothing.
    Error(ZkError),
}

/// What a multi returned.
///
/// ZooKeeper reports a failed multi as one result per op: OK for the ops
/// before the failing one, its error for it, `RUNTIMEINCONSISTENCY` for the
/// ops after (`DataTree.processTxn`, multi case), and the client raises the
/// first error. Only the failing op and its error carry information, so
/// that is all this keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MultiResult {
    /// Every op succeeded: one output per op, in order (`Created`, `Set`,
    /// `Deleted` or `Checked`).
    Ok(Vec<ZnodeOutput>),
    /// The op at `index` failed with `error`; nothing was applied.
    Failed { index: usize, error: ZkError },
}

impl ZnodeOp {
    /// The paths this operation reads or writes, sorted, without repeats
    /// (none for a sync: it reads and writes no node).
    pub fn paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = match self {
            ZnodeOp::Create { path, .. }
            | ZnodeOp::SetData { path, .. }
            | ZnodeOp::GetData { path }
            | ZnodeOp::Delete { path, .. }
            | ZnodeOp::CheckVersion { path, .. } => vec![path],
            ZnodeOp::Multi(ops) => ops.iter().map(MultiOp::path).collect(),
            ZnodeOp::Sync { .. } => Vec::new(),
        };
        paths.sort_unstable();
        paths.dedup();
        paths
    }
}

impl MultiOp {
    /// The path this op touches.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { path, .. }
            | MultiOp::SetData { path, .. }
            | MultiOp::Delete { path, .. }
            | MultiOp::CheckVersion { path, .. } => path,
        }
    }
}
