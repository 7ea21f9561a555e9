//! A znode as stored: data, ACL, children and the persisted Stat fields
//! (`DataNode` + `StatPersisted`). The client-visible Stat is derived from
//! it by [`Node::stat`].

use std::collections::BTreeSet;
use std::sync::Arc;

use proto::{Acl, Stat};

use crate::child_name::ChildName;

/// `EphemeralType`: the top byte of the stored `ephemeralOwner` marks
/// container and TTL nodes; a plain ephemeral stores its session id.
pub mod owner {
    /// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
    pub const CONTAINER: i64 = i64::MIN;
    /// The TTL marker (`0xFF` top byte); the low 40 bits hold the TTL.
    pub const TTL_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
    /// Largest TTL, 2^40 - 1 ms.
    pub const MAX_TTL_MS: i64 = 0x00ff_ffff_ffff;

    /// What kind of node an owner value denotes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        /// Persistent (owner 0).
        Void,
        /// A session's ephemeral.
        Normal(i64),
        Container,
        Ttl(i64),
    }

    pub fn kind(owner: i64) -> Kind {
        if owner == 0 {
            Kind::Void
        } else if owner == CONTAINER {
            Kind::Container
        } else if owner & TTL_MASK == TTL_MASK {
            Kind::Ttl(owner & MAX_TTL_MS)
        } else {
            Kind::Normal(owner)
        }
    }

    pub fn ttl(ttl_ms: i64) -> i64 {
        TTL_MASK | (ttl_ms & MAX_TTL_MS)
    }

    /// What clients see: the session id for ephemerals, 0 for everything
    /// else (`DataNode.getClientEphemeralOwner`).
    pub fn client_visible(owner: i64) -> i64 {
        match kind(owner) {
            Kind::Normal(session) => session,
            _ => 0,
        }
    }
}

/// The Stat fields ZooKeeper persists (`StatPersisted`). `cversion` here is
/// the stored "child creations" count, not the client-visible value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl StatPersisted {
    /// `DataTree.createStat`.
    pub fn created(zxid: i64, time_ms: i64, ephemeral_owner: i64) -> Self {
        StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
        }
    }
}

/// One znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `None` when created with null data; returned as null.
    pub data: Option<Vec<u8>>,
    /// Shared: most nodes carry one of a handful of ACL lists.
    pub acl: Arc<Vec<Acl>>,
    pub stat: StatPersisted,
    /// Child names. Sorted, so listings and digests are deterministic
    /// (ZooKeeper's order is unspecified).
    pub children: Children,
}

/// A node's child names: a pointer for the many nodes without children
/// (8 bytes in every node instead of a set's 24), the set once there is
/// one. Reads go through `Deref` to the set. Names are [`ChildName`]s:
/// short ones inline, with no heap block of their own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
// The box is the point: 8 bytes in every node instead of the set's 24.
#[allow(clippy::box_collection)]
pub struct Children(Option<Box<BTreeSet<ChildName>>>);

/// What a node without children lists.
static NO_CHILDREN: BTreeSet<ChildName> = BTreeSet::new();

impl std::ops::Deref for Children {
    type Target = BTreeSet<ChildName>;

    fn deref(&self) -> &BTreeSet<ChildName> {
        self.0.as_deref().unwrap_or(&NO_CHILDREN)
    }
}

impl Children {
    /// Adds `name`; true if it was not there.
    pub fn insert(&mut self, name: &str) -> bool {
        self.0
            .get_or_insert_with(Box::default)
            .insert(ChildName::new(name))
    }

    /// Whether `name` is a child.
    pub fn contains(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_some_and(|set| set.contains(name.as_bytes()))
    }

    /// Removes `name`; true if it was there. The set goes with the last.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(set) = self.0.as_mut() else {
            return false;
        };
        let removed = set.remove(name.as_bytes());
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl Node {
    pub fn new(data: Option<Vec<u8>>, acl: Arc<Vec<Acl>>, stat: StatPersisted) -> Self {
        Node {
            data,
            acl,
            stat,
            children: Children::default(),
        }
    }

    pub fn data_len(&self) -> i32 {
        self.data
            .as_ref()
            .map_or(0, |d| i32::try_from(d.len()).unwrap_or(i32::MAX))
    }

    pub fn num_children(&self) -> i32 {
        i32::try_from(self.children.len()).unwrap_or(i32::MAX)
    }

    /// The client-visible Stat (`DataNode.copyStat`). The wire cversion is
    /// `2 × creations − children still present`, which makes it count every
    /// child create and every child delete.
    pub fn stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.num_children();
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: owner::client_visible(s.ephemeral_owner),
            data_length: self.data_len(),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_kinds() {
        assert_eq!(owner::kind(0), owner::Kind::Void);
        assert_eq!(owner::kind(0x1234), owner::Kind::Normal(0x1234));
        assert_eq!(owner::kind(owner::CONTAINER), owner::Kind::Container);
        assert_eq!(owner::kind(owner::ttl(5000)), owner::Kind::Ttl(5000));
        assert_eq!(owner::client_visible(owner::ttl(5000)), 0);
        assert_eq!(owner::client_visible(owner::CONTAINER), 0);
    }
}
