//! Integration tests of the real `conclave-server` binary, in one test
//! binary (each extra one costs a link). `support` starts Conclave and
//! Apache ZooKeeper 3.8 (Debian's package) side by side; the differential
//! tests run the same client scenario against both and compare.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod raw_protocol;
mod rust_client;
mod support;
