//! WatchManager tables: which registrations fire for which change, with
//! ZooKeeper 3.8.4's rules (`watch/WatchManager.java`,
//! `WatcherModeManager.java`, `PathParentIterator.java`, and the trigger
//! calls in `DataTree.createNode` / `deleteNode` / `setData`).
//!
//! Notifications are compared per watcher, in order: ZooKeeper's order
//! between connections is a HashSet's, but each connection must hear a
//! node's own event before its parent's NodeChildrenChanged.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::{Acl, EventType, perms};
use tree::{Change, Notification, Table, WatchManager, WatcherId};

use support::*;

use EventType::{
    NodeChildrenChanged as Kids, NodeCreated as Made, NodeDataChanged as Set, NodeDeleted as Gone,
};

fn parent(path: &str) -> String {
    tree::path::normalize(tree::path::parent_of(path).expect("absolute path")).to_owned()
}

fn open_acl() -> Arc<Vec<Acl>> {
    Arc::new(open())
}

fn created(path: &str) -> Change {
    Change::Created {
        path: path.into(),
        acl: open_acl(),
        parent: parent(path),
        parent_acl: open_acl(),
    }
}

fn deleted(path: &str) -> Change {
    Change::Deleted {
        path: path.into(),
        acl: open_acl(),
        parent: parent(path),
        parent_acl: open_acl(),
    }
}

fn data(path: &str) -> Change {
    Change::DataChanged {
        path: path.into(),
        acl: open_acl(),
    }
}

