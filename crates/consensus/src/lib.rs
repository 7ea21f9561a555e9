//! The replication core: tikv's raft-rs (`RawNode`) driven without I/O.
//!
//! Ticks, peer messages and proposals go in; messages to send, entries to
//! make durable and committed entries (each with its ZooKeeper zxid) come
//! out. Time, randomness, the network and the disk belong to the caller,
//! which is what lets the simulator (`crates/simulator`) replay any run
//! from a seed.
//!
//! - [`node`]: raft-rs behind an input/output API;
//! - [`driver`]: the ensemble driver on top of it — the Ready loop,
//!   proposals and forwarding, ReadIndex, apply, snapshots, roles,
//!   membership jobs, discovery and restore after a lost disk — reached
//!   only through traits for the network, the log writer and the state
//!   machine, so the server and the simulator run the same one;
//! - [`membership`]: the ensemble's members and the single-server steps
//!   between memberships;
//! - [`zxid`]: zxids derived from log positions (`term << 32 | counter`);
//! - [`memlog`]: the log as raft-rs reads it, in memory, with compaction
//!   and snapshots made on demand;
//! - [`wire`]: peer framing and our own encoding of Raft messages;
//! - [`logging`]: raft-rs's `slog` records into `tracing`.

pub mod driver;
pub mod error;
pub mod logging;
pub mod membership;
pub mod memlog;
pub mod node;
pub mod random;
pub mod wire;
pub mod zxid;

pub use error::ConsensusError;
pub use memlog::{LogCore, MemLog};
pub use node::{
    Committed, CommittedKind, Node, NodeConfig, PeerProgress, Proposed, Ready, Role, RoleChange,
};
pub use raft;
pub use zxid::{ZxidCounter, counter_of, epoch_of, make_zxid};
