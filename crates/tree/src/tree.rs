//! The data tree: every znode by path, plus the indexes ZooKeeper keeps
//! beside it (ephemerals per session, containers, TTL nodes) and the global
//! session table. It changes only through [`crate::apply`]; everything here
//! is lookup.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proto::{Acl, Stat};

use crate::node::{Node, StatPersisted, owner};
use crate::path;

/// The special paths ZooKeeper creates and protects.
pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// A global session as the replicated state knows it. Liveness (when it was
/// last heard from) is the server's business, not the tree's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub timeout_ms: i32,
    pub password: Vec<u8>,
}

/// Why stored records do not form a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the root node is missing")]
    MissingRoot,
    #[error("node {0} has no parent")]
    Orphan(String),
    #[error("node {0} is out of path order")]
    OutOfOrder(String),
}

/// Znodes by path. foldhash instead of the standard SipHash: hashing paths
/// was the largest single cost of loading a million znodes at restart, and
/// foldhash is still seeded per process, so clients cannot choose colliding
/// paths in advance.
///
/// The nodes are boxed: the map grows by doubling, so after a growth
/// about half its slots are empty, and an empty slot costs its size — 24
/// bytes (the key's header and a pointer) instead of 144 with the node
/// inline. Keys are `Box<str>`, not `String` (16 bytes, not 24: a path
/// never grows). `examples/znode_memory.rs` measures it.
type NodeMap = HashMap<Box<str>, Box<Node>, foldhash::fast::RandomState>;

/// The replicated state: znodes and sessions, and the last zxid applied.
#[derive(Debug, Clone)]
pub struct DataTree {
    nodes: NodeMap,
    /// Session id -> paths of its ephemerals.
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    sessions: BTreeMap<i64, SessionRecord>,
    last_zxid: i64,
    /// Sum of path lengths and data lengths (`approximateDataSize`).
    data_size: i64,
    /// Every distinct ACL list once (ZooKeeper's `ReferenceCountedACLCache`):
    /// nodes share it instead of carrying their own copy, which cost about
    /// 176 bytes per znode (`examples/znode_memory.rs`).
    acls: AclTable,
}

/// The distinct ACL lists of a tree.
#[derive(Debug, Clone, Default)]
struct AclTable {
    by_value: HashMap<Vec<Acl>, Arc<Vec<Acl>>, foldhash::fast::RandomState>,
    /// The table is purged of lists no node holds when it reaches this size.
    purge_at: usize,
    /// The list returned last: a tree loaded from a store or an image
    /// brings the same shared list node after node (`storage::codec`'s
    /// `SharedAcl`), which is then found without hashing it.
    last: Option<Arc<Vec<Acl>>>,
}

impl AclTable {
    /// The shared copy of `acl`.
    fn intern(&mut self, acl: Arc<Vec<Acl>>) -> Arc<Vec<Acl>> {
        if let Some(last) = &self.last
            && Arc::ptr_eq(last, &acl)
        {
            return acl;
        }
        let shared = self.lookup(acl);
        self.last = Some(shared.clone());
        shared
    }

    fn lookup(&mut self, acl: Arc<Vec<Acl>>) -> Arc<Vec<Acl>> {
        if let Some(shared) = self.by_value.get(acl.as_slice()) {
            return shared.clone();
        }
        if self.by_value.len() >= self.purge_at {
            self.by_value.retain(|_, a| Arc::strong_count(a) > 1);
            self.purge_at = (self.by_value.len() * 2).max(64);
        }
        self.by_value.insert(acl.as_ref().clone(), acl.clone());
        acl
    }
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and
    /// `/zookeeper/config`, all with zeroed Stat (`DataTree()` and
    /// `addConfigNode`). The config node is world-readable only and reports
    /// aversion -1.
    pub fn new() -> Self {
        let open = Arc::new(Acl::open_unsafe());
        let mut tree = DataTree::empty();
        let empty = || Some(Vec::new());
        let mut root = Node::new(empty(), open.clone(), StatPersisted::default());
        root.children.insert("zookeeper");
        let mut zk = Node::new(empty(), open.clone(), StatPersisted::default());
        zk.children.insert("quota");
        zk.children.insert("config");
        let quota = Node::new(empty(), open, StatPersisted::default());
        let config_stat = StatPersisted {
            aversion: -1,
            ..StatPersisted::default()
        };
        let config = Node::new(empty(), Arc::new(Acl::read_unsafe()), config_stat);
        for (p, node) in [
            ("/", root),
            (ZOOKEEPER, zk),
            (QUOTA, quota),
            (CONFIG, config),
        ] {
            tree.insert_node(p.to_owned(), node);
        }
        tree
    }