#[derive(Debug)]
enum S {
    /// getData / exists with watch=true.
    Data(&'static str, WatcherId),
    /// getChildren with watch=true.
    Child(&'static str, WatcherId),
    /// addWatch PERSISTENT.
    Persistent(&'static str, WatcherId),
    /// addWatch PERSISTENT_RECURSIVE.
    Recursive(&'static str, WatcherId),
    /// Trigger a change; these notifications (per watcher, in order) must result.
    Fire(Change, Vec<(WatcherId, EventType, &'static str)>),
    Contains(&'static str, Table, WatcherId, bool),
    Remove(&'static str, Table, WatcherId, bool),
    RemoveWatcher(WatcherId),
    Count(usize),
}

use S::*;

type Events = BTreeMap<WatcherId, Vec<(EventType, String)>>;

fn by_watcher(n: &[Notification]) -> Events {
    let mut out = Events::new();
    for n in n {
        out.entry(n.watcher)
            .or_default()
            .push((n.event_type, n.path.clone()));
    }
    out
}

fn expected(e: &[(WatcherId, EventType, &str)]) -> Events {
    let mut out = Events::new();
    for (w, t, p) in e {
        out.entry(*w).or_default().push((*t, (*p).to_owned()));
    }
    out
}

fn run_watch_table(cases: Vec<(&'static str, Vec<S>)>) {
    for (name, steps) in cases {
        let mut w = WatchManager::new();
        for (i, step) in steps.iter().enumerate() {
            let ctx = || format!("case `{name}`, step {i}: {step:?}");
            match step {
                Data(p, id) => w.watch_data(p, *id),
                Child(p, id) => w.watch_children(p, *id),
                Persistent(p, id) => w.add_persistent(p, *id, false),
                Recursive(p, id) => w.add_persistent(p, *id, true),
                Fire(change, events) => {
                    let got = w.trigger(change);
                    assert_eq!(by_watcher(&got), expected(events), "{}", ctx());
                }
                Contains(p, table, id, want) => {
                    let _ = id;
                    assert_eq!(w.contains(p, *table), *want, "{}", ctx());
                }
                Remove(p, table, id, want) => {
                    assert_eq!(w.remove(p, *table, *id), *want, "{}", ctx());
                }
                RemoveWatcher(id) => w.remove_watcher(*id),
                Count(n) => assert_eq!(w.count(), *n, "{}", ctx()),
            }
        }
    }
}

fn standard_cases() -> Vec<(&'static str, Vec<S>)> {
    vec![
        (
            "data watch (exists on a missing node): NodeCreated, once",
            vec![
                Data("/a", 1),
                Count(1),
                Fire(created("/a"), vec![(1, Made, "/a")]),
                Fire(created("/a"), vec![]),
                Count(0),
            ],
        ),
        (
            "data watch: NodeDataChanged",
            vec![
                Data("/a", 1),
                Fire(data("/a"), vec![(1, Set, "/a")]),
                Fire(data("/a"), vec![]),
            ],
        ),
        (
            "data watch: NodeDeleted",
            vec![
                Data("/a", 1),
                Fire(deleted("/a"), vec![(1, Gone, "/a")]),
                Count(0),
            ],
        ),
        (
            "data watch: not for children",
            vec![
                Data("/a", 1),
                Fire(created("/a/b"), vec![]),
                Fire(deleted("/a/b"), vec![]),
                Fire(data("/a/b"), vec![]),
                Count(1),
            ],
        ),
        (
            "child watch: NodeChildrenChanged on child create and delete",
            vec![
                Child("/a", 1),
                Fire(created("/a/b"), vec![(1, Kids, "/a")]),
                Fire(created("/a/c"), vec![]),
                Child("/a", 1),
                Fire(deleted("/a/b"), vec![(1, Kids, "/a")]),
                Count(0),
            ],
        ),
        (
            "child watch: NodeDeleted when the node itself goes",
            vec![
                Child("/a", 1),
                Fire(deleted("/a"), vec![(1, Gone, "/a")]),
                Count(0),
            ],
        ),
        (
            "child watch: not for the node's creation, data, or grandchildren",
            vec![
                Child("/a", 1),
                Fire(created("/a"), vec![]),
                Fire(data("/a"), vec![]),
                Fire(created("/a/b/c"), vec![]),
                Fire(data("/a/b"), vec![]),
                Count(1),
            ],
        ),
        (
            "child watch on the root is keyed `/`",
            vec![Child("/", 1), Fire(created("/a"), vec![(1, Kids, "/")])],
        ),
        (
            "watches on other paths do not fire (no prefix matching)",
            vec![
                Data("/ab", 1),
                Data("/a/b", 2),
                Child("/ab", 3),
                Fire(data("/a"), vec![]),
                Fire(created("/a"), vec![]),
                Fire(deleted("/a"), vec![]),
                Count(3),
            ],
        ),
        (
            "delete: one NodeDeleted per connection, then the parent's NodeChildrenChanged",
            vec![
                Data("/a", 1),
                Child("/a", 1),
                Child("/a", 2),
                Child("/", 3),
                Data("/", 3),
                Child("/", 1),
                Fire(
                    deleted("/a"),
                    vec![
                        (1, Gone, "/a"),
                        (1, Kids, "/"),
                        (2, Gone, "/a"),
                        (3, Kids, "/"),
                    ],
                ),
                Count(1),
            ],
        ),
        (
            "create: NodeCreated before the parent's NodeChildrenChanged",
            vec![
                Data("/a", 1),
                Child("/", 1),
                Fire(created("/a"), vec![(1, Made, "/a"), (1, Kids, "/")]),
            ],
        ),
        (
            "several watchers on one path, each notified once",
            vec![
                Data("/a", 1),
                Data("/a", 2),
                Data("/a", 1),
                Count(2),
                Fire(data("/a"), vec![(1, Set, "/a"), (2, Set, "/a")]),
                Count(0),
            ],
        ),
    ]
}

fn persistent_cases() -> Vec<(&'static str, Vec<S>)> {
    vec![
        (
            "persistent: data and child events on the path itself, and it stays",
            vec![
                Persistent("/a", 1),
                Count(2),
                Fire(data("/a"), vec![(1, Set, "/a")]),
                Fire(data("/a"), vec![(1, Set, "/a")]),
                Fire(created("/a/b"), vec![(1, Kids, "/a")]),
                Fire(deleted("/a/b"), vec![(1, Kids, "/a")]),
                Fire(created("/a/b/c"), vec![]),
                Fire(data("/a/b"), vec![]),
                Fire(deleted("/a"), vec![(1, Gone, "/a")]),
                Count(2),
                Fire(created("/a"), vec![(1, Made, "/a")]),
            ],
        ),
        (
            "recursive: the path and every descendant, never NodeChildrenChanged",
            vec![
                Recursive("/a", 1),
                Count(2),
                Fire(created("/a"), vec![(1, Made, "/a")]),
                Fire(created("/a/b"), vec![(1, Made, "/a/b")]),
                Fire(created("/a/b/c"), vec![(1, Made, "/a/b/c")]),
                Fire(data("/a/b"), vec![(1, Set, "/a/b")]),
                Fire(deleted("/a/b/c"), vec![(1, Gone, "/a/b/c")]),
                Fire(deleted("/a"), vec![(1, Gone, "/a")]),
                Fire(created("/ab"), vec![]),
                Fire(data("/"), vec![]),
                Count(2),
            ],
        ),
        (
            "recursive on the root hears every node",
            vec![
                Recursive("/", 1),
                Fire(created("/x/y"), vec![(1, Made, "/x/y")]),
                Fire(
                    data("/zookeeper/config"),
                    vec![(1, Set, "/zookeeper/config")],
                ),
                Fire(data("/"), vec![(1, Set, "/")]),
                Fire(created("/x"), vec![(1, Made, "/x")]),
            ],
        ),
        (
            "recursive plus a standard watch below it: one event, the standard one consumed",
            vec![
                Recursive("/a", 1),
                Data("/a/b", 1),
                Child("/a/b", 2),
                Count(4),
                Fire(data("/a/b"), vec![(1, Set, "/a/b")]),
                Contains("/a/b", Table::Data, 1, false),
                Fire(deleted("/a/b"), vec![(1, Gone, "/a/b"), (2, Gone, "/a/b")]),
                Count(2),
            ],
        ),
        (
            "standard and persistent watches on an ancestor do not fire for descendants",
            vec![
                // A recursive watch elsewhere makes the trigger walk up the path.
                Recursive("/z", 9),
                Data("/a", 1),
                Persistent("/p", 2),
                Fire(data("/a/b"), vec![]),
                Fire(created("/a/b"), vec![]),
                Fire(created("/p/b/c"), vec![]),
                Fire(created("/p/b"), vec![(2, Kids, "/p")]),
                Contains("/a", Table::Data, 1, true),
            ],
        ),
        (
            "3.8 mode replacement: persistent, then a standard data watch",
            vec![
                Persistent("/a", 1),
                Data("/a", 1),
                Count(2),
                Fire(data("/a"), vec![(1, Set, "/a")]),
                Fire(data("/a"), vec![]),
                Count(1),
                // The child table kept its persistent watch.
                Fire(created("/a/b"), vec![(1, Kids, "/a")]),
                Fire(created("/a/c"), vec![(1, Kids, "/a")]),
            ],
        ),
        (
            "3.8 mode replacement: standard, then persistent",
            vec![
                Data("/a", 1),
                Persistent("/a", 1),
                Count(2),
                Fire(data("/a"), vec![(1, Set, "/a")]),
                Fire(data("/a"), vec![(1, Set, "/a")]),
            ],
        ),
        (
            "3.8 mode replacement: recursive, then a standard data watch",
            vec![
                Recursive("/a", 1),
                Data("/a", 1),
                // The data table no longer walks for this watcher...
                Fire(data("/a/b"), vec![]),
                Fire(created("/a/b"), vec![]),
                // ...but the child table's recursive copy still hears deletes.
                Fire(deleted("/a/b"), vec![(1, Gone, "/a/b")]),
                Fire(data("/a"), vec![(1, Set, "/a")]),
                Fire(data("/a"), vec![]),
                Count(1),
            ],
        ),
        (
            "3.8 mode replacement: recursive, then persistent",
            vec![
                Recursive("/a", 1),
                Persistent("/a", 1),
                Fire(created("/a/b/c"), vec![]),
                Fire(created("/a/b"), vec![(1, Kids, "/a")]),
                Count(2),
            ],
        ),
    ]
}

fn removal_cases() -> Vec<(&'static str, Vec<S>)> {
    vec![
        (
            "contains and remove address one table",
            vec![
                Data("/a", 1),
                Child("/b", 1),
                Contains("/a", Table::Data, 1, true),
                Contains("/a", Table::Child, 1, false),
                Contains("/a", Table::Any, 1, true),
                Contains("/b", Table::Data, 1, false),
                Contains("/b", Table::Child, 1, true),
                Contains("/b", Table::Any, 1, true),
                Contains("/c", Table::Any, 1, false),
                Remove("/a", Table::Child, 1, false),
                Remove("/a", Table::Data, 1, true),
                Remove("/a", Table::Data, 1, false),
                Remove("/b", Table::Any, 1, true),
                Remove("/b", Table::Any, 1, false),
                Count(0),
                Fire(data("/a"), vec![]),
            ],
        ),
        (
            // ZooKeeper 3.8's containsWatcher answers for any connection; the
            // tree deliberately answers for the asking one (see watch.rs).
            // ZooKeeper 3.8's `containsWatcher` answers for the path, whoever
            // watches it; removal takes only the asker's own watch.
            "checkWatches sees any connection's watch, removeWatches only the asker's",
            vec![
                Data("/a", 1),
                Contains("/a", Table::Data, 2, true),
                Contains("/a", Table::Child, 2, false),
                Remove("/a", Table::Data, 2, false),
                Remove("/a", Table::Any, 2, false),
                Count(1),
                Fire(data("/a"), vec![(1, Set, "/a")]),
            ],
        ),
        (
            "remove Any takes a persistent watch out of both tables",
            vec![
                Persistent("/a", 1),
                Contains("/a", Table::Data, 1, true),
                Contains("/a", Table::Child, 1, true),
                Remove("/a", Table::Any, 1, true),
                Count(0),
                Fire(data("/a"), vec![]),
                Fire(created("/a/b"), vec![]),
            ],
        ),
        (
            "removing one table of a persistent watch leaves the other",
            vec![
                Persistent("/a", 1),
                Remove("/a", Table::Data, 1, true),
                Count(1),
                Fire(data("/a"), vec![]),
                Fire(created("/a/b"), vec![(1, Kids, "/a")]),
                Fire(deleted("/a"), vec![(1, Gone, "/a")]),
            ],
        ),
        (
            "removing a recursive watch stops descendant events",
            vec![
                Recursive("/a", 1),
                Remove("/a", Table::Any, 1, true),
                Count(0),
                Fire(created("/a/b"), vec![]),
                Fire(deleted("/a/b"), vec![]),
            ],
        ),
        (
            "contains is exact: not true for descendants of a recursive watch",
            vec![
                Recursive("/a", 1),
                Contains("/a", Table::Data, 1, true),
                Contains("/a", Table::Child, 1, true),
                Contains("/a/b", Table::Data, 1, false),
                Contains("/a/b", Table::Any, 1, false),
                Remove("/a/b", Table::Any, 1, false),
            ],
        ),
        (
            "a fired standard watch is gone",
            vec![
                Data("/a", 1),
                Child("/a", 1),
                Fire(data("/a"), vec![(1, Set, "/a")]),
                Contains("/a", Table::Data, 1, false),
                Contains("/a", Table::Child, 1, true),
                Remove("/a", Table::Data, 1, false),
            ],
        ),
        (
            "remove_watcher drops one connection's watches only",
            vec![
                Data("/a", 1),
                Child("/a", 1),
                Recursive("/r", 1),
                Persistent("/p", 1),
                Data("/a", 2),
                Count(7),
                RemoveWatcher(1),
                Count(1),
                Fire(data("/a"), vec![(2, Set, "/a")]),
                Fire(created("/r/x"), vec![]),
                Fire(created("/p/x"), vec![]),
                RemoveWatcher(99),
                RemoveWatcher(1),
                Count(0),
            ],
        ),
    ]
}

#[test]
fn standard_watch_table() {
    run_watch_table(standard_cases());
}

#[test]
fn persistent_watch_table() {
    run_watch_table(persistent_cases());
}

#[test]
fn removal_table() {
    run_watch_table(removal_cases());
}

#[test]
fn notifications_carry_the_acl_the_delivery_filter_checks() {
    let node_acl = Arc::new(world(perms::READ));
    let parent_acl = Arc::new(world(perms::ALL));
    let mut w = WatchManager::new();
    let register = |w: &mut WatchManager| {
        w.watch_data("/p/a", 1);
        w.watch_children("/p", 2);
    };
    let acls = |n: &[Notification]| -> Vec<(WatcherId, Arc<Vec<Acl>>)> {
        n.iter().map(|n| (n.watcher, n.acl.clone())).collect()
    };
    register(&mut w);
    let change = Change::Created {
        path: "/p/a".into(),
        acl: node_acl.clone(),
        parent: "/p".into(),
        parent_acl: parent_acl.clone(),
    };
    assert_eq!(
        acls(&w.trigger(&change)),
        [(1, node_acl.clone()), (2, parent_acl.clone())]
    );
    register(&mut w);
    let change = Change::Deleted {
        path: "/p/a".into(),
        acl: node_acl.clone(),
        parent: "/p".into(),
        parent_acl: parent_acl.clone(),
    };
    assert_eq!(
        acls(&w.trigger(&change)),
        [(1, node_acl.clone()), (2, parent_acl)]
    );
    register(&mut w);
    let change = Change::DataChanged {
        path: "/p/a".into(),
        acl: node_acl.clone(),
    };
    assert_eq!(acls(&w.trigger(&change)), [(1, node_acl)]);
}

#[test]
fn data_table_summary() {
    let mut w = WatchManager::new();
    w.watch_data("/a", 1);
    w.watch_data("/b", 1);
    w.watch_data("/a", 2);
    w.watch_children("/c", 3);
    // (connections, paths, watches) of the data table only, as `wchs` reports.
    assert_eq!(w.data_summary(), (2, 2, 3));
    assert_eq!(w.count(), 4);
    let by_path: BTreeMap<String, Vec<WatcherId>> = w
        .data_by_path()
        .map(|(p, ws)| (p.clone(), ws.copied().collect()))
        .collect();
    assert_eq!(
        by_path,
        BTreeMap::from([("/a".into(), vec![1, 2]), ("/b".into(), vec![1])])
    );
}

/// End to end: changes from `apply` fed to the watch manager, as the server
/// does after each committed transaction.
#[test]
fn applied_changes_fire_watches() {
    let mut h = Harness::new(tree::Features::default());
    let mut w = WatchManager::new();
    w.watch_data("/a", 1); // exists("/a", watch) on a missing node
    w.watch_children("/", 2);
    w.add_persistent("/a", 3, true);
    let fire = |w: &mut WatchManager, changes: &[Change]| -> Vec<(WatcherId, EventType, String)> {
        changes
            .iter()
            .flat_map(|c| w.trigger(c))
            .map(|n| (n.watcher, n.event_type, n.path))
            .collect()
    };

    let (_, applied) = h.write(S1, &multi(vec![m::create("/a", 0), m::create("/a/b", 0)]));
    let mut events = fire(&mut w, &applied.changes);
    events.sort();
    assert_eq!(
        events,
        [
            (1, Made, "/a".to_owned()),
            (2, Kids, "/".to_owned()),
            (3, Made, "/a".to_owned()),
            (3, Made, "/a/b".to_owned()),
        ]
    );

    // A failed write fires nothing.
    let (_, applied) = h.write(S1, &create("/a", b"", 0));
    assert!(applied.changes.is_empty());

    // setACL fires nothing; setData fires the data watches.
    let (_, applied) = h.write(S1, &set_acl("/a/b", open(), -1));
    assert!(applied.changes.is_empty());
    let (_, applied) = h.write(S1, &set_data("/a/b", b"x", -1));
    assert_eq!(
        fire(&mut w, &applied.changes),
        [(3, Set, "/a/b".to_owned())]
    );

    // closeSession deletes ephemerals with the usual events.
    w.watch_children("/a", 4);
    let (_, applied) = h.write(S2, &create("/a/e", b"", flags::EPHEMERAL));
    assert_eq!(
        fire(&mut w, &applied.changes),
        [(3, Made, "/a/e".to_owned()), (4, Kids, "/a".to_owned())]
    );
    w.watch_children("/a", 4);
    let (_, applied) = h.write(S2, &close_session());
    assert_eq!(
        fire(&mut w, &applied.changes),
        [(3, Gone, "/a/e".to_owned()), (4, Kids, "/a".to_owned())]
    );
}
