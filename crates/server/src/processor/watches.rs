//! Watch delivery and setWatches.
//!
//! Notifications are queued on the connection's outbound channel while the
//! transaction's effects are being handled, before its reply, which is what
//! gives ZooKeeper's "event before data" guarantee.

use proto::{EventType, perms};
use tree::Change;

use super::ZooKeeper;
use crate::sessions::ConnId;

impl ZooKeeper {
    /// Fires the watches of the changes one transaction made. A connection
    /// whose identities may not READ the node (the parent, for
    /// NodeChildrenChanged) does not get the event (CVE-2024-23944 fix,
    /// present in Debian's ZooKeeper 3.8).
    pub(super) fn deliver(&mut self, changes: &[Change]) {
        for change in changes {
            let fired = self.watches.trigger(change);
            self.stats
                .record_watchers_fired(fired.iter().map(|n| n.event_type));
            for n in fired {
                let Some(conn) = self.conns.get(&n.watcher) else {
                    continue;
                };
                let providers = self.config.acl_providers();
                if tree::acl::check(
                    &n.acl,
                    perms::READ,
                    &conn.auth,
                    self.config.skip_acl,
                    providers,
                )
                .is_err()
                {
                    continue;
                }
                self.notify(n.watcher, n.event_type, &n.path);
            }
        }
    }

    fn notify(&mut self, conn_id: ConnId, event_type: EventType, path: &str) {
        let mut frame = Vec::new();
        proto::encode_notification(&mut frame, event_type, path);
        self.stats
            .record_notification(frame.len().saturating_sub(proto::frame::LENGTH_PREFIX));
        self.send_frame(conn_id, frame);
    }

    /// setWatches / setWatches2, sent by clients after reconnecting: for
    /// every watch the client had, either an immediate event (the change
    /// happened while it was away: `relative_zxid` is the last zxid it saw)
    /// or a fresh registration. Immediate events skip the ACL filter, as in
    /// ZooKeeper (`DataTree.setWatches`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_watches(
        &mut self,
        conn_id: ConnId,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        recursive: &[String],
    ) {
        for path in data {
            match self.tree.node(path) {
                None => self.notify(conn_id, EventType::NodeDeleted, path),
                Some(node) if node.stat.mzxid > relative_zxid => {
                    self.notify(conn_id, EventType::NodeDataChanged, path)
                }
                Some(_) => self.watches.watch_data(path, conn_id),
            }
        }
        for path in exist {
            if self.tree.exists(path) {
                self.notify(conn_id, EventType::NodeCreated, path);
            } else {
                self.watches.watch_data(path, conn_id);
            }
        }
        for path in child {
            match self.tree.node(path) {
                None => self.notify(conn_id, EventType::NodeDeleted, path),
                Some(node) if node.stat.pzxid > relative_zxid => {
                    self.notify(conn_id, EventType::NodeChildrenChanged, path)
                }
                Some(_) => self.watches.watch_children(path, conn_id),
            }
        }
        for path in persistent {
            self.watches.add_persistent(path, conn_id, false);
        }
        for path in recursive {
            self.watches.add_persistent(path, conn_id, true);
        }
    }
}
