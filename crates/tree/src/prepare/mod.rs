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

/// Turns `request` into the transaction that will be committed for it.
pub fn prepare(tree: &DataTree, request: &WriteRequest, ctx: &Context<'_>) -> Txn {
    let mut view = View::new(tree);
    let op = match request {
        WriteRequest::Multi(ops) => multi::prepare(&mut view, ops, ctx),
        single => prepare_one(&mut view, single, ctx).unwrap_or_else(TxnOp::Error),
    };
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

pub(crate) struct View<'a> {
    tree: &'a DataTree,
    /// `None` marks a node deleted by an earlier op.
    changes: HashMap<String, Option<Record>>,
}

impl<'a> View<'a> {
    fn new(tree: &'a DataTree) -> Self {
        View {
            tree,
            changes: HashMap::new(),
        }
    }

    pub(crate) fn tree(&self) -> &'a DataTree {
        self.tree
    }

    /// `getRecordForPath`: the node or NoNode.
    pub(crate) fn get(&self, p: &str) -> Result<Record, ErrorCode> {
        let p = path::normalize(p);
        match self.changes.get(p) {
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
    if view.tree().session(ctx.session_id).is_some() {
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
    crate::acl::check(&record.acl, perm, ctx.auth, ctx.features.skip_acl)
}
