//! Reads, answered from the local tree (`FinalRequestProcessor`). Each
//! returns the error code and the response body; the caller sends them with
//! the last applied zxid.

use proto::{
    ClientInfo, ErrorCode, GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, MultiReadOp, MultiResult,
    PathResponse, Request, Response, StatResponse, WatcherType, WhoAmIResponse, perms,
};
use tree::{Node, Table};

use super::ZooKeeper;
use crate::sessions::ConnId;

impl ZooKeeper {
    pub(super) fn read(&mut self, conn_id: ConnId, request: &Request) -> (ErrorCode, Response) {
        match self.read_inner(conn_id, request) {
            Ok(response) => (ErrorCode::Ok, response),
            Err(code) => (code, Response::Empty),
        }
    }

    /// The node at `path`, if the caller may READ it.
    fn readable(&self, conn_id: ConnId, path: &str) -> Result<&Node, ErrorCode> {
        let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
        self.check_acl(conn_id, node, perms::READ)?;
        Ok(node)
    }

    pub(super) fn check_acl(
        &self,
        conn_id: ConnId,
        node: &Node,
        perm: i32,
    ) -> Result<(), ErrorCode> {
        let auth = self
            .conns
            .get(&conn_id)
            .map(|c| c.auth.as_slice())
            .unwrap_or_default();
        tree::acl::check(
            &node.acl,
            perm,
            auth,
            self.config.skip_acl,
            self.config.acl_providers(),
        )
    }

