//! The inode table: FUSE inode numbers for the files of the backing tree.
//!
//! The kernel names files by inode number; the backing directory is
//! reached by path. A node is one backing file (identified by its device
//! and inode number, so hard links share a node, and so share the cached
//! data), with the paths (relative to the backing root) it is known under.
//! Numbers are handed out from a counter and never reused, so a stale
//! number held by the kernel can never reach a different file.
//!
//! Renames rewrite the paths of the renamed node and, for a directory, of
//! every node below it. A node whose last path is unlinked or renamed over
//! is an orphan: it lives on while the kernel holds lookups on it or it is
//! open (a deleted file still open), and is then forgotten.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The root directory's inode number (fixed by FUSE).
pub(crate) const ROOT: u64 = 1;

/// A backing file's identity: `(st_dev, st_ino)`.
pub(crate) type BackingId = (u64, u64);

#[derive(Debug)]
struct Node {
    /// Paths relative to the backing root; empty for an orphan; the root's
    /// only path is the empty path.
    paths: Vec<PathBuf>,
    backing: BackingId,
    /// Lookups the kernel holds (each entry reply adds one, `forget`
    /// removes them).
    lookups: u64,
}

/// Every node the kernel may name.
#[derive(Debug)]
pub(crate) struct Inodes {
    nodes: HashMap<u64, Node>,
    by_path: HashMap<PathBuf, u64>,
    by_backing: HashMap<BackingId, u64>,
    next: u64,
}

fn enoent() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

/// Checks that `name` is one path component (the kernel sends nothing
/// else, but nothing it sends may escape the backing directory).
pub(crate) fn check_name(name: &OsStr) -> io::Result<()> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(c)), None) if c == name => Ok(()),
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

impl Inodes {
    /// A table holding only the root, the backing directory itself.
    pub(crate) fn new(root: BackingId) -> Self {
        let mut inodes = Self {
            nodes: HashMap::new(),
            by_path: HashMap::new(),
            by_backing: HashMap::new(),
            next: ROOT + 1,
        };
        inodes.nodes.insert(
            ROOT,
            Node {
                paths: vec![PathBuf::new()],
                backing: root,
                lookups: 1,
            },
        );
        inodes.by_path.insert(PathBuf::new(), ROOT);
        inodes.by_backing.insert(root, ROOT);
        inodes
    }

    /// A path of `ino`, relative to the backing root. `ENOENT` for an
    /// unknown number or an orphan (a deleted file has no path).
    pub(crate) fn path(&self, ino: u64) -> io::Result<&Path> {
        self.nodes
            .get(&ino)
            .and_then(|n| n.paths.first())
            .map(PathBuf::as_path)
            .ok_or_else(enoent)
    }

    /// Whether `ino` is known.
    #[cfg(test)]
    pub(crate) fn contains(&self, ino: u64) -> bool {
        self.nodes.contains_key(&ino)
    }

    /// Whether `ino` is known but has no path left (deleted).
    pub(crate) fn is_orphan(&self, ino: u64) -> bool {
        self.nodes.get(&ino).is_some_and(|n| n.paths.is_empty())
    }

