//! The model's state: the znodes of one partition that exist, by path.
//!
//! The search clones, hashes and compares states at every step and keeps
//! one per memoized configuration, so this is built for that: the map is
//! shared and copied only when a write changes it (`Arc::make_mut`), and
//! the hash is kept up to date as an XOR of one hash per node, so hashing
//! a state costs one word however many nodes it holds (Zobrist hashing).
//! Equal hashes still compare the maps.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use crate::models::data::Data;

/// One znode as the model sees it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Znode {
    pub data: Data,
    /// ZooKeeper's `dataVersion`.
    pub version: i32,
}

impl fmt::Debug for Znode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} v{}", self.data, self.version)
    }
}

/// The znodes of one partition that exist, by path.
#[derive(Clone, Default)]
pub struct Znodes {
    nodes: Arc<BTreeMap<Arc<str>, Znode>>,
    /// The XOR of [`node_hash`] over the nodes.
    fingerprint: u64,
}

impl Znodes {
    /// The node at `path`, if it exists.
    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path)
    }

    /// The nodes, by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Znode)> {
        self.nodes.iter().map(|(path, node)| (&**path, node))
    }

    /// Creates or replaces the node at `path`.
    pub(crate) fn put(&mut self, path: &str, node: Znode) {
        self.fingerprint ^= node_hash(path, &node);
        let nodes = Arc::make_mut(&mut self.nodes);
        match nodes.get_mut(path) {
            Some(old) => {
                self.fingerprint ^= node_hash(path, old);
                *old = node;
            }
            None => {
                nodes.insert(Arc::from(path), node);
            }
        }
    }

    /// Removes the node at `path`, if any.
    pub(crate) fn remove(&mut self, path: &str) {
        if let Some(old) = Arc::make_mut(&mut self.nodes).remove(path) {
            self.fingerprint ^= node_hash(path, &old);
        }
    }
}

impl FromIterator<(String, Znode)> for Znodes {
    fn from_iter<T: IntoIterator<Item = (String, Znode)>>(nodes: T) -> Self {
        let mut state = Znodes::default();
        for (path, node) in nodes {
            state.put(&path, node);
        }
        state
    }
}

impl PartialEq for Znodes {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
            && (Arc::ptr_eq(&self.nodes, &other.nodes) || self.nodes == other.nodes)
    }
}

impl Eq for Znodes {}

impl Hash for Znodes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint);
    }
}

impl fmt::Debug for Znodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.nodes.iter()).finish()
    }
}

/// A node's contribution to its state's hash. `DefaultHasher::new` has
/// fixed keys, so the hash is the same in every run.
fn node_hash(path: &str, node: &Znode) -> u64 {
    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    node.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(data: &str, version: i32) -> Znode {
        Znode {
            data: data.into(),
            version,
        }
    }

    #[test]
    fn equal_contents_are_equal_and_hash_alike_whatever_the_history() {
        let mut first = Znodes::default();
        first.put("/a", node("x", 0));
        first.put("/b", node("y", 0));
        first.put("/a", node("z", 1));
        let mut second = Znodes::default();
        second.put("/c", node("gone", 0));
        second.put("/b", node("y", 0));
        second.put("/a", node("z", 1));
        second.remove("/c");
        assert_eq!(first, second);
        assert_eq!(first.fingerprint, second.fingerprint);
        second.put("/b", node("y", 1));
        assert_ne!(first, second);
    }

    #[test]
    fn a_write_to_a_clone_leaves_the_original_alone() {
        let mut original = Znodes::default();
        original.put("/a", node("x", 0));
        let mut copy = original.clone();
        copy.put("/a", node("y", 1));
        assert_eq!(original.get("/a"), Some(&node("x", 0)));
        assert_eq!(copy.get("/a"), Some(&node("y", 1)));
    }
}