    /// An empty tree (no node at all yet), for [`DataTree::new`] and
    /// [`TreeBuilder`].
    fn empty() -> DataTree {
        DataTree {
            nodes: NodeMap::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            sessions: BTreeMap::new(),
            last_zxid: 0,
            data_size: 0,
            acls: AclTable::default(),
        }
    }

    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path::normalize(path)).map(|n| &**n)
    }

    pub(crate) fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        self.nodes.get_mut(path::normalize(path)).map(|n| &mut **n)
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.node(path).map(Node::stat)
    }

    pub fn exists(&self, path: &str) -> bool {
        self.node(path).is_some()
    }

    /// Deletion of these is refused with BadArguments (`isSpecialPath`).
    pub fn is_special_path(path: &str) -> bool {
        matches!(path, "/" | ZOOKEEPER | QUOTA | CONFIG)
    }

    /// The node count `srvr` and `mntr` report. ZooKeeper's map holds the
    /// root twice (as `""` and `"/"`), so a fresh server says 5.
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    /// `getAllChildrenNumber`: every descendant of `path`.
    pub fn all_children_number(&self, path: &str) -> usize {
        if path == "/" {
            // Every node but the root (the doubled root cancels out).
            return self.nodes.len() - 1;
        }
        let Some(node) = self.node(path) else {
            return 0;
        };
        let mut count = 0;
        let mut stack: Vec<String> = node
            .children
            .iter()
            .map(|c| path::join(path::normalize(path), c))
            .collect();
        while let Some(p) = stack.pop() {
            count += 1;
            if let Some(n) = self.nodes.get(p.as_str()) {
                stack.extend(n.children.iter().map(|c| path::join(&p, c)));
            }
        }
        // ZooKeeper matches keys by prefix `path + "/"`; for "" that is "/",
        // which also matches the root's "/" key.
        if path.is_empty() { count + 1 } else { count }
    }

    /// The ephemerals a session owns, sorted.
    pub fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session_id).into_iter().flatten()
    }

    /// All sessions with ephemerals, for `dump`.
    pub fn ephemerals_by_session(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    pub fn containers(&self) -> &BTreeSet<String> {
        &self.containers
    }

    pub fn ttls(&self) -> &BTreeSet<String> {
        &self.ttls
    }

    pub fn sessions(&self) -> &BTreeMap<i64, SessionRecord> {
        &self.sessions
    }

    pub fn session(&self, session_id: i64) -> Option<&SessionRecord> {
        self.sessions.get(&session_id)
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Every node with its path, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(path, node)| (&**path, &**node))
    }

    /// Records that a log entry without a transaction (a new leader's
    /// first entry) was applied at `zxid`: as ZooKeeper's new epoch, it
    /// becomes the last processed zxid. Never goes back.
    pub fn advance_zxid(&mut self, zxid: i64) {
        self.set_last_zxid(zxid);
    }

    pub fn approximate_data_size(&self) -> i64 {
        self.data_size
    }

    /// Containers and TTL nodes that are due for deletion at `now_ms`
    /// (`ContainerManager.getCandidates`): an empty container that once had
    /// a child (or, with `max_never_used_ms` != 0, one never used for that
    /// long), and an empty TTL node whose mtime is older than its TTL.
    pub fn reap_candidates(&self, now_ms: i64, max_never_used_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.containers {
            let Some(node) = self.nodes.get(p.as_str()) else {
                continue;
            };
            if !node.children.is_empty() {
                continue;
            }
            let used = node.stat.cversion > 0;
            // `ContainerManager.getCandidates` tests `maxNeverUsedIntervalMs != 0`,
            // so a negative interval reaps never-used containers at once.
            let never_used_expired =
                max_never_used_ms != 0 && now_ms - node.stat.mtime > max_never_used_ms;
            if used || never_used_expired {
                out.push(p.clone());
            }
        }
        for p in &self.ttls {
            let Some(node) = self.nodes.get(p.as_str()) else {
                continue;
            };
            if !node.children.is_empty() {
                continue;
            }
            if let owner::Kind::Ttl(ttl) = owner::kind(node.stat.ephemeral_owner)
                && ttl != 0
                && now_ms - node.stat.mtime > ttl
            {
                out.push(p.clone());
            }
        }
        out
    }

    // --- mutation, used only by `apply` ---------------------------------

    /// `DataTree.getNodeSize`: Java's `path.length()`, i.e. UTF-16 code
    /// units (not UTF-8 bytes), plus the data length.
    fn node_size(path: &str, node: &Node) -> i64 {
        i64::try_from(path.encode_utf16().count()).unwrap_or(i64::MAX) + i64::from(node.data_len())
    }

    pub(crate) fn insert_node(&mut self, path: String, mut node: Node) {
        node.acl = self.acls.intern(node.acl);
        self.data_size += Self::node_size(&path, &node);
        match owner::kind(node.stat.ephemeral_owner) {
            owner::Kind::Void => {}
            owner::Kind::Normal(session) => {
                self.ephemerals
                    .entry(session)
                    .or_default()
                    .insert(path.clone());
            }
            owner::Kind::Container => {
                self.containers.insert(path.clone());
            }
            owner::Kind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
        }
        self.nodes.insert(path.into_boxed_str(), Box::new(node));
    }

    pub(crate) fn remove_node(&mut self, path: &str) -> Option<Node> {
        let node = *self.nodes.remove(path)?;
        self.data_size -= Self::node_size(path, &node);
        match owner::kind(node.stat.ephemeral_owner) {
            owner::Kind::Void => {}
            owner::Kind::Normal(session) => {
                if let Some(set) = self.ephemerals.get_mut(&session) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
            owner::Kind::Container => {
                self.containers.remove(path);
            }
            owner::Kind::Ttl(_) => {
                self.ttls.remove(path);
            }
        }
        Some(node)
    }

    /// The shared copy of an ACL list, for a node whose ACL changes.
    pub(crate) fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        self.acls.intern(Arc::new(acl))
    }

    pub(crate) fn set_data(&mut self, path: &str, data: Option<Vec<u8>>) -> Option<&mut Node> {
        let node = self.nodes.get_mut(path::normalize(path))?;
        let old = i64::from(node.data_len());
        node.data = data;
        self.data_size += i64::from(node.data_len()) - old;
        Some(node)
    }

    pub(crate) fn sessions_mut(&mut self) -> &mut BTreeMap<i64, SessionRecord> {
        &mut self.sessions
    }

    pub(crate) fn set_last_zxid(&mut self, zxid: i64) {
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tree_matches_zookeeper() {
        let tree = DataTree::new();
        assert_eq!(tree.node_count(), 5);
        assert_eq!(tree.stat("/").unwrap().cversion, -1);
        assert_eq!(tree.stat("/zookeeper").unwrap().cversion, -2);
        assert_eq!(tree.stat("/zookeeper/config").unwrap().aversion, -1);
        assert_eq!(tree.all_children_number("/"), 3);
        assert_eq!(tree.all_children_number("/zookeeper"), 2);
        assert!(tree.stat("").is_some());
    }

    /// Nodes with equal lists share one, whether they bring the list
    /// that was interned last (a load's shared list), another copy of it,
    /// or a list seen before another.
    #[test]
    fn equal_acl_lists_are_shared() {
        let open = Arc::new(Acl::open_unsafe());
        let read = Arc::new(Acl::read_unsafe());
        let mut builder = TreeBuilder::new();
        let mut push = |path: &str, acl: &Arc<Vec<Acl>>| {
            let node = Node::new(None, acl.clone(), StatPersisted::default());
            builder.push(path.to_owned(), node).unwrap();
        };
        push("/", &open);
        push("/a", &open);
        push("/b", &Arc::new(Acl::open_unsafe()));
        push("/c", &read);
        push("/d", &Arc::new(Acl::open_unsafe()));
        push("/e", &Arc::new(Acl::read_unsafe()));
        let tree = builder.finish(Vec::new(), 0).unwrap();
        let acl = |path: &str| tree.node(path).unwrap().acl.clone();
        for path in ["/a", "/b", "/d"] {
            assert!(Arc::ptr_eq(&acl("/"), &acl(path)), "{path}");
        }
        assert!(Arc::ptr_eq(&acl("/c"), &acl("/e")));
        assert!(!Arc::ptr_eq(&acl("/"), &acl("/c")));
        assert_eq!(tree.acls.by_value.len(), 2);
    }
}

