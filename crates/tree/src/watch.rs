//! Watch registrations and triggering, with ZooKeeper 3.8's rules
//! (`WatchManager`, `WatcherModeManager`, `DataTree`):
//!
//! - two tables, data and child, each path -> watchers, and one mode per
//!   (watcher, path) per table: a later registration replaces the mode of an
//!   earlier one (3.8; 3.9 lets modes coexist, ZOOKEEPER-4466);
//! - standard watches fire once, persistent and recursive ones stay;
//! - recursive watches on a path or any ancestor fire for created, deleted
//!   and data-changed events, never for children-changed;
//! - a watcher hears at most one event per table lookup, and a delete does
//!   not notify a watcher through the child table that the data table
//!   already notified.
//!
//! Watchers are connections, named by an opaque id; watches vanish with the
//! connection. Delivery (and its ACL filter) is the server's job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proto::{Acl, EventType};

use crate::apply::Change;
use crate::path;

/// Identifies a connection that holds watches.
pub type WatcherId = u64;

/// `WatcherMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    Standard,
    Persistent,
    PersistentRecursive,
}

impl WatchMode {
    fn is_recursive(self) -> bool {
        self == WatchMode::PersistentRecursive
    }
}

/// Which table(s) a checkWatches/removeWatches request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Data,
    Child,
    Any,
}

/// One event to deliver, with the ACL the delivery filter checks READ on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub watcher: WatcherId,
    pub event_type: EventType,
    pub path: String,
    pub acl: Arc<Vec<Acl>>,
}

#[derive(Debug, Default)]
struct WatchTable {
    /// Sorted maps so the order of notifications is deterministic.
    by_path: HashMap<String, BTreeMap<WatcherId, WatchMode>>,
    by_watcher: HashMap<WatcherId, BTreeSet<String>>,
    recursive: usize,
}

impl WatchTable {
    fn add(&mut self, path: &str, watcher: WatcherId, mode: WatchMode) {
        let old = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .insert(watcher, mode);
        if old.is_some_and(WatchMode::is_recursive) {
            self.recursive -= 1;
        }
        if mode.is_recursive() {
            self.recursive += 1;
        }
        self.by_watcher
            .entry(watcher)
            .or_default()
            .insert(path.to_owned());
    }

