//! reconfig on a standalone server: disabled unless `reconfigEnabled`, and
//! then Unimplemented, exactly as a standalone Apache ZooKeeper answers.
//! Both are failed writes that consume a zxid.

use proto::{ErrorCode, ReconfigRequest};

use super::{Context, View, check_session};
use crate::txn::TxnOp;

pub(super) fn prepare(
    view: &mut View<'_>,
    _request: &ReconfigRequest,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    if !ctx.features.reconfig_enabled {
        return Err(ErrorCode::ReconfigDisabled);
    }
    check_session(view, ctx)?;
    Err(ErrorCode::Unimplemented)
}
