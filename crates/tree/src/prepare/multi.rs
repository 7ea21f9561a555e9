//! multi: every op evaluated in order against the state the earlier ops
//! produce; on the first failure the pending changes are rolled back and the
//! remaining ops become RuntimeInconsistency (`PrepRequestProcessor`, case
//! multi). The whole multi shares one zxid and one time.

use proto::{CreateMode, CreateTtlRequest, ErrorCode, MultiOp, OpCode};

use super::{Context, View, WriteRequest, prepare_one};
use crate::txn::TxnOp;

pub(super) fn prepare(view: &mut View<'_>, ops: &[MultiOp], ctx: &Context<'_>) -> TxnOp {
    // ZooKeeper deserializes the whole `MultiOperationRecord` before it
    // prepares any op, so a malformed op fails the whole request even after
    // an op that would have failed (not a KeeperException: no per-op results).
    let requests = match ops.iter().map(as_write_request).collect::<Result<Vec<_>, _>>() {
        Ok(requests) => requests,
        Err(code) => return TxnOp::Error(code),
    };
    let mut txns = Vec::with_capacity(ops.len());
    let mut failed = false;
    for request in &requests {
        if failed {
            txns.push(TxnOp::Error(ErrorCode::RuntimeInconsistency));
            continue;
        }
        match prepare_one(view, request, ctx) {
            Ok(txn) => txns.push(txn),
            Err(code) => {
                failed = true;
                view.rollback();
                txns.push(TxnOp::Error(code));
            }
        }
    }
    TxnOp::Multi(txns)
}

/// ZooKeeper 3.8.4 rebuilds each create/create2/createContainer of a multi
/// with `Op.create(path, data, options, header type)`
/// (`MultiOperationRecord.deserialize`, `Op.Create.getOpcode`): container
/// flags make a createContainer, otherwise the op sent is kept, so a create2
/// inside a multi is answered with a Stat and a createContainer op makes a
/// container whatever its flags.
fn as_write_request(op: &MultiOp) -> Result<WriteRequest, ErrorCode> {
    Ok(match op {
        MultiOp::Create { op, request } => {
            let op = match CreateMode::from_code(request.flags) {
                // `CreateMode.fromFlag(flags, null)` gives null and
                // `deserialize` throws an IOException: the whole request is
                // a MarshallingError.
                None => return Err(ErrorCode::MarshallingError),
                Some(m) if m.is_container() => OpCode::CreateContainer,
                // A TTL mode without a TTL: `CreateOptions` rejects ttl -1 while
                // the request is deserialized, so the whole request fails.
                Some(m) if m.is_ttl() => return Err(ErrorCode::MarshallingError),
                Some(_) if matches!(op, OpCode::Create2 | OpCode::CreateContainer) => *op,
                Some(_) => OpCode::Create,
            };
            let request = CreateTtlRequest {
                path: request.path.clone(),
                data: request.data.clone(),
                acl: request.acl.clone(),
                flags: request.flags,
                ttl: -1,
            };
            WriteRequest::Create { op, request }
        }
        MultiOp::CreateTtl(request) => {
            // `Op.create(.., ttl)` keeps the TTL only for TTL modes.
            let (op, ttl) = match CreateMode::from_code(request.flags) {
                Some(m) if m.is_ttl() => (OpCode::CreateTtl, request.ttl),
                Some(m) if m.is_container() => (OpCode::CreateContainer, -1),
                _ => (OpCode::Create, -1),
            };
            WriteRequest::Create { op, request: CreateTtlRequest { ttl, ..request.clone() } }
        }
        MultiOp::Delete(r) => WriteRequest::Delete(r.clone()),
        MultiOp::SetData(r) => WriteRequest::SetData(r.clone()),
        MultiOp::Check(r) => WriteRequest::Check(r.clone()),
    })
}
