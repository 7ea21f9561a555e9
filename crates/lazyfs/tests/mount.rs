//! A real FUSE mount in a temporary directory, driven through ordinary
//! file system calls: what survives a power cut, renames and unlinks,
//! truncation, hard links, `O_DSYNC`, and the control socket.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use lazyfs::PowerCutReport;
use lazyfs::control::{self, Command};

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn synced_data_survives_a_power_cut_and_unsynced_data_is_dropped() {
    let Some(fx) = common::mount() else { return };
    let path = fx.at("wal");
    let mut file = File::create(&path).unwrap();
    file.write_all(b"synced part|").unwrap();
    file.sync_data().unwrap();
    file.write_all(b"unsynced part").unwrap();

    // Visible at once, through this handle, another one and stat...
    assert_eq!(read(&path), b"synced part|unsynced part");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 25);
    // ...but only the synced part reached the disk.
    assert_eq!(read(&fx.on_disk("wal")), b"synced part|");
    assert_eq!(fx.controller().stats().dirty_bytes, 13);

    drop(file); // closing does not sync
    assert_eq!(read(&fx.on_disk("wal")), b"synced part|");
    let report = fx.controller().power_cut();
    assert_eq!(
        report,
        PowerCutReport {
            files: 1,
            bytes: 13
        }
    );
    assert_eq!(read(&path), b"synced part|");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 12);
    assert_eq!(fx.controller().stats().dirty_bytes, 0);
}

#[test]
fn an_unsynced_overwrite_of_synced_bytes_is_undone_by_a_power_cut() {
    let Some(fx) = common::mount() else { return };
    let path = fx.at("f");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.write_all_at(b"0123456789", 0).unwrap();
    file.sync_all().unwrap();
    file.write_all_at(b"abc", 4).unwrap();
    let mut buf = [0u8; 10];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"0123abc789");
    let report = fx.controller().power_cut();
    assert_eq!(report.bytes, 3);
    // The handle is still open and now reads what the disk holds.
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"0123456789");
}

#[test]
fn fsync_through_any_handle_flushes_the_whole_file() {
    let Some(fx) = common::mount() else { return };
    let path = fx.at("f");
    let mut writer = File::create(&path).unwrap();
    writer.write_all(b"written by one handle").unwrap();
    let reader = File::open(&path).unwrap();
    reader.sync_all().unwrap(); // a read-only handle of the same file
    assert_eq!(read(&fx.on_disk("f")), b"written by one handle");
    assert_eq!(fx.controller().power_cut(), PowerCutReport::default());
    assert_eq!(read(&path), b"written by one handle");
}

#[test]
fn a_file_never_synced_survives_as_an_empty_file() {
    let Some(fx) = common::mount() else { return };
    std::fs::write(fx.at("new"), b"never synced").unwrap();
    assert_eq!(read(&fx.at("new")), b"never synced");
    let report = fx.controller().power_cut();
    assert_eq!(
        report,
        PowerCutReport {
            files: 1,
            bytes: 12
        }
    );
    // Creating it was metadata, durable at once; its data was not.
    assert_eq!(read(&fx.at("new")), b"");
}

#[test]
fn o_dsync_writes_are_durable_at_once() {
    let Some(fx) = common::mount() else { return };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DSYNC)
        .open(fx.at("f"))
        .unwrap();
    file.write_all(b"durable").unwrap();
    assert_eq!(read(&fx.on_disk("f")), b"durable");
    assert_eq!(fx.controller().power_cut(), PowerCutReport::default());
}

