//! Integration tests of the real `conclave-server` binary, in one test
//! binary (each extra one costs a link). `support` starts Conclave and
//! Apache ZooKeeper 3.8 (Debian's package) side by side; the differential
//! tests run the same client scenario against both and compare. The
//! durability tests (`crash`, `restarts`, `bad_data_dirs`) run Conclave on
//! a data directory that outlives the process: SIGKILL, restart, check.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod bad_data_dirs;
mod crash;
mod disk_loss;
mod ensemble;
mod ensemble_config;
mod ensemble_support;
mod full_disk;
mod membership;
mod monitoring;
mod partition_proxy;
mod quorum_tls;
mod raw_client;
mod raw_protocol;
mod restarts;
mod rust_client;
mod sasl;
mod snapshot_stream;
mod support;
mod tls;
