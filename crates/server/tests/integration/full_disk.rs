//! A full disk under a running server: the write that cannot be stored is
//! not acknowledged, and the server stops with an error that says why
//! (as ZooKeeper exits on an I/O error of its transaction log) — no panic.
//! The data directory is a small tmpfs in a private mount namespace
//! (`unshare --mount`; needs root), gone with the process.

use std::time::Duration;

use proto::ErrorCode;

use crate::raw_client::RawClient;
use crate::support::{DataDir, running_as_root};

#[test]
fn a_full_disk_stops_the_server_with_an_error_not_a_panic() {
    if !running_as_root() {
        eprintln!("skipped: needs root for a private tmpfs (unshare --mount)");
        return;
    }
    let dir = DataDir::new("full-disk");
    let mount = format!(
        "mount -t tmpfs -o size=24m tmpfs {} && exec \"$@\"",
        dir.data_dir().display()
    );
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &mount,
        "sh",
    ]
    .map(String::from);
    let mut server = dir.spawn_wrapped(&[], &wrapper);
    server.wait_ready();

    // 512 KiB values until the disk is full: about 48 fit in 24 MiB at
    // best, so 200 are more than enough.
    let value = vec![7u8; 512 * 1024];
    let mut client = RawClient::connect(server.addr, 30_000).expect("connect");
    let mut acknowledged = 0;
    for i in 0..200 {
        match client.create(&format!("/big-{i}"), &value) {
            Ok(reply) if reply.error() == ErrorCode::Ok => acknowledged += 1,
            _ => break,
        }
    }
    assert!(acknowledged < 200, "the disk never filled");
    let status = server
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running on a full disk; log:\n{}", server.log()));
    let log = server.log();
    assert!(!status.success(), "exited with success; log:\n{log}");
    assert!(!log.contains("panicked"), "a panic; log:\n{log}");
    assert!(
        log.contains("No space left on device"),
        "no reason given; log:\n{log}"
    );
}