#[test]
fn rename_unlink_mkdir_rmdir_and_readdir_reach_the_backing_directory() {
    let Some(fx) = common::mount() else { return };
    std::fs::create_dir(fx.at("dir")).unwrap();
    let mut file = File::create(fx.at("dir/a")).unwrap();
    file.write_all(b"contents").unwrap();
    file.sync_all().unwrap();

    // Rename within and across directories, with the handle still open.
    std::fs::rename(fx.at("dir/a"), fx.at("dir/b")).unwrap();
    std::fs::rename(fx.at("dir"), fx.at("moved")).unwrap();
    file.write_all(b" more").unwrap();
    file.sync_all().unwrap();
    drop(file);
    assert_eq!(read(&fx.at("moved/b")), b"contents more");
    assert_eq!(read(&fx.on_disk("moved/b")), b"contents more");
    assert!(!fx.at("dir").exists() && !fx.on_disk("dir").exists());

    let mut names: Vec<String> = std::fs::read_dir(fx.at("moved"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["b"]);

    // Rename over an existing file (what RocksDB does with CURRENT).
    std::fs::write(fx.at("moved/tmp"), b"new").unwrap();
    File::open(fx.at("moved/tmp")).unwrap().sync_all().unwrap();
    std::fs::rename(fx.at("moved/tmp"), fx.at("moved/b")).unwrap();
    assert_eq!(read(&fx.at("moved/b")), b"new");
    assert_eq!(read(&fx.on_disk("moved/b")), b"new");

    std::fs::remove_file(fx.at("moved/b")).unwrap();
    assert!(!fx.on_disk("moved/b").exists());
    std::fs::remove_dir(fx.at("moved")).unwrap();
    assert!(!fx.on_disk("moved").exists());
    assert_eq!(std::fs::read_dir(&fx.mount).unwrap().count(), 0);
}

#[test]
fn an_unsynced_file_renamed_over_another_leaves_an_empty_file_after_a_power_cut() {
    let Some(fx) = common::mount() else { return };
    std::fs::write(fx.at("CURRENT"), b"old").unwrap();
    File::open(fx.at("CURRENT")).unwrap().sync_all().unwrap();
    std::fs::write(fx.at("CURRENT.tmp"), b"new").unwrap(); // no fsync: a bug
    std::fs::rename(fx.at("CURRENT.tmp"), fx.at("CURRENT")).unwrap();
    fx.controller().power_cut();
    assert_eq!(read(&fx.at("CURRENT")), b"");
}

#[test]
fn unsynced_data_of_a_deleted_file_is_forgotten() {
    let Some(fx) = common::mount() else { return };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(fx.at("gone"))
        .unwrap();
    file.write_all(b"data").unwrap();
    std::fs::remove_file(fx.at("gone")).unwrap();
    assert!(!fx.on_disk("gone").exists());
    // Still open: still readable through the handle.
    let mut back = String::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut back).unwrap();
    assert_eq!(back, "data");
    drop(file);
    // The kernel sends the release after close(2) returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = fx.controller().stats();
        if (stats.dirty_bytes, stats.discarded_bytes_total) == (0, 4) {
            break;
        }
        assert!(Instant::now() < deadline, "never discarded: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(File::open(fx.at("gone")).is_err());
}

#[test]
fn truncation_follows_the_documented_rules() {
    let Some(fx) = common::mount() else { return };
    let path = fx.at("f");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.write_all_at(b"0123456789", 0).unwrap();
    file.sync_data().unwrap();
    file.write_all_at(b"abcdef", 10).unwrap();

    file.set_len(16).unwrap(); // to the current length: nothing changes
    assert_eq!(std::fs::metadata(fx.on_disk("f")).unwrap().len(), 10);
    file.set_len(13).unwrap(); // inside the unsynced tail: only the cache
    assert_eq!(read(&path), b"0123456789abc");
    assert_eq!(std::fs::metadata(fx.on_disk("f")).unwrap().len(), 10);
    file.set_len(4).unwrap(); // below the synced length: durable at once
    assert_eq!(read(&fx.on_disk("f")), b"0123");
    file.write_all_at(b"xy", 4).unwrap();
    file.set_len(8).unwrap(); // past the end: a durable hole
    assert_eq!(read(&path), b"0123xy\0\0");
    assert_eq!(read(&fx.on_disk("f")), b"0123\0\0\0\0");

    fx.controller().power_cut();
    assert_eq!(read(&path), b"0123\0\0\0\0");
}

#[test]
fn hard_links_share_one_cache() {
    let Some(fx) = common::mount() else { return };
    std::fs::write(fx.at("a"), b"shared").unwrap();
    std::fs::hard_link(fx.at("a"), fx.at("b")).unwrap();
    assert_eq!(read(&fx.at("b")), b"shared");
    OpenOptions::new()
        .append(true)
        .open(fx.at("b"))
        .unwrap()
        .write_all(b"!")
        .unwrap();
    assert_eq!(read(&fx.at("a")), b"shared!");
    File::open(fx.at("a")).unwrap().sync_all().unwrap();
    assert_eq!(read(&fx.on_disk("b")), b"shared!");
}

#[test]
fn large_appends_read_back_intact() {
    let Some(fx) = common::mount() else { return };
    let path = fx.at("big");
    let mut file = File::create(&path).unwrap();
    let mut expected = Vec::new();
    for i in 0..2000u32 {
        let record = format!("record {i:06} {}\n", "x".repeat((i % 97) as usize));
        file.write_all(record.as_bytes()).unwrap();
        expected.extend_from_slice(record.as_bytes());
        if i == 999 {
            file.sync_data().unwrap();
        }
    }
    let synced = expected
        .split_inclusive(|b| *b == b'\n')
        .take(1000)
        .map(<[u8]>::len)
        .sum::<usize>();
    let mut back = Vec::new();
    File::open(&path).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, expected);
    drop(file);
    let report = fx.controller().power_cut();
    assert_eq!(report.bytes as usize, expected.len() - synced);
    assert_eq!(read(&path), &expected[..synced]);
}

#[test]
fn over_the_limit_dirty_data_is_written_back() {
    let Some(fx) = common::mount_with(4096) else {
        return;
    };
    let data = vec![7u8; 10_000];
    std::fs::write(fx.at("f"), &data).unwrap();
    assert!(fx.controller().stats().written_back_bytes_total > 0);
    fx.controller().power_cut();
    // Written back, so it survived, at least up to what went back.
    assert!(std::fs::metadata(fx.at("f")).unwrap().len() >= 4096);
}

#[test]
fn the_control_socket_answers_commands() {
    let Some(fx) = common::mount() else { return };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let server = control::serve(&socket, fx.controller()).unwrap();

    std::fs::write(fx.at("f"), b"abc").unwrap();
    let stats = control::request(&socket, Command::Stats).unwrap();
    assert_eq!(stats.get("dirty_bytes"), Some(3));
    let cut = control::request(&socket, Command::PowerCut).unwrap();
    assert_eq!((cut.get("files"), cut.get("bytes")), (Some(1), Some(3)));
    std::fs::write(fx.at("g"), b"defg").unwrap();
    let synced = control::request(&socket, Command::Sync).unwrap();
    assert_eq!(synced.get("bytes"), Some(4));
    assert_eq!(read(&fx.on_disk("g")), b"defg");

    // Several commands on one connection, and an unknown one.
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream.write_all(b"reboot\nstats\n").unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .starts_with("error unknown command")
    );
    assert!(lines.next().unwrap().unwrap().starts_with("ok stats "));
    drop((lines, stream));

    drop(server);
    assert!(!socket.exists(), "the socket file is removed");
}

#[test]
fn a_clean_unmount_writes_the_cache_back() {
    let Some(mut fx) = common::mount() else {
        return;
    };
    std::fs::write(fx.at("f"), b"cached").unwrap();
    assert_eq!(read(&fx.on_disk("f")), b"");
    fx.unmount();
    assert_eq!(read(&fx.on_disk("f")), b"cached");
}
