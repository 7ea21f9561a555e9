//! Data directories the server must refuse at start: damaged stores (a
//! corrupted log entry, node or table file; a missing or cut table file,
//! manifest or write-ahead log; a missing CURRENT), a store of another
//! format version, a store another server has open, and directories that
//! are not stores. Each time the binary must exit non-zero within seconds,
//! say on stderr what is wrong, and lose nothing: the files stay as they
//! were, or (where RocksDB itself opened the database before Conclave
//! refused it) the store's contents stay as they were and, once the damage
//! is undone, the server starts with every znode.
//!
//! RocksDB's diagnostic `LOG` files are left out of the comparisons: every
//! open attempt rotates them, refused or not.
//!
//! Three cases guard fixes: `refused_stores_are_not_rewritten` (a store is
//! validated through a read-only handle before it is opened for writing),
//! `corrupted_record_inside_the_wal_is_not_silently_dropped` (WAL recovery
//! tolerates only a torn tail, not a damaged record in the middle) and
//! `zookeeper_data_directory_is_not_silently_ignored`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::raw_client::{RawClient, create_request};
use crate::support::{DataDir, Exited};

/// How the server that filled a store stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM: everything flushed into table files.
    Orderly,
    /// SIGKILL: the latest writes live only in the write-ahead log.
    Killed,
}

const NODES: usize = 40;

fn node_data(i: usize) -> Vec<u8> {
    format!("node {i} ").repeat(20).into_bytes()
}

/// A store with `/bad` and `NODES` children, and a session.
fn populated(label: &str, stop: Stop) -> DataDir {
    let dir = DataDir::new(label);
    let server = dir.start(&[]);
    let mut client = RawClient::connect(server.addr, 30_000).unwrap();
    assert_eq!(client.create("/bad", b"parent").unwrap().err, 0);
    let requests: Vec<_> = (0..NODES)
        .map(|i| create_request(&format!("/bad/n{i}"), Some(node_data(i)), 0))
        .collect();
    for reply in client.call_all(&requests).unwrap() {
        assert_eq!(reply.err, 0);
    }
    match stop {
        Stop::Orderly => assert!(server.terminate().success()),
        Stop::Killed => server.kill9(),
    }
    dir
}

/// Starts the server on `dir` and checks that every znode `populated`
/// wrote is there.
fn assert_serves_everything(dir: &DataDir) {
    let server = dir.start(&[]);
    let mut client = RawClient::connect(server.addr, 30_000).unwrap();
    let (children, _) = client.children("/bad").unwrap().unwrap();
    assert_eq!(children.len(), NODES, "{children:?}");
    for i in 0..NODES {
        let (data, _) = client.get_data(&format!("/bad/n{i}")).unwrap().unwrap();
        assert_eq!(data, Some(node_data(i)), "/bad/n{i}");
    }
    server.kill9();
}

/// Runs the server on `dir`, checks that it exits non-zero within
/// seconds, naming the problem on stderr (every string of `expected`).
fn refused(dir: &DataDir, what: &str, expected: &[&str]) -> Exited {
    let run = dir.run_to_exit(&[], Duration::from_secs(20));
    assert!(
        !run.status.success(),
        "{what}: the server exited successfully; stderr:\n{}",
        run.stderr
    );
    assert!(
        run.elapsed < Duration::from_secs(10),
        "{what}: refusing took {:?}",
        run.elapsed
    );
    for text in expected {
        assert!(
            run.stderr.contains(text),
            "{what}: stderr does not say {text:?}:\n{}",
            run.stderr
        );
    }
    eprintln!(
        "{what}: refused in {:?}: {}",
        run.elapsed,
        run.stderr.trim()
    );
    run
}

/// [`refused`], and every file of the data directory is as it was.
fn assert_refused_untouched(dir: &DataDir, what: &str, expected: &[&str]) {
    let before = dir.files().without_info_logs();
    refused(dir, what, expected);
    let changes = before.changes(&dir.files().without_info_logs());
    assert!(
        changes.is_empty(),
        "{what}: a refused start changed the data directory:\n  {}",
        changes.join("\n  ")
    );
}

