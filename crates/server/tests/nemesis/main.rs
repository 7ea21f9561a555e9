//! A Jepsen-style test of real `conclave-server` processes: an ensemble of
//! three (and, in the second test, five) servers on loopback, each with its
//! data directory on its own LazyFS mount, clients on every member
//! recording what they did, and a seeded nemesis that kills, pauses,
//! partitions, wipes and power-cuts servers while they work; at the end,
//! every history is checked (`lincheck`). See `README.md` next to this file
//! for how to run it long and how to replay a seed.
//!
//! - `cluster`: the servers, their mounts, zoo.cfg, logs; kill, pause,
//!   power cut, wipe, restart.
//! - `proxy`: the network between the members, and its partitions.
//! - `nemesis`: which fault when, within a budget that keeps a majority
//!   serving.
//! - `registers`, `sequential`, `ephemerals`: the three workloads and
//!   their recording (`workload` is what they share, `raw_client` the
//!   protocol).
//! - `run`: one run from start to verdict.
//!
//! # Partitions: a proxy that reads the peers' Hello
//!
//! Partitions are made by this test's own fault-injecting TCP proxy, not
//! by iptables or network namespaces. Every zoo.cfg names the members as
//! `server.N=[::1]:<port N>:<port>`; each server binds its quorum port on
//! IPv4 (`0.0.0.0`), so the proxy can listen on the same port on the IPv6
//! loopback and every peer connection reaches the proxy first. The proxy
//! reads the connection's first frame, the sender's `Hello` with both server
//! ids (decoded with `consensus::wire`, the servers' own codec), so it
//! knows the direction of every byte, then forwards to `127.0.0.1:<port>`.
//! A blocked direction's bytes are held (the proxy stops reading), as a
//! partition does: silence, no reset. One-way partitions block one
//! direction of each pair.
//!
//! Why this and not the others:
//!
//! - All members keep identical `server.N` lines: the committed membership
//!   carries the members' addresses, and a restarted server (a wiped one
//!   once it has taken its state back) adopts them over its zoo.cfg. A
//!   proxy with a port per link (`tests/integration/partition_proxy.rs`)
//!   needs a zoo.cfg per member naming the others at their link ports, so
//!   after a restart or a wipe its partitions would cut the wrong links.
//! - iptables cannot tell the servers apart on loopback (every peer
//!   connection comes from 127.0.0.1 on an ephemeral port) without
//!   per-process uids or cgroups, is not installed on every machine that
//!   runs the tests, and leaves rules behind if the test process is
//!   killed; a dropped packet also heals only at TCP's next retransmission
//!   (seconds after a long partition). Network namespaces need a veth or
//!   bridge per server and `setns` for the clients. The proxy needs
//!   nothing but the IPv6 loopback, and dies with the test process.
//!
//! What the proxy does not cover: clients reach the servers directly (a
//! partitioned server stops serving its clients by itself, as it must),
//! and a killed server's port is closed at the proxy too, so peers see
//! refused connections (as from a dead process) even across a partition.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod cluster;
mod ephemerals;
mod nemesis;
mod proxy;
mod raw_client;
mod registers;
mod rng;
mod run;
mod sequential;
mod workload;

use run::{Settings, run};

/// Three servers, 100 s of faults by default (`CONCLAVE_NEMESIS_SECS`).
#[test]
fn three_servers_under_faults() {
    run(Settings {
        members: 3,
        default_secs: 100,
        test: "three_servers_under_faults",
    });
}

/// Five servers, 60 s of faults by default: two faults at once.
#[test]
fn five_servers_under_faults() {
    run(Settings {
        members: 5,
        default_secs: 60,
        test: "five_servers_under_faults",
    });
}
