//! Snapshots as streams, with real processes: a tree many times larger
//! than a peer frame (the frame limit set low by `conclave.peerMaxFrameBytes`)
//! reaches a member that lost its disk, in chunks, while clients write —
//! through a receiver killed in the middle of the stream (it resumes from
//! what it staged), a leader killed in the middle of sending (the next
//! leader sends its own image), and a receiver killed the moment the image
//! is whole (installing or about to). No acknowledged write is lost.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proto::ErrorCode;

use crate::disk_loss::{Writers, assert_everywhere, await_whole};
use crate::ensemble::children;
use crate::ensemble_support::LocalEnsemble;

const FRAME: usize = 64 << 10;
const SETTINGS: &[&str] = &[
    "conclave.peerMaxFrameBytes=65536",
    "conclave.snapshotChunkBytes=8192",
    "conclave.snapshotSendBytesPerSec=524288",
];
const BIG_NODES: usize = 2000;
const BIG_VALUE: usize = 1000;

/// What a member's image directory holds of the image it receives:
/// (name, bytes staged, the image's size).
fn staged(ensemble: &LocalEnsemble, i: usize) -> Option<(String, u64, u64)> {
    let dir: PathBuf = ensemble.members[i].dir.data_dir().join("images");
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // staged-<index>-<term>-<bytes>-<crc>
        let Some(total) = name
            .strip_prefix("staged-")
            .and_then(|rest| rest.split('-').nth(2))
            .and_then(|bytes| bytes.parse().ok())
        else {
            continue;
        };
        let size = entry.metadata().ok()?.len();
        return Some((name, size, total));
    }
    None
}

/// Waits until member `i` has staged part of an image (at least a chunk,
/// not all of it).
fn await_partial(ensemble: &LocalEnsemble, i: usize) -> (String, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((name, size, total)) = staged(ensemble, i)
            && size >= 8192
            && size < total
        {
            return (name, size, total);
        }
        assert!(
            Instant::now() < deadline,
            "member {i} staged no part of an image\n{}",
            ensemble.logs()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Empties member `i`'s disk (store and images; `myid` kept) and starts
/// it again.
fn lose_disk(ensemble: &mut LocalEnsemble, writers: &Writers, i: usize) {
    ensemble.kill9(i);
    let data = ensemble.members[i].dir.data_dir();
    std::fs::remove_dir_all(data.join("store")).unwrap();
    let _ = std::fs::remove_dir_all(data.join("images"));
    ensemble.restart(i);
    writers.moved(i, ensemble);
}

fn restart_killed(ensemble: &mut LocalEnsemble, writers: &Writers, i: usize) {
    ensemble.kill9(i);
    ensemble.restart(i);
    writers.moved(i, ensemble);
}

fn log_of(ensemble: &LocalEnsemble, i: usize) -> String {
    ensemble.members[i].process.as_ref().unwrap().log()
}

#[test]
fn a_tree_many_frames_large_reaches_an_emptied_member_through_kills_and_a_new_leader() {
    let mut ensemble = LocalEnsemble::start(3, SETTINGS);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let mut client = ensemble.client(leader);
    assert_eq!(client.create("/big", b"").unwrap().error(), ErrorCode::Ok);
    let value = vec![b'v'; BIG_VALUE];
    for n in 0..BIG_NODES {
        let reply = client.create(&format!("/big/n{n:05}"), &value).unwrap();
        assert_eq!(reply.error(), ErrorCode::Ok);
    }
    drop(client);
    let writers = Writers::start(&ensemble);
    writers.progress(100, &ensemble);

    // 1. An emptied follower, killed in the middle of the stream: it
    //    resumes from what it staged.
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let f = (leader + 1) % 3;
    let before = writers.acked();
    let started = Instant::now();
    lose_disk(&mut ensemble, &writers, f);
    let (name, size, total) = await_partial(&ensemble, f);
    assert!(
        total as usize > 16 * FRAME,
        "the image ({total} bytes) must be many frames large"
    );
    restart_killed(&mut ensemble, &writers, f);
    let took = await_whole(&ensemble, f, &before, started);
    let log = log_of(&ensemble, f);
    assert!(
        log.contains("resuming a partly received image"),
        "{name}: {size} of {total} bytes staged when killed; the new process did not resume\n{log}"
    );
    eprintln!(
        "an emptied member took an image of {total} bytes in chunks of 8 KiB (frames of at most \
         64 KiB), killed with {size} bytes staged and resuming: whole {took:?} after it started"
    );
    writers.progress(50, &ensemble);

    // 2. The leader killed in the middle of sending: whoever leads next
    //    sends an image of its own, and the partial one is dropped.
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let f = (leader + 1) % 3;
    let before = writers.acked();
    let started = Instant::now();
    lose_disk(&mut ensemble, &writers, f);
    let (first, _, _) = await_partial(&ensemble, f);
    restart_killed(&mut ensemble, &writers, leader);
    let took = await_whole(&ensemble, f, &before, started);
    eprintln!(
        "with the leader killed while sending ({first} partly staged), the emptied member was \
         whole {took:?} after it started"
    );
    writers.progress(50, &ensemble);

    // 3. The receiver killed the moment its image is whole: it installs
    //    that image after its restart, or gets it again.
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let f = (leader + 2) % 3;
    let before = writers.acked();
    let started = Instant::now();
    lose_disk(&mut ensemble, &writers, f);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if staged(&ensemble, f).is_some_and(|(_, size, total)| size == total) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no whole image staged\n{}",
            ensemble.logs()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let installed = log_of(&ensemble, f).contains("installed a snapshot from the leader");
    restart_killed(&mut ensemble, &writers, f);
    let took = await_whole(&ensemble, f, &before, started);
    eprintln!(
        "killed once its image was whole (installed by then: {installed}), the member was \
         whole {took:?} after it first started"
    );

    let acked = writers.stop();
    ensemble.await_leader(Duration::from_secs(30));
    assert_everywhere(&ensemble, &acked);
    for i in 0..3 {
        let mut client = ensemble.client(i);
        assert_eq!(children(&mut client, "/big").len(), BIG_NODES, "member {i}");
    }
    for i in 0..3 {
        let log = log_of(&ensemble, i);
        assert!(!log.contains("over the limit"), "member {i}:\n{log}");
    }
}