/// Every key and value of every column family, read with RocksDB alone.
fn contents(store: &Path) -> BTreeMap<(String, Vec<u8>), Vec<u8>> {
    let options = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&options, store).unwrap();
    let db = rocksdb::DB::open_cf_for_read_only(&options, store, &cfs, false).unwrap();
    let mut out = BTreeMap::new();
    for name in &cfs {
        let cf = db.cf_handle(name).unwrap();
        for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (key, value) = item.unwrap();
            out.insert((name.clone(), key.to_vec()), value.to_vec());
        }
    }
    out
}

/// [`refused`] for damage only Conclave detects (RocksDB opens the
/// database): the store's contents are unchanged by the attempt.
fn assert_refused_same_contents(dir: &DataDir, what: &str, expected: &[&str]) {
    let before = contents(&dir.store_dir());
    refused(dir, what, expected);
    assert!(
        before == contents(&dir.store_dir()),
        "{what}: a refused start changed the store's contents"
    );
}

/// Opens the store with RocksDB directly (no Conclave checks), lets `f`
/// change it, and flushes everything into table files.
fn with_rocksdb<T>(store: &Path, f: impl FnOnce(&rocksdb::DB) -> T) -> T {
    let options = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&options, store).unwrap();
    let db = rocksdb::DB::open_cf(&options, store, &cfs).unwrap();
    let out = f(&db);
    for name in &cfs {
        db.flush_cf(db.cf_handle(name).unwrap()).unwrap();
    }
    out
}

/// Replaces one value; returns the old one.
fn replace_value(store: &Path, cf: &str, key: &[u8], damage: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    with_rocksdb(store, |db| {
        let handle = db.cf_handle(cf).unwrap();
        let original = db
            .get_cf(handle, key)
            .unwrap()
            .expect("the value to damage");
        let mut value = original.clone();
        damage(&mut value);
        db.put_cf(handle, key, value).unwrap();
        original
    })
}

fn put_value(store: &Path, cf: &str, key: &[u8], value: &[u8]) {
    with_rocksdb(store, |db| {
        db.put_cf(db.cf_handle(cf).unwrap(), key, value).unwrap()
    });
}

