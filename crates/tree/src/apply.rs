//! The second half of a write: apply a committed [`Txn`] to the tree. A pure
//! function of (state, transaction): it returns what happened to the caller
//! and the changes that watches must hear about, and never consults a clock
//! or anything outside the tree (`DataTree.processTxn`).

use std::sync::Arc;

use proto::{Acl, ErrorCode, Stat};

use crate::node::{Node, StatPersisted};
use crate::path;
use crate::tree::{DataTree, SessionRecord};
use crate::txn::{CreateTxn, Txn, TxnOp};

/// What applying a transaction produced, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created {
        path: String,
        stat: Stat,
        with_stat: bool,
    },
    Deleted,
    DataSet {
        stat: Stat,
    },
    AclSet {
        stat: Stat,
    },
    Checked,
    SessionCreated,
    SessionClosed,
    /// A failed write, or inside a failed multi an op before the failing
    /// one (`Ok`) or after it (`RuntimeInconsistency`).
    Error(ErrorCode),
    Multi(Vec<Outcome>),
}

/// A change that may fire watches, with the ACLs the delivery filter needs
/// (an event is delivered only to connections that may READ the node, or
/// the parent for NodeChildrenChanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created {
        path: String,
        acl: Arc<Vec<Acl>>,
        parent: String,
        parent_acl: Arc<Vec<Acl>>,
    },
    Deleted {
        path: String,
        acl: Arc<Vec<Acl>>,
        parent: String,
        parent_acl: Arc<Vec<Acl>>,
    },
    DataChanged {
        path: String,
        acl: Arc<Vec<Acl>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub outcome: Outcome,
    /// In the order ZooKeeper triggers them.
    pub changes: Vec<Change>,
    /// Paths whose stored record changed (created, deleted, or Stat/data/ACL
    /// updated, parents included), sorted: what a durable store must write.
    pub dirty_nodes: Vec<String>,
    /// Sessions created or closed by this transaction.
    pub dirty_sessions: Vec<i64>,
}

/// Applies one committed transaction.
pub fn apply(tree: &mut DataTree, txn: &Txn) -> Applied {
    let mut changes = Vec::new();
    let outcome = match &txn.op {
        TxnOp::Multi(ops) if txn.op.is_failed_multi() => Outcome::Multi(
            ops.iter()
                .map(|op| match op {
                    TxnOp::Error(code) => Outcome::Error(*code),
                    _ => Outcome::Error(ErrorCode::Ok),
                })
                .collect(),
        ),
        TxnOp::Multi(ops) => Outcome::Multi(
            ops.iter()
                .map(|op| apply_op(tree, txn, op, &mut changes))
                .collect(),
        ),
        op => apply_op(tree, txn, op, &mut changes),
    };
    tree.set_last_zxid(txn.zxid);
    let mut dirty = std::collections::BTreeSet::new();
    for change in &changes {
        match change {
            Change::Created { path, parent, .. } | Change::Deleted { path, parent, .. } => {
                dirty.insert(path.clone());
                dirty.insert(parent.clone());
            }
            Change::DataChanged { path, .. } => {
                dirty.insert(path.clone());
            }
        }
    }
    if let (TxnOp::SetAcl { path, .. }, Outcome::AclSet { .. }) = (&txn.op, &outcome) {
        dirty.insert(path::normalize(path).to_owned());
    }
    let dirty_sessions = match txn.op {
        TxnOp::CreateSession { .. } | TxnOp::CloseSession { .. } => vec![txn.session_id],
        _ => Vec::new(),
    };
    Applied {
        outcome,
        changes,
        dirty_nodes: dirty.into_iter().collect(),
        dirty_sessions,
    }
}

