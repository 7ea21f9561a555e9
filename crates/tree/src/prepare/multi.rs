//! multi: every op evaluated in order against the state the earlier ops
//! produce; on the first failure the pending changes are rolled back and the
//! remaining ops become RuntimeInconsistency (`PrepRequestProcessor`, case
//! multi). The whole multi shares one zxid and one time.

use proto::{CreateMode, CreateTtlRequest, ErrorCode, MultiOp, OpCode};

use super::{Context, View, WriteRequest, prepare_one};
use crate::txn::TxnOp;

pub(super) fn prepare(view: &mut View<'_>, ops: &[MultiOp], ctx: &Context<'_>) -> TxnOp {
    let mut txns = Vec::with_capacity(ops.len());
    let mut failed = false;
    for op in ops {
        if failed {
            txns.push(TxnOp::Error(ErrorCode::RuntimeInconsistency));
            continue;
        }
        let request = match as_write_request(op) {
            Ok(request) => request,
            // Not a KeeperException in ZooKeeper: it escapes the loop and
            // fails the whole request (but only if it is reached).
            Err(code) => return TxnOp::Error(code),
        };
        match prepare_one(view, &request, ctx) {
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

/// How Apache ZooKeeper 3.8.0 (Debian's reference server) rebuilds each
/// create of a multi: `MultiOperationRecord.deserialize` calls
/// `Op.create(path, data, acl, flags)`, whose op code follows the flags
/// alone (`Op.Create.getOpcode`, invalid flags read as persistent): container
/// flags make a createContainer, TTL flags a createTTL, anything else a plain
/// create. So a create2 or createContainer header inside a multi gives a
/// plain create answered without a Stat (ZOOKEEPER-4026, changed in 3.8.4),
/// and invalid flags are refused later, per op, as BadArguments.
fn as_write_request(op: &MultiOp) -> Result<WriteRequest, ErrorCode> {
    Ok(match op {
        MultiOp::Create { request, .. } => {
            let op = match CreateMode::from_code(request.flags) {
                Some(m) if m.is_container() => OpCode::CreateContainer,
                // A TTL op built from a CreateRequest carries no TTL record:
                // preparing it fails the cast to CreateTTLRequest, which is
                // not a KeeperException, so the whole request fails.
                Some(m) if m.is_ttl() => return Err(ErrorCode::MarshallingError),
                _ => OpCode::Create,
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
            WriteRequest::Create {
                op,
                request: CreateTtlRequest {
                    ttl,
                    ..request.clone()
                },
            }
        }
        MultiOp::Delete(r) => WriteRequest::Delete(r.clone()),
        MultiOp::SetData(r) => WriteRequest::SetData(r.clone()),
        MultiOp::Check(r) => WriteRequest::Check(r.clone()),
    })
}