fn files_named(dir: &Path, matches: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    out.sort();
    out
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn cut_to_half(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

// ------------------------------------------- damage only Conclave detects

#[test]
fn corrupted_log_entry_is_refused() {
    let dir = populated("corrupt-log", Stop::Orderly);
    let key = 5u64.to_be_bytes();
    let original = replace_value(&dir.store_dir(), "log", &key, |v| {
        let middle = v.len() / 2;
        v[middle] ^= 0x01;
    });
    assert_refused_same_contents(
        &dir,
        "a log entry with a flipped bit",
        &["corrupt log entry 5", "checksum mismatch"],
    );
    put_value(&dir.store_dir(), "log", &key, &original);
    assert_serves_everything(&dir);
}

#[test]
fn corrupted_node_is_refused() {
    let dir = populated("corrupt-node", Stop::Orderly);
    let original = replace_value(&dir.store_dir(), "tree", b"/bad/n7", |v| v[10] ^= 0x10);
    assert_refused_same_contents(
        &dir,
        "a node record with a flipped bit",
        &["corrupt node record /bad/n7", "checksum mismatch"],
    );
    put_value(&dir.store_dir(), "tree", b"/bad/n7", &original);
    assert_serves_everything(&dir);
}

#[test]
fn unknown_format_version_is_refused() {
    let dir = populated("format-version", Stop::Orderly);
    put_value(
        &dir.store_dir(),
        "meta",
        b"format_version",
        &3u32.to_be_bytes(),
    );
    assert_refused_same_contents(
        &dir,
        "a store of format version 3",
        &[
            "storage format version 3",
            "this build reads versions 1 to 2",
        ],
    );
    // Version 1 (an earlier release's store: the same layout, its tree in
    // generation 0) is read as it is.
    put_value(
        &dir.store_dir(),
        "meta",
        b"format_version",
        &1u32.to_be_bytes(),
    );
    assert_serves_everything(&dir);
}

// ----------------------------------------- damage RocksDB refuses itself

#[test]
fn corrupted_table_files_are_refused() {
    // RocksDB opens the database (the damage is in data blocks) and the
    // first read fails. The table files, the evidence, stay as they were
    // (the rest is `refused_stores_are_not_rewritten`).
    let dir = populated("corrupt-sst", Stop::Orderly);
    damage_table_files(&dir);
    let tables = |dir: &DataDir| {
        let mut files = dir.files();
        files
            .0
            .retain(|path, _| path.to_string_lossy().ends_with(".sst"));
        files
    };
    let before = tables(&dir);
    refused(
        &dir,
        "table files with a flipped byte",
        &["Corruption", "block checksum mismatch"],
    );
    let changes = before.changes(&tables(&dir));
    assert!(
        changes.is_empty(),
        "table files changed:\n  {}",
        changes.join("\n  ")
    );
}

/// Flips a byte inside the first data block of every table file.
fn damage_table_files(dir: &DataDir) {
    for sst in files_named(&dir.store_dir(), |n| n.ends_with(".sst")) {
        flip_byte(&sst, 5);
    }
}

#[test]
fn missing_table_file_is_refused() {
    let dir = populated("missing-sst", Stop::Orderly);
    let ssts = files_named(&dir.store_dir(), |n| n.ends_with(".sst"));
    let victim = ssts.last().expect("a table file");
    std::fs::remove_file(victim).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert_refused_untouched(
        &dir,
        "a deleted table file",
        &["corrupt RocksDB database", "No such file", &name],
    );
}

#[test]
fn truncated_table_file_is_refused() {
    let dir = populated("cut-sst", Stop::Orderly);
    let ssts = files_named(&dir.store_dir(), |n| n.ends_with(".sst"));
    let victim = ssts.last().expect("a table file");
    cut_to_half(victim);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert_refused_untouched(
        &dir,
        "a table file cut in half",
        &["corrupt RocksDB database", "size mismatch", &name],
    );
}

#[test]
fn truncated_manifest_is_refused() {
    let dir = populated("cut-manifest", Stop::Orderly);
    let manifests = files_named(&dir.store_dir(), |n| n.starts_with("MANIFEST-"));
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    cut_to_half(&manifests[0]);
    assert_refused_untouched(
        &dir,
        "a MANIFEST cut in half",
        &["corrupt RocksDB database"],
    );
}

#[test]
fn missing_write_ahead_log_is_refused() {
    // Killed: the latest writes are only in the WAL.
    let dir = populated("missing-wal", Stop::Killed);
    let wals = files_named(&dir.store_dir(), |n| n.ends_with(".log"));
    assert!(!wals.is_empty(), "a killed server leaves its WAL");
    for wal in &wals {
        std::fs::remove_file(wal).unwrap();
    }
    assert_refused_untouched(
        &dir,
        "deleted write-ahead log files",
        &["corrupt RocksDB database", "no WAL files"],
    );
}

#[test]
fn missing_current_file_is_refused() {
    let dir = populated("missing-current", Stop::Orderly);
    std::fs::remove_file(dir.store_dir().join("CURRENT")).unwrap();
    assert_refused_untouched(
        &dir,
        "a store without its CURRENT file",
        &["is not a Conclave data directory", "no CURRENT file"],
    );
}

// ------------------------------------------------------- not a store

#[test]
fn rocksdb_database_of_something_else_is_refused() {
    let dir = DataDir::new("foreign-rocksdb");
    {
        let db = rocksdb::DB::open_default(dir.store_dir()).unwrap();
        db.put(b"someone else's", b"data").unwrap();
        db.flush().unwrap();
    }
    assert_refused_untouched(
        &dir,
        "a RocksDB database without Conclave's column families",
        &[
            "is not a Conclave data directory",
            "without Conclave's `meta` column family",
        ],
    );
}

#[test]
fn directory_that_is_not_a_store_is_refused() {
    let dir = DataDir::new("not-a-store");
    let store = dir.store_dir();
    std::fs::create_dir_all(store.join("version-2")).unwrap();
    std::fs::write(store.join("version-2/log.100000001"), b"ZKLG").unwrap();
    std::fs::write(store.join("notes.txt"), b"precious").unwrap();
    assert_refused_untouched(
        &dir,
        "a directory of other files",
        &["is not a Conclave data directory", "notes.txt, version-2"],
    );

    let dir = DataDir::new("store-is-a-file");
    std::fs::write(dir.store_dir(), b"not a directory").unwrap();
    assert_refused_untouched(
        &dir,
        "a store path that is a file",
        &["is not a Conclave data directory", "it is not a directory"],
    );
}

#[test]
fn store_locked_by_a_running_server_is_refused() {
    let dir = DataDir::new("locked");
    let first = dir.start(&[]);
    let mut client = RawClient::connect(first.addr, 30_000).unwrap();
    assert_eq!(
        client.create("/held", b"by the first server").unwrap().err,
        0
    );
    // The first server writes the create's effects just after answering:
    // wait until its files stop changing, so that any change seen below is
    // the second server's.
    let mut last = dir.files().without_info_logs();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = dir.files().without_info_logs();
        if now == last {
            break;
        }
        last = now;
    }

    assert_refused_untouched(
        &dir,
        "a store another server has open",
        &["is locked", "another Conclave server"],
    );
    let inspected = dir.inspect(false);
    assert!(!inspected.status.success());
    assert!(
        inspected.stderr.contains("is locked"),
        "{}",
        inspected.stderr
    );

    // The first server never noticed.
    let (data, _) = client.get_data("/held").unwrap().unwrap();
    assert_eq!(data.as_deref(), Some(&b"by the first server"[..]));
    assert_eq!(client.create("/still-serving", b"").unwrap().err, 0);
    drop(first);
}

// ------------------------------------------------ known storage problems

/// `dataDir` of an Apache ZooKeeper server (`version-2` with its snapshots
/// and logs): Conclave cannot read them, so it refuses to start there and
/// says why, instead of serving an empty tree beside them.
#[test]
fn zookeeper_data_directory_is_not_silently_ignored() {
    let dir = DataDir::new("zookeeper-data");
    let version2 = dir.data_dir().join("version-2");
    std::fs::create_dir_all(&version2).unwrap();
    std::fs::write(version2.join("snapshot.0"), b"ZooKeeper snapshot").unwrap();
    std::fs::write(version2.join("log.1"), b"ZKLG").unwrap();
    let mut server = dir.spawn(&[]);
    std::thread::sleep(Duration::from_secs(2));
    let log = server.log();
    assert!(
        !server.running() || log.contains("version-2"),
        "the server serves an empty tree from a ZooKeeper data directory and says nothing \
         about its version-2 directory; log:\n{log}"
    );
}

/// A refused store is not rewritten: were it opened read-write before
/// Conclave's checks, RocksDB would replace its MANIFEST, CURRENT, OPTIONS
/// and WAL (and might compact table files). It is checked through a
/// read-only handle first.
#[test]
fn refused_stores_are_not_rewritten() {
    let dir = populated("rewritten-version", Stop::Orderly);
    put_value(
        &dir.store_dir(),
        "meta",
        b"format_version",
        &3u32.to_be_bytes(),
    );
    assert_refused_untouched(&dir, "a store of format version 3", &["format version 3"]);

    let dir = populated("rewritten-log", Stop::Orderly);
    replace_value(&dir.store_dir(), "log", &5u64.to_be_bytes(), |v| v[30] ^= 1);
    assert_refused_untouched(
        &dir,
        "a log entry with a flipped bit",
        &["corrupt log entry 5"],
    );
}

/// One flipped byte in the middle of the live write-ahead log, after a
/// SIGKILL (the latest writes are only there). Point-in-time recovery would
/// take the damaged record for the end of the WAL, serve a prefix of the
/// log without a word and delete the WAL that still held the acknowledged
/// writes after it; the server must refuse to start instead.
#[test]
fn corrupted_record_inside_the_wal_is_not_silently_dropped() {
    let dir = populated("wal-record", Stop::Killed);
    let wals = files_named(&dir.store_dir(), |n| n.ends_with(".log"));
    let wal = wals.last().expect("a write-ahead log");
    let len = usize::try_from(std::fs::metadata(wal).unwrap().len()).unwrap();
    flip_byte(wal, len / 3);

    let mut server = dir.spawn(&[]);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) && server.running() {
        if crate::support::four_letter(server.addr, "srvr").is_ok_and(|s| s.contains("Mode:")) {
            let mut client = RawClient::connect(server.addr, 30_000).unwrap();
            let (children, _) = client.children("/bad").unwrap().unwrap();
            panic!(
                "the server started on a WAL with a damaged record and serves {} of the {NODES} \
                 acknowledged znodes, without an error; log:\n{}",
                children.len(),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!server.running(), "neither refused nor serving");
    assert!(server.log().contains("orrupt"), "{}", server.log());
}