    /// The relative path of `name` in directory `parent`.
    pub(crate) fn child(&self, parent: u64, name: &OsStr) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(self.path(parent)?.join(name))
    }

    /// The number of the node at `path`, if the table has one.
    pub(crate) fn at_path(&self, path: &Path) -> Option<u64> {
        self.by_path.get(path).copied()
    }

    /// Records that the backing file `backing` is at `path` and that the
    /// kernel now holds one more lookup of it; returns its number.
    pub(crate) fn remember(&mut self, path: &Path, backing: BackingId) -> u64 {
        // A different file at this path (replaced behind our back): that
        // node loses the path.
        if let Some(old) = self.by_path.get(path).copied()
            && self.nodes.get(&old).is_some_and(|n| n.backing != backing)
        {
            self.unlink(path);
        }
        let ino = match self.by_backing.get(&backing) {
            Some(ino) => *ino,
            None => {
                let ino = self.next;
                self.next += 1;
                self.nodes.insert(
                    ino,
                    Node {
                        paths: Vec::new(),
                        backing,
                        lookups: 0,
                    },
                );
                self.by_backing.insert(backing, ino);
                ino
            }
        };
        if let Some(node) = self.nodes.get_mut(&ino) {
            if !node.paths.iter().any(|p| p == path) {
                node.paths.push(path.to_path_buf());
            }
            node.lookups += 1;
        }
        self.by_path.insert(path.to_path_buf(), ino);
        ino
    }

    /// The kernel dropped `n` lookups of `ino`. Returns whether it holds
    /// none now (the node may then go, see [`Inodes::remove_unused`]).
    pub(crate) fn forget(&mut self, ino: u64, n: u64) -> bool {
        match self.nodes.get_mut(&ino) {
            Some(node) if ino != ROOT => {
                node.lookups = node.lookups.saturating_sub(n);
                node.lookups == 0
            }
            _ => false,
        }
    }

    /// Forgets `ino` if the kernel holds no lookups of it. The caller
    /// checks that it is not open and holds no cached data.
    pub(crate) fn remove_unused(&mut self, ino: u64) {
        if ino == ROOT || self.nodes.get(&ino).is_none_or(|n| n.lookups > 0) {
            return;
        }
        if let Some(node) = self.nodes.remove(&ino) {
            for path in &node.paths {
                self.by_path.remove(path);
            }
            if self.by_backing.get(&node.backing) == Some(&ino) {
                self.by_backing.remove(&node.backing);
            }
        }
    }

    /// Every node number, for sweeping unused ones.
    pub(crate) fn numbers(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// `path` was unlinked (or removed, or renamed over): its node loses
    /// it, and becomes an orphan if it was the last. Returns the node.
    pub(crate) fn unlink(&mut self, path: &Path) -> Option<u64> {
        let ino = self.by_path.remove(path)?;
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.paths.retain(|p| p != path);
            if node.paths.is_empty() && self.by_backing.get(&node.backing) == Some(&ino) {
                self.by_backing.remove(&node.backing);
            }
        }
        Some(ino)
    }

    /// `from` was renamed to `to` (whatever was at `to` is already
    /// unlinked): the node at `from` and every node below it move.
    pub(crate) fn rename(&mut self, from: &Path, to: &Path) {
        if from.as_os_str().is_empty() {
            return; // the root does not move
        }
        let moved: Vec<(PathBuf, u64)> = self
            .by_path
            .iter()
            .filter(|(path, _)| path.starts_with(from))
            .map(|(path, ino)| (path.clone(), *ino))
            .collect();
        for (old, ino) in moved {
            let Ok(rest) = old.strip_prefix(from) else {
                continue;
            };
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.by_path.remove(&old);
            self.by_path.insert(new.clone(), ino);
            if let Some(node) = self.nodes.get_mut(&ino) {
                for path in &mut node.paths {
                    if *path == old {
                        *path = new.clone();
                    }
                }
            }
        }
    }

    /// A hard link of `ino` was made at `path`; the kernel holds one more
    /// lookup of it.
    pub(crate) fn link(&mut self, ino: u64, path: &Path) -> io::Result<()> {
        let node = self.nodes.get_mut(&ino).ok_or_else(enoent)?;
        node.paths.push(path.to_path_buf());
        node.lookups += 1;
        self.by_path.insert(path.to_path_buf(), ino);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn names_must_be_one_component() {
        assert!(check_name(OsStr::new("CURRENT")).is_ok());
        for bad in ["", ".", "..", "a/b", "/etc", "a/"] {
            assert!(check_name(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_same_backing_file_keeps_its_number_and_numbers_are_not_reused() {
        let mut t = Inodes::new((1, 100));
        let a = t.remember(&p("a"), (1, 5));
        assert_eq!(t.remember(&p("a"), (1, 5)), a);
        assert_eq!(t.path(a).unwrap(), p("a"));
        assert!(t.forget(a, 2));
        t.remove_unused(a);
        assert!(!t.contains(a));
        let again = t.remember(&p("a"), (1, 5));
        assert_ne!(again, a);
    }

    #[test]
    fn rename_moves_a_directory_and_everything_below() {
        let mut t = Inodes::new((1, 100));
        let d = t.remember(&p("d"), (1, 2));
        let f = t.remember(&p("d/f"), (1, 3));
        let g = t.remember(&p("d/sub/g"), (1, 4));
        let other = t.remember(&p("dd"), (1, 5)); // a prefix by bytes, not by components
        t.rename(&p("d"), &p("e"));
        assert_eq!(t.path(d).unwrap(), p("e"));
        assert_eq!(t.path(f).unwrap(), p("e/f"));
        assert_eq!(t.path(g).unwrap(), p("e/sub/g"));
        assert_eq!(t.path(other).unwrap(), p("dd"));
        assert_eq!(t.at_path(&p("e/f")), Some(f));
        assert_eq!(t.at_path(&p("d/f")), None);
    }

    #[test]
    fn unlinking_the_last_path_orphans_and_a_new_file_there_is_a_new_node() {
        let mut t = Inodes::new((1, 100));
        let a = t.remember(&p("a"), (1, 5));
        assert_eq!(t.unlink(&p("a")), Some(a));
        assert!(t.is_orphan(a));
        assert!(t.path(a).is_err());
        // The backing inode number is reused by the new file.
        let b = t.remember(&p("a"), (1, 5));
        assert_ne!(a, b);
    }

    #[test]
    fn hard_links_share_a_node_until_the_last_path_goes() {
        let mut t = Inodes::new((1, 100));
        let a = t.remember(&p("a"), (1, 5));
        t.link(a, &p("b")).unwrap();
        assert_eq!(t.remember(&p("b"), (1, 5)), a);
        t.unlink(&p("a"));
        assert!(!t.is_orphan(a));
        assert_eq!(t.path(a).unwrap(), p("b"));
        t.unlink(&p("b"));
        assert!(t.is_orphan(a));
    }

    #[test]
    fn a_file_replaced_behind_our_back_gets_a_new_node() {
        let mut t = Inodes::new((1, 100));
        let a = t.remember(&p("a"), (1, 5));
        let b = t.remember(&p("a"), (1, 6));
        assert_ne!(a, b);
        assert!(t.is_orphan(a));
        assert_eq!(t.at_path(&p("a")), Some(b));
    }

    #[test]
    fn the_root_is_never_forgotten() {
        let mut t = Inodes::new((1, 100));
        assert!(!t.forget(ROOT, 10));
        t.remove_unused(ROOT);
        assert_eq!(t.path(ROOT).unwrap(), p(""));
    }
}