/// Rebuilds a tree from stored node records (what a store loads, what an
/// image streams), which come in path order, each after its parent:
/// children and the ephemeral/container/TTL indexes are derived from the
/// paths and owners as each node is inserted, so the tree is ready the
/// moment the last one arrives. Refuses records that are not a tree
/// (out of order, an orphan, no root).
#[derive(Debug)]
pub struct TreeBuilder {
    tree: DataTree,
    /// The previous node's path (a buffer reused: no allocation per node).
    last: String,
}

impl Default for TreeBuilder {
    fn default() -> Self {
        TreeBuilder::new()
    }
}

impl TreeBuilder {
    pub fn new() -> TreeBuilder {
        TreeBuilder::with_capacity(0)
    }

    /// For about `nodes` nodes (the map is sized once).
    pub fn with_capacity(nodes: usize) -> TreeBuilder {
        let mut tree = DataTree::empty();
        tree.nodes.reserve(nodes);
        TreeBuilder {
            tree,
            last: String::new(),
        }
    }

    /// The next node; refused if it is not after the previous one in path
    /// order or its parent is not there.
    pub fn push(&mut self, path: String, mut node: Node) -> Result<(), RestoreError> {
        if !self.tree.nodes.is_empty() && self.last.as_str() >= path.as_str() {
            return Err(RestoreError::OutOfOrder(path));
        }
        node.children.clear();
        if path != "/" {
            let parent = path::parent_of(&path).map(path::normalize).unwrap_or("");
            let name = path::name_of(&path);
            match self.tree.nodes.get_mut(parent) {
                Some(parent_node) => {
                    parent_node.children.insert(name);
                }
                None => return Err(RestoreError::Orphan(path)),
            }
        }
        self.last.clear();
        self.last.push_str(&path);
        self.tree.insert_node(path, node);
        Ok(())
    }

    /// The tree, with its sessions and last zxid.
    pub fn finish(
        self,
        sessions: impl IntoIterator<Item = (i64, SessionRecord)>,
        last_zxid: i64,
    ) -> Result<DataTree, RestoreError> {
        let mut tree = self.tree;
        if !tree.nodes.contains_key("/") {
            return Err(RestoreError::MissingRoot);
        }
        tree.sessions = sessions.into_iter().collect();
        tree.last_zxid = last_zxid;
        Ok(tree)
    }
}
