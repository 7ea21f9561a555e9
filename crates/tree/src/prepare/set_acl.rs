//! setACL (`PrepRequestProcessor.pRequest2Txn`, case setACL). The expected
//! version is matched against the node's aversion.

use std::sync::Arc;

use proto::{ErrorCode, SetAclRequest, perms};

use super::{Context, View, check_acl, check_and_inc_version, check_session, validate};
use crate::txn::TxnOp;

pub(super) fn prepare(
    view: &mut View<'_>,
    request: &SetAclRequest,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    check_session(view, ctx)?;
    validate(&request.path)?;
    let acl = crate::acl::fixup(&request.acl, ctx.auth, ctx.features.acl_providers)?;
    let mut node = view.get(&request.path)?;
    check_acl(&node, perms::ADMIN, ctx)?;
    let aversion = check_and_inc_version(node.stat.aversion, request.version)?;
    node.stat.aversion = aversion;
    node.acl = Arc::new(acl.clone());
    view.put(&request.path, Some(node));
    Ok(TxnOp::SetAcl {
        path: request.path.clone(),
        acl,
        aversion,
    })
}
