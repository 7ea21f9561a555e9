//! setData (`PrepRequestProcessor.pRequest2Txn`, case setData).

use proto::{ErrorCode, SetDataRequest, perms};

use super::{Context, View, check_acl, check_and_inc_version, check_session, validate};
use crate::txn::TxnOp;

pub(super) fn prepare(
    view: &mut View<'_>,
    request: &SetDataRequest,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    check_session(view, ctx)?;
    validate(&request.path)?;
    let mut node = view.get(&request.path)?;
    check_acl(&node, perms::WRITE, ctx)?;
    // Quotas are enforced only with zookeeper.enforceQuota=true, which
    // Conclave does not offer; the check would sit here.
    let version = check_and_inc_version(node.stat.version, request.version)?;
    node.stat.version = version;
    node.stat.mzxid = ctx.zxid;
    node.stat.mtime = ctx.time_ms;
    view.put(&request.path, Some(node));
    Ok(TxnOp::SetData {
        path: request.path.clone(),
        data: request.data.clone(),
        version,
    })
}
