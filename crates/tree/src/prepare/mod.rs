//! The first half of a write: check a request against the current state and
//! turn it into a deterministic [`Txn`], or into the error it must fail with
//! (a failed write still becomes a transaction and consumes its zxid, as in
//! ZooKeeper). One file per write op; this module holds the pending-change
//! view they share (ZooKeeper's `ChangeRecord`s), which lets the ops of a
//! multi see the effects of the ops before them.

mod check;
mod create;
mod delete;
mod multi;
mod reconfig;
mod session;
mod set_acl;
mod set_data;

use std::collections::HashMap;
use std::sync::Arc;

use proto::{
    Acl, CheckVersionRequest, CreateTtlRequest, DeleteRequest, ErrorCode, Id, MultiOp, OpCode,
    ReconfigRequest, SetAclRequest, SetDataRequest,
};

use crate::node::StatPersisted;
use crate::path;
use crate::tree::DataTree;
use crate::txn::{Txn, TxnOp};

/// Server settings that change how writes are judged.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types: bool,
    /// `zookeeper.skipACL=yes`.
    pub skip_acl: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// The optional ACL schemes (`authProvider.N`).
    pub acl_providers: crate::acl::Providers,
}

/// Who is writing, and the values the leader fixes for this write.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub session_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time_ms: i64,
    /// The connection's identities (ip, digest, super...).
    pub auth: &'a [Id],
    pub features: &'a Features,
}

/// A write as the tree understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRequest {
    /// create (1), create2 (15), createContainer (19) or createTTL (21);
    /// `ttl` is -1 for every op but createTTL, as in ZooKeeper.
    Create {
        op: OpCode,
        request: CreateTtlRequest,
    },
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    SetAcl(SetAclRequest),
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    /// deleteContainer (20): sent by the container reaper, or by a client.
    DeleteContainer(String),
    Reconfig(ReconfigRequest),
    CreateSession {
        timeout_ms: i32,
        password: Vec<u8>,
    },
    CloseSession,
}

/// Turns `request` into the transaction that will be committed for it,
/// judged against the tree plus every change prepared before it and not yet
/// applied (`pending`), which it then joins.
pub fn prepare(
    tree: &DataTree,
    pending: &mut Pending,
    request: &WriteRequest,
    ctx: &Context<'_>,
) -> Txn {
    let mut view = View::new(tree, pending);
    let op = match request {
        WriteRequest::Multi(ops) => multi::prepare(&mut view, ops, ctx),
        single => prepare_one(&mut view, single, ctx).unwrap_or_else(TxnOp::Error),
    };
    let succeeded = !matches!(op, TxnOp::Error(_)) && !op.is_failed_multi();
    let changes = std::mem::take(&mut view.changes);
    if succeeded {
        for (path, record) in changes {
            pending.records.insert(path, (ctx.zxid, record));
        }
        match op {
            TxnOp::CreateSession { .. } => {
                pending.sessions.insert(ctx.session_id, (ctx.zxid, true));
            }
            TxnOp::CloseSession { .. } => {
                pending.sessions.insert(ctx.session_id, (ctx.zxid, false));
            }
            _ => {}
        }
    }
    Txn {
        session_id: ctx.session_id,
        cxid: ctx.cxid,
        zxid: ctx.zxid,
        time_ms: ctx.time_ms,
        op,
    }
}

fn prepare_one(
    view: &mut View<'_>,
    request: &WriteRequest,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    match request {
        WriteRequest::Create { op, request } => create::prepare(view, *op, request, ctx),
        WriteRequest::Delete(r) => delete::prepare(view, r, ctx),
        WriteRequest::SetData(r) => set_data::prepare(view, r, ctx),
        WriteRequest::SetAcl(r) => set_acl::prepare(view, r, ctx),
        WriteRequest::Check(r) => check::prepare(view, r, ctx),
        WriteRequest::DeleteContainer(p) => delete::prepare_container(view, p, ctx),
        WriteRequest::Reconfig(r) => reconfig::prepare(view, r, ctx),
        WriteRequest::CreateSession {
            timeout_ms,
            password,
        } => Ok(session::prepare_create(*timeout_ms, password)),
        WriteRequest::CloseSession => Ok(session::prepare_close(view, ctx)),
        WriteRequest::Multi(_) => Err(ErrorCode::MarshallingError),
    }
}

