//! Writes: which requests are writes, how a request becomes the tree's
//! write request, and how a write's outcome becomes its reply. The journey
//! in between (prepare, log, apply) is `pipeline`.

use std::time::Instant;

use proto::{
    Create2Response, CreateResponse, CreateTtlRequest, ErrorCode, MultiResult, OpCode, Request,
    Response, StatResponse,
};
use tree::{Outcome, WriteRequest};

use super::ZooKeeper;
use super::pipeline::Waiter;
use crate::sessions::ConnId;

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

pub(super) fn write_request(request: Request) -> Option<WriteRequest> {
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

/// The request a write came from, to forward it to the leader (which
/// turns it back with [`write_request`]); `None` for a new session, which
/// travels as its own message.
pub(super) fn request_of(write: &WriteRequest) -> Option<Request> {
    let create = |r: &CreateTtlRequest| proto::CreateRequest {
        path: r.path.clone(),
        data: r.data.clone(),
        acl: r.acl.clone(),
        flags: r.flags,
    };
    Some(match write {
        WriteRequest::Create { op, request } => match op {
            OpCode::Create => Request::Create(create(request)),
            OpCode::Create2 => Request::Create2(create(request)),
            OpCode::CreateContainer => Request::CreateContainer(create(request)),
            _ => Request::CreateTtl(request.clone()),
        },
        WriteRequest::Delete(r) => Request::Delete(r.clone()),
        WriteRequest::SetData(r) => Request::SetData(r.clone()),
        WriteRequest::SetAcl(r) => Request::SetAcl(r.clone()),
        WriteRequest::Check(r) => Request::Check(r.clone()),
        WriteRequest::Multi(ops) => Request::Multi(ops.clone()),
        WriteRequest::DeleteContainer(path) => {
            Request::DeleteContainer(proto::DeleteContainerRequest {
                path: Some(path.clone().into_bytes()),
            })
        }
        WriteRequest::Reconfig(r) => Request::Reconfig(r.clone()),
        WriteRequest::CloseSession => Request::CloseSession,
        WriteRequest::CreateSession { .. } => return None,
    })
}

impl ZooKeeper {
    /// Prepares a client's write and sends it to the log; it is answered
    /// when it has been applied (`pipeline`).
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
        if op == OpCode::CloseSession {
            // From now on the session cannot be re-opened or expire.
            self.sessions.remove(session_id);
        }
        let waiter = Waiter::Client {
            conn: conn_id,
            xid: header.xid,
            op,
            received,
        };
        self.submit(&write, session_id, header.xid, Some(conn_id), waiter);
    }
}

/// The reply for a write's outcome: the header error and the body.
pub(super) fn response(op: OpCode, outcome: Outcome) -> (ErrorCode, Response) {
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
