//! The ZooKeeper data tree and its state machine.
//!
//! A write happens in two halves, because replication relies on the split:
//! [`prepare`] checks a request against the current state and turns it into
//! a deterministic [`Txn`] (zxid, time, resolved sequential name, the ACL
//! after `auth` expansion, the ephemerals a closing session owns, every op
//! of a multi, or the error it must fail with); [`apply`] is a pure function
//! of (state, transaction) that changes the [`DataTree`] and reports the
//! outcome and the [`Change`]s that fire watches. Reads are plain lookups on
//! the [`DataTree`]. Watch bookkeeping is in [`watch`], ACLs in [`acl`],
//! path rules in [`path`].
//!
//! Architecture invariant: no I/O, no clock, no randomness. Every input that
//! varies (time, zxid, session id, password) arrives as an argument, so
//! every replica that applies the same transactions reaches the same tree.

pub mod acl;
mod apply;
pub mod child_name;
pub mod node;
pub mod path;
mod prepare;
mod tree;
mod txn;
pub mod watch;

pub use apply::{Applied, Change, Outcome, apply};
pub use child_name::ChildName;
pub use node::{Children, Node, StatPersisted};
pub use prepare::{Context, Features, Pending, WriteRequest, prepare};
pub use tree::{CONFIG, DataTree, QUOTA, RestoreError, SessionRecord, TreeBuilder, ZOOKEEPER};
pub use txn::{CreateTxn, Txn, TxnOp};
pub use watch::{Notification, Table, WatchManager, WatchMode, WatcherId};