/// A node as prepare sees it: committed state plus the pending changes of
/// earlier ops in the same multi (`PrepRequestProcessor.ChangeRecord`).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub stat: StatPersisted,
    pub child_count: i32,
    pub acl: Arc<Vec<Acl>>,
}

/// Changes prepared but not yet applied, across requests (ZooKeeper's
/// `outstandingChanges`): with a log between prepare and apply, a write must
/// be judged against the writes before it even while they wait to become
/// durable. Each record carries the zxid of the transaction that made it.
#[derive(Debug, Default)]
pub struct Pending {
    records: HashMap<String, (i64, Option<Record>)>,
    /// Sessions created (`true`) or closed (`false`) by pending
    /// transactions: a closing session's later requests fail at once, as
    /// ZooKeeper's `setSessionClosing` makes them.
    sessions: HashMap<i64, (i64, bool)>,
}

impl Pending {
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree now reflects every transaction up to `zxid`: their records
    /// are no longer needed. (Transactions are applied in zxid order.)
    pub fn applied(&mut self, zxid: i64) {
        self.records.retain(|_, (z, _)| *z > zxid);
        self.sessions.retain(|_, (z, _)| *z > zxid);
    }

    /// Forgets everything (prepared transactions were dropped).
    pub fn clear(&mut self) {
        self.records.clear();
        self.sessions.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.sessions.is_empty()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}

pub(crate) struct View<'a> {
    tree: &'a DataTree,
    pending: &'a Pending,
    /// This request's own changes; `None` marks a node deleted by an
    /// earlier op of the same multi.
    changes: HashMap<String, Option<Record>>,
}

impl<'a> View<'a> {
    fn new(tree: &'a DataTree, pending: &'a Pending) -> Self {
        View {
            tree,
            pending,
            changes: HashMap::new(),
        }
    }

    pub(crate) fn tree(&self) -> &'a DataTree {
        self.tree
    }

    /// The ephemerals `session` owns as prepare sees them: committed ones,
    /// minus pending deletions, plus pending creations, sorted.
    pub(crate) fn ephemerals_of(&self, session: i64) -> Vec<String> {
        let mut out: std::collections::BTreeSet<String> =
            self.tree.ephemerals_of(session).cloned().collect();
        for (path, (_, record)) in &self.pending.records {
            match record {
                Some(r) if r.stat.ephemeral_owner == session => {
                    out.insert(path.clone());
                }
                None => {
                    out.remove(path);
                }
                Some(_) => {}
            }
        }
        out.into_iter().collect()
    }

    /// `getRecordForPath`: the node or NoNode.
    pub(crate) fn get(&self, p: &str) -> Result<Record, ErrorCode> {
        let p = path::normalize(p);
        let change = self
            .changes
            .get(p)
            .or_else(|| self.pending.records.get(p).map(|(_, r)| r));
        match change {
            Some(Some(record)) => Ok(record.clone()),
            Some(None) => Err(ErrorCode::NoNode),
            None => self
                .tree
                .node(p)
                .map(|n| Record {
                    stat: n.stat,
                    child_count: n.num_children(),
                    acl: n.acl.clone(),
                })
                .ok_or(ErrorCode::NoNode),
        }
    }

    pub(crate) fn put(&mut self, p: &str, record: Option<Record>) {
        self.changes.insert(path::normalize(p).to_owned(), record);
    }

    /// Drops every pending change (a multi op failed).
    fn rollback(&mut self) {
        self.changes.clear();
    }
}

/// `sessionTracker.checkSession`: the session must be live.
pub(crate) fn check_session(view: &View<'_>, ctx: &Context<'_>) -> Result<(), ErrorCode> {
    let alive = match view.pending.sessions.get(&ctx.session_id) {
        Some((_, alive)) => *alive,
        None => view.tree().session(ctx.session_id).is_some(),
    };
    if alive {
        Ok(())
    } else {
        Err(ErrorCode::SessionExpired)
    }
}

/// `validatePath`: anything invalid is BadArguments.
pub(crate) fn validate(p: &str) -> Result<(), ErrorCode> {
    path::validate_path(p).map_err(|_| ErrorCode::BadArguments)
}

/// `checkAndIncVersion`: -1 matches any version.
pub(crate) fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// `checkACL` with the server's skipACL setting.
pub(crate) fn check_acl(record: &Record, perm: i32, ctx: &Context<'_>) -> Result<(), ErrorCode> {
    crate::acl::check(
        &record.acl,
        perm,
        ctx.auth,
        ctx.features.skip_acl,
        ctx.features.acl_providers,
    )
}