    fn remove(&mut self, path: &str, watcher: WatcherId) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(mode) = watchers.remove(&watcher) else {
            return false;
        };
        if watchers.is_empty() {
            self.by_path.remove(path);
        }
        if mode.is_recursive() {
            self.recursive -= 1;
        }
        if let Some(paths) = self.by_watcher.get_mut(&watcher) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_watcher.remove(&watcher);
            }
        }
        true
    }

    fn remove_watcher(&mut self, watcher: WatcherId) {
        for p in self.by_watcher.remove(&watcher).unwrap_or_default() {
            if let Some(watchers) = self.by_path.get_mut(&p) {
                if watchers
                    .remove(&watcher)
                    .is_some_and(WatchMode::is_recursive)
                {
                    self.recursive -= 1;
                }
                if watchers.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    /// Does any watcher hold a watch on `path` here?
    fn watched(&self, path: &str) -> bool {
        self.by_path.get(path).is_some_and(|w| !w.is_empty())
    }

    /// `triggerWatch`: the watchers to notify; standard watches at the path
    /// itself are consumed.
    fn trigger(&mut self, path: &str, event_type: EventType) -> BTreeSet<WatcherId> {
        let mut out = BTreeSet::new();
        let mut consumed = Vec::new();
        let mut at_parent = false;
        let mut local = Some(path.to_owned());
        while let Some(p) = local {
            if let Some(watchers) = self.by_path.get(&p) {
                for (&watcher, &mode) in watchers {
                    if mode.is_recursive() {
                        if event_type != EventType::NodeChildrenChanged {
                            out.insert(watcher);
                        }
                    } else if !at_parent {
                        out.insert(watcher);
                        if mode == WatchMode::Standard {
                            consumed.push(watcher);
                        }
                    }
                }
            }
            if self.recursive == 0 {
                break;
            }
            at_parent = true;
            local = ancestor(&p);
        }
        for watcher in consumed {
            self.remove(path, watcher);
        }
        out
    }

    fn size(&self) -> usize {
        self.by_path.values().map(BTreeMap::len).sum()
    }
}

/// The next path up, ending with "/" (`PathParentIterator`).
fn ancestor(p: &str) -> Option<String> {
    if p == "/" {
        return None;
    }
    let parent = path::parent_of(p)?;
    Some(path::normalize(parent).to_owned())
}

/// The watches of all connections of this server.
#[derive(Debug, Default)]
pub struct WatchManager {
    data: WatchTable,
    child: WatchTable,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// getData / exists with watch=true (exists also on a missing node).
    pub fn watch_data(&mut self, path: &str, watcher: WatcherId) {
        self.data.add(path, watcher, WatchMode::Standard);
    }

    /// getChildren / getChildren2 with watch=true.
    pub fn watch_children(&mut self, path: &str, watcher: WatcherId) {
        self.child.add(path, watcher, WatchMode::Standard);
    }

    /// addWatch: persistent and recursive watches go in both tables.
    pub fn add_persistent(&mut self, path: &str, watcher: WatcherId, recursive: bool) {
        let mode = if recursive {
            WatchMode::PersistentRecursive
        } else {
            WatchMode::Persistent
        };
        self.data.add(path, watcher, mode);
        self.child.add(path, watcher, mode);
    }

    /// checkWatches, as ZooKeeper 3.8 answers it (`WatchManager.containsWatcher`):
    /// "present" when any connection watches the path in that table, not
    /// only the asking one. removeWatches, by contrast, removes only the
    /// asker's own watch.
    pub fn contains(&self, path: &str, table: Table) -> bool {
        match table {
            Table::Data => self.data.watched(path),
            Table::Child => self.child.watched(path),
            Table::Any => self.data.watched(path) || self.child.watched(path),
        }
    }

    /// removeWatches: whatever mode the watch has.
    pub fn remove(&mut self, path: &str, table: Table, watcher: WatcherId) -> bool {
        match table {
            Table::Data => self.data.remove(path, watcher),
            Table::Child => self.child.remove(path, watcher),
            Table::Any => {
                let child = self.child.remove(path, watcher);
                let data = self.data.remove(path, watcher);
                child || data
            }
        }
    }

    /// A connection closed: its watches go with it.
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        self.data.remove_watcher(watcher);
        self.child.remove_watcher(watcher);
    }

    /// The notifications one applied change produces, in ZooKeeper's order.
    pub fn trigger(&mut self, change: &Change) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut push =
            |watchers: BTreeSet<WatcherId>, event_type, path: &str, acl: &Arc<Vec<Acl>>| {
                out.extend(watchers.into_iter().map(|watcher| Notification {
                    watcher,
                    event_type,
                    path: path.to_owned(),
                    acl: acl.clone(),
                }));
            };
        match change {
            Change::Created {
                path,
                acl,
                parent,
                parent_acl,
            } => {
                push(
                    self.data.trigger(path, EventType::NodeCreated),
                    EventType::NodeCreated,
                    path,
                    acl,
                );
                let c = EventType::NodeChildrenChanged;
                push(self.child.trigger(parent, c), c, parent, parent_acl);
            }
            Change::Deleted {
                path,
                acl,
                parent,
                parent_acl,
            } => {
                let d = EventType::NodeDeleted;
                let notified = self.data.trigger(path, d);
                let mut by_child = self.child.trigger(path, d);
                by_child.retain(|w| !notified.contains(w));
                push(notified, d, path, acl);
                push(by_child, d, path, acl);
                let c = EventType::NodeChildrenChanged;
                push(self.child.trigger(parent, c), c, parent, parent_acl);
            }
            Change::DataChanged { path, acl } => {
                let e = EventType::NodeDataChanged;
                push(self.data.trigger(path, e), e, path, acl);
            }
        }
        out
    }

    /// `zk_watch_count`: registrations in both tables.
    pub fn count(&self) -> usize {
        self.data.size() + self.child.size()
    }

    /// For `wchs`/`wchc`/`wchp`, which report the data table only, as
    /// ZooKeeper does: (connections, paths, total watches).
    pub fn data_summary(&self) -> (usize, usize, usize) {
        let total = self.data.by_watcher.values().map(BTreeSet::len).sum();
        (self.data.by_watcher.len(), self.data.by_path.len(), total)
    }

    /// Data-table watches by watcher (`wchc`).
    pub fn data_by_watcher(&self) -> impl Iterator<Item = (&WatcherId, &BTreeSet<String>)> {
        self.data.by_watcher.iter()
    }

    /// Data-table watches by path (`wchp`).
    pub fn data_by_path(
        &self,
    ) -> impl Iterator<Item = (&String, impl Iterator<Item = &WatcherId>)> {
        self.data.by_path.iter().map(|(p, w)| (p, w.keys()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> Arc<Vec<Acl>> {
        Arc::new(Acl::open_unsafe())
    }

    fn created(path: &str, parent: &str) -> Change {
        Change::Created {
            path: path.into(),
            acl: acl(),
            parent: parent.into(),
            parent_acl: acl(),
        }
    }

    fn deleted(path: &str, parent: &str) -> Change {
        Change::Deleted {
            path: path.into(),
            acl: acl(),
            parent: parent.into(),
            parent_acl: acl(),
        }
    }

    fn events(n: &[Notification]) -> Vec<(WatcherId, EventType, &str)> {
        n.iter()
            .map(|n| (n.watcher, n.event_type, n.path.as_str()))
            .collect()
    }

    #[test]
    fn standard_watches_fire_once() {
        let mut w = WatchManager::new();
        w.watch_data("/a", 1);
        let change = Change::DataChanged {
            path: "/a".into(),
            acl: acl(),
        };
        assert_eq!(
            events(&w.trigger(&change)),
            [(1, EventType::NodeDataChanged, "/a")]
        );
        assert!(w.trigger(&change).is_empty());
    }

    #[test]
    fn recursive_watches_see_descendants_but_not_child_lists() {
        let mut w = WatchManager::new();
        w.add_persistent("/a", 7, true);
        let n = w.trigger(&created("/a/b/c", "/a/b"));
        assert_eq!(events(&n), [(7, EventType::NodeCreated, "/a/b/c")]);
        let n = w.trigger(&created("/a/b/c", "/a/b"));
        assert_eq!(n.len(), 1, "recursive watches persist");
    }

    #[test]
    fn delete_notifies_each_watcher_once() {
        let mut w = WatchManager::new();
        w.watch_data("/a", 1);
        w.watch_children("/a", 1);
        w.watch_children("/a", 2);
        w.watch_children("/", 3);
        let n = w.trigger(&deleted("/a", "/"));
        assert_eq!(
            events(&n),
            [
                (1, EventType::NodeDeleted, "/a"),
                (2, EventType::NodeDeleted, "/a"),
                (3, EventType::NodeChildrenChanged, "/"),
            ]
        );
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn later_registration_replaces_the_mode() {
        let mut w = WatchManager::new();
        w.add_persistent("/a", 1, false);
        w.watch_data("/a", 1);
        let change = Change::DataChanged {
            path: "/a".into(),
            acl: acl(),
        };
        assert_eq!(w.trigger(&change).len(), 1);
        assert!(
            w.trigger(&change).is_empty(),
            "the data-table watch became one-shot"
        );
    }

    #[test]
    fn closing_a_connection_drops_its_watches() {
        let mut w = WatchManager::new();
        w.add_persistent("/a", 1, true);
        w.watch_children("/b", 1);
        w.remove_watcher(1);
        assert_eq!(w.count(), 0);
        assert!(w.trigger(&created("/a/x", "/a")).is_empty());
    }
}