fn apply_op(tree: &mut DataTree, txn: &Txn, op: &TxnOp, changes: &mut Vec<Change>) -> Outcome {
    let result = match op {
        TxnOp::CreateSession {
            timeout_ms,
            password,
        } => {
            tree.sessions_mut().insert(
                txn.session_id,
                SessionRecord {
                    timeout_ms: *timeout_ms,
                    password: password.clone(),
                },
            );
            Ok(Outcome::SessionCreated)
        }
        TxnOp::CloseSession { paths_to_delete } => {
            close_session(tree, txn, paths_to_delete, changes);
            Ok(Outcome::SessionClosed)
        }
        TxnOp::Create(create) => create_node(tree, txn, create, changes),
        TxnOp::Delete { path } => {
            delete_node(tree, path, txn.zxid, changes).map(|()| Outcome::Deleted)
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => set_data(tree, txn, path, data, *version, changes),
        TxnOp::SetAcl {
            path,
            acl,
            aversion,
        } => set_acl(tree, path, acl, *aversion),
        TxnOp::Check { .. } => Ok(Outcome::Checked),
        TxnOp::Error(code) => Err(*code),
        // Nested multis cannot be prepared.
        TxnOp::Multi(_) => Err(ErrorCode::MarshallingError),
    };
    result.unwrap_or_else(Outcome::Error)
}

fn create_node(
    tree: &mut DataTree,
    txn: &Txn,
    create: &CreateTxn,
    changes: &mut Vec<Change>,
) -> Result<Outcome, ErrorCode> {
    let parent_path = path::parent_of(&create.path).ok_or(ErrorCode::BadArguments)?;
    let name = path::name_of(&create.path);
    let parent = tree.node_mut(parent_path).ok_or(ErrorCode::NoNode)?;
    if parent.children.contains(name) {
        return Err(ErrorCode::NodeExists);
    }
    // ZooKeeper only moves cversion (and with it pzxid) forward.
    let parent_cversion = if create.parent_cversion == -1 {
        parent.stat.cversion.wrapping_add(1)
    } else {
        create.parent_cversion
    };
    if parent_cversion > parent.stat.cversion {
        parent.stat.cversion = parent_cversion;
        parent.stat.pzxid = txn.zxid;
    }
    parent.children.insert(name);
    let parent_acl = parent.acl.clone();
    let acl = Arc::new(create.acl.clone());
    let node = Node::new(
        create.data.clone(),
        acl.clone(),
        StatPersisted::created(txn.zxid, txn.time_ms, create.ephemeral_owner),
    );
    let stat = node.stat();
    tree.insert_node(create.path.clone(), node);
    changes.push(Change::Created {
        path: create.path.clone(),
        acl,
        parent: watch_path(parent_path),
        parent_acl,
    });
    Ok(Outcome::Created {
        path: create.path.clone(),
        stat,
        with_stat: create.with_stat,
    })
}

fn delete_node(
    tree: &mut DataTree,
    path: &str,
    zxid: i64,
    changes: &mut Vec<Change>,
) -> Result<(), ErrorCode> {
    let parent_path = path::parent_of(path).ok_or(ErrorCode::BadArguments)?;
    let name = path::name_of(path);
    // As in ZooKeeper, the parent is updated before the child is looked up.
    let parent = tree.node_mut(parent_path).ok_or(ErrorCode::NoNode)?;
    parent.children.remove(name);
    if zxid > parent.stat.pzxid {
        parent.stat.pzxid = zxid;
    }
    let parent_acl = parent.acl.clone();
    let node = tree.remove_node(path).ok_or(ErrorCode::NoNode)?;
    changes.push(Change::Deleted {
        path: path.to_owned(),
        acl: node.acl,
        parent: watch_path(parent_path),
        parent_acl,
    });
    Ok(())
}

fn set_data(
    tree: &mut DataTree,
    txn: &Txn,
    path: &str,
    data: &Option<Vec<u8>>,
    version: i32,
    changes: &mut Vec<Change>,
) -> Result<Outcome, ErrorCode> {
    let node = tree.set_data(path, data.clone()).ok_or(ErrorCode::NoNode)?;
    node.stat.mtime = txn.time_ms;
    node.stat.mzxid = txn.zxid;
    node.stat.version = version;
    let stat = node.stat();
    changes.push(Change::DataChanged {
        path: path.to_owned(),
        acl: node.acl.clone(),
    });
    Ok(Outcome::DataSet { stat })
}

fn set_acl(
    tree: &mut DataTree,
    path: &str,
    acl: &[Acl],
    aversion: i32,
) -> Result<Outcome, ErrorCode> {
    let shared = tree.intern_acl(acl.to_vec());
    let node = tree.node_mut(path).ok_or(ErrorCode::NoNode)?;
    node.stat.aversion = aversion;
    node.acl = shared;
    Ok(Outcome::AclSet { stat: node.stat() })
}

/// `killSession`: the listed ephemerals, then any the session gained since
/// the list was made, then the session itself.
fn close_session(tree: &mut DataTree, txn: &Txn, listed: &[String], changes: &mut Vec<Change>) {
    for p in listed {
        // Already gone is fine (`deleteNodes` ignores NoNode).
        let _ = delete_node(tree, p, txn.zxid, changes);
    }
    let remaining: Vec<String> = tree.ephemerals_of(txn.session_id).cloned().collect();
    for p in remaining {
        let _ = delete_node(tree, &p, txn.zxid, changes);
    }
    tree.sessions_mut().remove(&txn.session_id);
}

/// Watches on the root are registered as "/", while the parent of "/a" is "".
fn watch_path(parent: &str) -> String {
    path::normalize(parent).to_owned()
}
