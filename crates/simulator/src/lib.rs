//! Deterministic simulation of whole Conclave ensembles from a seed.
//!
//! Every simulated server runs the ensemble driver that ships
//! (`consensus::driver::Driver`) with the real data tree as its state
//! machine, the real store code (`storage::memory::MemoryStore` behind the
//! log writer's own batching, `storage::writer`) as its disk and a
//! simulated network, and starts exactly as the binary does (recovery,
//! then the driver's start). The simulator owns only what the server gets
//! from its operating system: time (ticks, and clocks that drift), the
//! network (loss, duplication, reordering, delay, partitions both ways and
//! one way) and the disk (syncs, crashes that lose unsynced writes, lost
//! and corrupted disks); and what an operator does (restarts, stale
//! zoo.cfg, membership changes). Nothing here re-implements the driver.
//!
//! - `cluster.rs`: the world and its events;
//! - `server.rs`, `disk.rs`, `net.rs`, `machine.rs`: one server, its disk,
//!   the network, its state machine;
//! - `workload.rs`: the clients and their history;
//! - `checks.rs`, `configs.rs`: what must hold after every event;
//! - `plans.rs`: membership scenarios;
//! - `faults.rs`: the fault rates and the deliberately broken behaviours.
//!
//! The tests are `tests/simulation.rs`; a failing seed replays alone.

pub mod checks;
pub mod cluster;
pub mod configs;
pub mod disk;
pub mod faults;
pub mod machine;
pub mod net;
pub mod plans;
pub mod server;
pub mod workload;

pub use cluster::{Cluster, Ensemble, RunStats};
pub use faults::Faults;
pub use plans::Plan;
