//! Writes: build the tree's write request, `prepare` it into a transaction
//! with the next zxid and the current wall-clock time, `apply` it, fire the
//! watches it triggers, and answer from the outcome.
//!
//! In this standalone server the transaction is applied as soon as it is
//! prepared; the durable log and replication slot in between the two.

use std::time::Instant;

use proto::{
    Create2Response, CreateResponse, CreateTtlRequest, ErrorCode, MultiResult, OpCode, Request,
    Response, StatResponse,
};
use tree::{Context, Outcome, Txn, TxnOp, WriteRequest, apply, prepare};

use super::Processor;
use crate::sessions::ConnId;
use crate::stats::wall_clock_ms;

/// Requests that go through prepare/apply and consume a zxid.
pub(super) fn is_write(request: &Request) -> bool {
    is_write_op(request.op())
}

pub(super) fn is_write_op(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Check
            | OpCode::Multi
            | OpCode::Reconfig
            | OpCode::CloseSession
    )
}

fn write_request(request: Request) -> Option<WriteRequest> {
    let create = |op, r: proto::CreateRequest| WriteRequest::Create {
        op,
        request: CreateTtlRequest {
            path: r.path,
            data: r.data,
            acl: r.acl,
            flags: r.flags,
            ttl: -1,
        },
    };
    Some(match request {
        Request::Create(r) => create(OpCode::Create, r),
        Request::Create2(r) => create(OpCode::Create2, r),
        Request::CreateContainer(r) => create(OpCode::CreateContainer, r),
        Request::CreateTtl(r) => WriteRequest::Create {
            op: OpCode::CreateTtl,
            request: r,
        },
        Request::Delete(r) => WriteRequest::Delete(r),
        Request::DeleteContainer(r) => WriteRequest::DeleteContainer(
            String::from_utf8_lossy(r.path.as_deref().unwrap_or_default()).into_owned(),
        ),
        Request::SetData(r) => WriteRequest::SetData(r),
        Request::SetAcl(r) => WriteRequest::SetAcl(r),
        Request::Check(r) => WriteRequest::Check(r),
        Request::Multi(ops) => WriteRequest::Multi(ops),
        Request::Reconfig(r) => WriteRequest::Reconfig(r),
        Request::CloseSession => WriteRequest::CloseSession,
        _ => return None,
    })
}

impl Processor {
    pub(super) fn write(
        &mut self,
        conn_id: ConnId,
        header: proto::RequestHeader,
        request: Request,
        received: Instant,
    ) {
        let op = request.op();
        let Some(write) = write_request(request) else {
            return;
        };
        let session_id = self.conns.get(&conn_id).map_or(0, |c| c.session_id);
        let txn = self.prepare_txn(conn_id, session_id, header.xid, &write);
        let outcome = self.commit(&txn);
        let zxid = txn.zxid;
        match (op, outcome) {
            (OpCode::CloseSession, _) => {
                self.sessions.remove(session_id);
                self.reply(
                    conn_id,
                    header.xid,
                    zxid,
                    ErrorCode::Ok,
                    &Response::Empty,
                    op,
                    received,
                );
                self.close(conn_id);
            }
            // A top-level check that succeeds is committed but never
            // answered by ZooKeeper 3.8 (building the reply fails on the
            // server; the connection stays open); a failing one is answered
            // normally.
            (OpCode::Check, Outcome::Checked) => {
                if let Some(conn) = self.conns.get(&conn_id) {
                    let _ = conn.outbound.send(super::Outgoing::NoReply);
                }
            }
            (op, outcome) => {
                let (err, body) = response(op, outcome);
                self.reply(conn_id, header.xid, zxid, err, &body, op, received);
            }
        }
    }

    fn prepare_txn(
        &self,
        conn_id: ConnId,
        session_id: i64,
        cxid: i32,
        write: &WriteRequest,
    ) -> Txn {
        let auth = self
            .conns
            .get(&conn_id)
            .map(|c| c.auth.as_slice())
            .unwrap_or_default();
        let ctx = Context {
            session_id,
            cxid,
            zxid: self.tree.last_zxid() + 1,
            time_ms: wall_clock_ms(),
            auth,
            features: &self.features,
        };
        prepare(&self.tree, write, &ctx)
    }

    /// Applies a transaction and fires its watches; returns its outcome.
    pub(super) fn commit(&mut self, txn: &Txn) -> Outcome {
        let applied = apply(&mut self.tree, txn);
        self.stats.commit_count += 1;
        self.record_write_stats(&applied.changes);
        self.deliver(&applied.changes);
        applied.outcome
    }

    /// Commits a write that failed before it could be prepared (its body did
    /// not parse); returns the zxid it consumed.
    pub(super) fn commit_error(&mut self, conn_id: ConnId, cxid: i32, code: ErrorCode) -> i64 {
        let session_id = self.conns.get(&conn_id).map_or(0, |c| c.session_id);
        let txn = Txn {
            session_id,
            cxid,
            zxid: self.tree.last_zxid() + 1,
            time_ms: wall_clock_ms(),
            op: TxnOp::Error(code),
        };
        self.commit(&txn);
        txn.zxid
    }

    /// Commits a server-internal write (session expiry, container reaping).
    pub(super) fn commit_internal(&mut self, session_id: i64, write: &WriteRequest) -> Outcome {
        let ctx = Context {
            session_id,
            cxid: 0,
            zxid: self.tree.last_zxid() + 1,
            time_ms: wall_clock_ms(),
            auth: &[],
            features: &self.features,
        };
        let txn = prepare(&self.tree, write, &ctx);
        self.commit(&txn)
    }
}

/// The reply for a write's outcome: the header error and the body.
fn response(op: OpCode, outcome: Outcome) -> (ErrorCode, Response) {
    match outcome {
        Outcome::Error(code) => (code, Response::Empty),
        Outcome::Created { path, stat, .. } => match op {
            OpCode::Create => (ErrorCode::Ok, Response::Create(CreateResponse { path })),
            _ => (
                ErrorCode::Ok,
                Response::Create2(Create2Response { path, stat }),
            ),
        },
        Outcome::DataSet { stat } | Outcome::AclSet { stat } => {
            (ErrorCode::Ok, Response::Stat(StatResponse { stat }))
        }
        // A failed multi still answers Ok in the header; the error is in the
        // results.
        Outcome::Multi(results) => (
            ErrorCode::Ok,
            Response::Multi(results.into_iter().map(multi_result).collect()),
        ),
        Outcome::Deleted | Outcome::Checked | Outcome::SessionCreated | Outcome::SessionClosed => {
            (ErrorCode::Ok, Response::Empty)
        }
    }
}

fn multi_result(outcome: Outcome) -> MultiResult {
    match outcome {
        Outcome::Created {
            path,
            stat,
            with_stat: true,
        } => MultiResult::Create2 { path, stat },
        Outcome::Created { path, .. } => MultiResult::Create { path },
        Outcome::Deleted => MultiResult::Delete,
        Outcome::DataSet { stat } => MultiResult::SetData { stat },
        Outcome::Checked => MultiResult::Check,
        Outcome::Error(code) => MultiResult::Error(code),
        // Not produced inside a multi.
        Outcome::AclSet { .. }
        | Outcome::SessionCreated
        | Outcome::SessionClosed
        | Outcome::Multi(_) => MultiResult::Error(ErrorCode::MarshallingError),
    }
}