    fn read_inner(&mut self, conn_id: ConnId, request: &Request) -> Result<Response, ErrorCode> {
        Ok(match request {
            Request::Exists(r) => {
                // exists checks no ACL and registers its watch even on a
                // missing node, before looking it up (`DataTree.statNode`).
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                if r.watch {
                    self.watches.watch_data(&r.path, conn_id);
                }
                let stat = self.tree.stat(&r.path).ok_or(ErrorCode::NoNode)?;
                Response::Stat(StatResponse { stat })
            }
            Request::GetData(r) => {
                let node = self.readable(conn_id, &r.path)?;
                let response = GetDataResponse {
                    data: node.data.clone(),
                    stat: node.stat(),
                };
                if r.watch {
                    self.watches.watch_data(&r.path, conn_id);
                }
                Response::GetData(response)
            }
            Request::GetChildren(r) => {
                let node = self.readable(conn_id, &r.path)?;
                let children = node.children.iter().map(|c| c.to_string()).collect();
                if r.watch {
                    self.watches.watch_children(&r.path, conn_id);
                }
                Response::GetChildren(GetChildrenResponse { children })
            }
            Request::GetChildren2(r) => {
                let node = self.readable(conn_id, &r.path)?;
                let response = GetChildren2Response {
                    children: node.children.iter().map(|c| c.to_string()).collect(),
                    stat: node.stat(),
                };
                if r.watch {
                    self.watches.watch_children(&r.path, conn_id);
                }
                Response::GetChildren2(response)
            }
            Request::GetAcl(r) => {
                let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                self.check_acl(conn_id, node, perms::READ | perms::ADMIN)?;
                // Without ADMIN the caller sees digest ids as `user:x`.
                let acl = if self.check_acl(conn_id, node, perms::ADMIN).is_ok() {
                    node.acl.as_ref().clone()
                } else {
                    tree::acl::redact(&node.acl)
                };
                Response::GetAcl(GetAclResponse {
                    acl,
                    stat: node.stat(),
                })
            }
            Request::GetAllChildrenNumber(r) => {
                self.readable(conn_id, &r.path)?;
                let total = self.tree.all_children_number(&r.path);
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse {
                    total_number: i32::try_from(total).unwrap_or(i32::MAX),
                })
            }
            Request::GetEphemerals(r) => {
                let session_id = self.conns.get(&conn_id).map_or(0, |c| c.session_id);
                let prefix = r.path.trim();
                let all = prefix.is_empty() || prefix == "/";
                let ephemerals = self
                    .tree
                    .ephemerals_of(session_id)
                    .filter(|p| all || p.starts_with(r.path.as_str()))
                    .cloned()
                    .collect();
                Response::GetEphemerals(GetEphemeralsResponse { ephemerals })
            }
            // sync echoes its path; on a single server every write a client
            // was told about is already applied.
            Request::Sync(r) => Response::Sync(PathResponse {
                path: r.path.clone(),
            }),
            Request::WhoAmI => {
                let auth = self
                    .conns
                    .get(&conn_id)
                    .map(|c| c.auth.clone())
                    .unwrap_or_default();
                let client_info = auth
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: tree::acl::user_name(id),
                    })
                    .collect();
                Response::WhoAmI(WhoAmIResponse { client_info })
            }
            Request::MultiRead(ops) => Response::Multi(
                ops.iter()
                    .map(|op| self.multi_read_op(conn_id, op))
                    .collect(),
            ),
            Request::AddWatch(r) => {
                let recursive = match r.mode {
                    0 => false,
                    1 => true,
                    _ => return Err(ErrorCode::MarshallingError),
                };
                self.watches.add_persistent(&r.path, conn_id, recursive);
                Response::AddWatch(proto::ErrorResponse { err: 0 })
            }
            Request::CheckWatches(r) => {
                let table = watcher_table(r.watcher_type)?;
                if !self.watches.contains(&r.path, table) {
                    return Err(ErrorCode::NoWatcher);
                }
                Response::Empty
            }
            Request::RemoveWatches(r) => {
                let table = watcher_table(r.watcher_type)?;
                if !self.watches.remove(&r.path, table, conn_id) {
                    return Err(ErrorCode::NoWatcher);
                }
                Response::Empty
            }
            Request::SetWatches(r) => {
                self.set_watches(
                    conn_id,
                    r.relative_zxid,
                    &r.data_watches,
                    &r.exist_watches,
                    &r.child_watches,
                    &[],
                    &[],
                );
                Response::Empty
            }
            Request::SetWatches2(r) => {
                self.set_watches(
                    conn_id,
                    r.relative_zxid,
                    &r.data_watches,
                    &r.exist_watches,
                    &r.child_watches,
                    &r.persistent_watches,
                    &r.persistent_recursive_watches,
                );
                Response::Empty
            }
            // Writes and connection-level ops never reach here.
            _ => return Err(ErrorCode::Unimplemented),
        })
    }

    /// multiRead: each op on its own; a failure becomes that op's result.
    /// Watch flags are ignored.
    fn multi_read_op(&self, conn_id: ConnId, op: &MultiReadOp) -> MultiResult {
        let result = match op {
            MultiReadOp::GetChildren(r) => {
                self.readable(conn_id, &r.path)
                    .map(|n| MultiResult::GetChildren {
                        children: n.children.iter().map(|c| c.to_string()).collect(),
                    })
            }
            MultiReadOp::GetData(r) => {
                self.readable(conn_id, &r.path)
                    .map(|n| MultiResult::GetData {
                        data: n.data.clone(),
                        stat: n.stat(),
                    })
            }
            // Refused before any op runs (see `Processor::request`).
            MultiReadOp::Write(_) => Err(ErrorCode::MarshallingError),
        };
        result.unwrap_or_else(MultiResult::Error)
    }
}

/// `WatcherType.fromInt`: ZooKeeper 3.8 knows 1..=3; anything else is a
/// MarshallingError.
fn watcher_table(code: i32) -> Result<Table, ErrorCode> {
    match WatcherType::from_code(code) {
        Some(WatcherType::Children) => Ok(Table::Child),
        Some(WatcherType::Data) => Ok(Table::Data),
        Some(WatcherType::Any) => Ok(Table::Any),
        None => Err(ErrorCode::MarshallingError),
    }
}
