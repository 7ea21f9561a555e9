//! The storage API's conformance suite, run against [`MemoryStore`] and
//! [`RocksStore`]: every generic scenario below is instantiated for both
//! (`memory::*` and `rocks::*`), then come the RocksDB-only refusal cases,
//! the MemoryStore-only crash model, and a property test that random
//! operation sequences observe the same results on both stores.
//!
//! One test binary on purpose: each binary that links RocksDB costs seconds
//! and about 1.5 GB of memory to link.

use std::path::{Path, PathBuf};

use proto::Acl;
use storage::memory::MemoryStore;
use storage::rocks::{COLUMN_FAMILIES, RocksStore};
use storage::{
    ApplyBatch, EntryKind, FORMAT_VERSION, HardState, LogEntry, NodeRecord, StorageError, Store,
    decode_txn, encode_txn,
};
use tempfile::TempDir;
use tree::{SessionRecord, StatPersisted, Txn, TxnOp};

// ---------------------------------------------------------------- builders

/// Makes stores for a scenario and "restarts" them.
trait Builder {
    type S: Store + std::fmt::Debug;
    /// A new, empty store.
    fn fresh(&mut self) -> Self::S;
    /// The store after a restart. For RocksDB: drop and open the same
    /// directory. For memory: a crash, the harshest restart (only synced
    /// state survives), so scenarios must sync what they expect back.
    fn restart(&mut self, store: Self::S) -> Self::S;
}

#[derive(Default)]
struct MemoryBuilder;

impl Builder for MemoryBuilder {
    type S = MemoryStore;
    fn fresh(&mut self) -> MemoryStore {
        MemoryStore::new()
    }
    fn restart(&mut self, mut store: MemoryStore) -> MemoryStore {
        store.crash();
        store
    }
}

#[derive(Default)]
struct RocksBuilder {
    dirs: Vec<TempDir>,
}

impl RocksBuilder {
    /// A path inside a fresh temporary directory that does not exist yet.
    fn new_path(&mut self) -> PathBuf {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("data");
        self.dirs.push(tmp);
        path
    }
}

impl Builder for RocksBuilder {
    type S = RocksStore;
    fn fresh(&mut self) -> RocksStore {
        let path = self.new_path();
        RocksStore::open(&path).expect("create store")
    }
    fn restart(&mut self, store: RocksStore) -> RocksStore {
        let dir = store.dir().to_owned();
        drop(store);
        RocksStore::open(&dir).expect("reopen store")
    }
}

// ---------------------------------------------------------------- helpers

fn txn_entry(index: u64, term: u64) -> LogEntry {
    let txn = Txn {
        session_id: 0x1234,
        cxid: index as i32,
        zxid: index as i64,
        time_ms: 1_700_000_000_000 + index as i64,
        op: TxnOp::SetData {
            path: format!("/node{index}"),
            data: Some(vec![index as u8; 3]),
            version: -1,
        },
    };
    LogEntry {
        index,
        term,
        kind: EntryKind::Txn,
        data: encode_txn(&txn),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<LogEntry> {
    range.map(|i| txn_entry(i, term)).collect()
}

fn node(zxid: i64, data: &[u8]) -> NodeRecord {
    NodeRecord {
        data: Some(data.to_vec()),
        acl: std::sync::Arc::new(vec![Acl::new(31, "world", "anyone")]),
        stat: StatPersisted::created(zxid, 1000 + zxid, 0),
    }
}

fn session(timeout_ms: i32) -> SessionRecord {
    SessionRecord {
        timeout_ms,
        password: vec![7; 16],
    }
}

fn apply_marker(index: u64) -> ApplyBatch {
    ApplyBatch {
        applied_index: index,
        applied_zxid: index as i64,
        ..ApplyBatch::default()
    }
}

fn indexes(list: &[LogEntry]) -> Vec<u64> {
    list.iter().map(|e| e.index).collect()
}

/// The observable log, for comparing a store before and after something.
fn log_view<S: Store>(s: &S) -> (u64, u64, Vec<LogEntry>) {
    let all = s
        .entries(s.first_index(), s.last_index() + 1)
        .expect("read whole log");
    (s.first_index(), s.last_index(), all)
}

// ---------------------------------------------------------------- scenarios

fn empty_store<B: Builder>(b: &mut B) {
    let s = b.fresh();
    assert_eq!(s.first_index(), 1);
    assert_eq!(s.last_index(), 0);
    assert_eq!(s.term(0).expect("term(0)"), 0);
    assert!(s.term(1).expect_err("term(1)").is_unavailable());
    assert_eq!(s.entries(1, 1).expect("empty range"), vec![]);
    assert!(s.entries(0, 1).expect_err("below first").is_compacted());
    assert!(s.entries(1, 2).expect_err("past end").is_unavailable());
    let meta = s.meta();
    assert_eq!(meta.format_version, FORMAT_VERSION);
    assert_eq!(meta.applied_index, 0);
    assert_eq!(meta.hard_state, HardState::default());
    assert_eq!(meta.config, None);
    assert_eq!(meta.compacted, (0, 0));
    let loaded = s.load().expect("load");
    assert_eq!(loaded.meta, meta);
    assert!(loaded.nodes.is_empty() && loaded.sessions.is_empty());
}

fn append_and_read_ranges<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=3, 1)).expect("append 1..=3");
    s.append(&entries(4..=6, 2)).expect("append 4..=6");
    assert_eq!((s.first_index(), s.last_index()), (1, 6));
    assert_eq!(s.entries(1, 7).expect("all"), {
        let mut all = entries(1..=3, 1);
        all.extend(entries(4..=6, 2));
        all
    });
    assert_eq!(indexes(&s.entries(2, 5).expect("2..5")), vec![2, 3, 4]);
    assert_eq!(s.entries(4, 4).expect("empty"), vec![]);
    assert_eq!(s.entries(7, 7).expect("empty at end"), vec![]);
    for i in 1..=3 {
        assert_eq!(s.term(i).expect("term"), 1);
    }
    for i in 4..=6 {
        assert_eq!(s.term(i).expect("term"), 2);
    }
    assert!(matches!(
        s.entries(5, 8),
        Err(StorageError::Unavailable {
            index: 7,
            last_index: 6
        })
    ));
    assert!(matches!(
        s.term(7),
        Err(StorageError::Unavailable { index: 7, .. })
    ));
    assert!(matches!(
        s.entries(4, 3),
        Err(StorageError::InvalidRange { lo: 4, hi: 3 })
    ));
    // The payload is the transaction, intact.
    let e = s.entries(2, 3).expect("entry 2").remove(0);
    assert_eq!(decode_txn(&e.data).expect("decode").zxid, 2);
    // Other kinds keep their kind.
    let config = LogEntry {
        index: 7,
        term: 3,
        kind: EntryKind::Config,
        data: b"server.1=a:2888:3888".to_vec(),
    };
    let empty = LogEntry {
        index: 8,
        term: 3,
        kind: EntryKind::Empty,
        data: vec![],
    };
    s.append(&[config.clone(), empty.clone()])
        .expect("append kinds");
    assert_eq!(s.entries(7, 9).expect("kinds"), vec![config, empty]);
}

fn entries_limited_by_size<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=5, 1)).expect("append");
    let one = s.entries(1, 2).expect("one");
    let all = s.entries(1, 6).expect("all");
    // Every entry here has the same size; measure it through the limit.
    let sizes: Vec<usize> = (0..=5u64)
        .map(|n| s.entries_limited(1, 6, n * 1000).expect("limited").len())
        .collect();
    assert_eq!(sizes[0], 1, "at least one entry even with a limit of 0");
    assert_eq!(s.entries_limited(1, 6, u64::MAX).expect("unlimited"), all);
    assert_eq!(
        s.entries_limited(3, 6, 0).expect("zero"),
        all[2..3].to_vec()
    );
    assert_eq!(s.entries_limited(1, 2, 0).expect("zero"), one);
    assert_eq!(s.entries_limited(2, 2, 0).expect("empty"), vec![]);
    // Find the per-entry size: the largest limit that returns exactly k.
    let mut size = 1u64;
    while s.entries_limited(1, 6, size).expect("probe").len() < 2 {
        size += 1;
    }
    // `size` now fits two entries exactly: each is size/2.
    assert_eq!(size % 2, 0);
    let each = size / 2;
    for k in 1..=5u64 {
        assert_eq!(
            s.entries_limited(1, 6, k * each).expect("k").len() as u64,
            k
        );
        if k > 1 {
            assert_eq!(
                s.entries_limited(1, 6, k * each - 1).expect("k-1").len() as u64,
                k - 1
            );
        }
    }
    assert!(
        s.entries_limited(0, 2, 10)
            .expect_err("compacted")
            .is_compacted()
    );
    assert!(
        s.entries_limited(1, 7, 10)
            .expect_err("past end")
            .is_unavailable()
    );
}

fn append_overwrites_a_suffix<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=5, 1)).expect("append");
    s.append(&entries(3..=4, 2)).expect("overwrite from 3");
    assert_eq!(
        s.last_index(),
        4,
        "entry 5 is gone with the overwritten suffix"
    );
    assert_eq!(
        s.entries(1, 5).expect("read"),
        [entries(1..=2, 1), entries(3..=4, 2)].concat()
    );
    assert!(s.entries(5, 6).expect_err("5 gone").is_unavailable());
    assert!(s.term(5).expect_err("5 gone").is_unavailable());
    // Overwriting only the last entry, and appending right after the end.
    s.append(&entries(4..=4, 3)).expect("overwrite last");
    s.append(&entries(5..=6, 3)).expect("continue");
    assert_eq!(s.last_index(), 6);
    assert_eq!(
        (1..=6)
            .map(|i| s.term(i).expect("term"))
            .collect::<Vec<_>>(),
        vec![1, 1, 2, 3, 3, 3]
    );
    // Overwriting from the very first entry.
    s.append(&entries(1..=2, 4)).expect("overwrite all");
    assert_eq!((s.first_index(), s.last_index()), (1, 2));
    assert_eq!(s.entries(1, 3).expect("read"), entries(1..=2, 4));
}

fn append_refuses_gaps<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    assert!(matches!(
        s.append(&entries(2..=3, 1)),
        Err(StorageError::InvalidAppend { index: 2, .. })
    ));
    assert!(matches!(
        s.append(&entries(0..=1, 1)),
        Err(StorageError::InvalidAppend { index: 0, .. })
    ));
    s.append(&[]).expect("empty append is a no-op");
    assert_eq!(s.last_index(), 0);
    s.append(&entries(1..=3, 1)).expect("append");
    assert!(matches!(
        s.append(&entries(5..=5, 1)),
        Err(StorageError::InvalidAppend { index: 5, .. })
    ));
    let mut not_consecutive = entries(4..=5, 1);
    not_consecutive[1].index = 6;
    assert!(matches!(
        s.append(&not_consecutive),
        Err(StorageError::InvalidAppend { index: 6, .. })
    ));
    let backwards = vec![txn_entry(4, 1), txn_entry(3, 1)];
    assert!(matches!(
        s.append(&backwards),
        Err(StorageError::InvalidAppend { .. })
    ));
    // Refused appends changed nothing.
    assert_eq!(s.last_index(), 3);
    assert_eq!(s.entries(1, 4).expect("read"), entries(1..=3, 1));
}

fn truncate_suffix<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=6, 1)).expect("append");
    s.truncate_suffix(4).expect("truncate from 4");
    assert_eq!((s.first_index(), s.last_index()), (1, 3));
    assert!(s.entries(1, 5).expect_err("4 gone").is_unavailable());
    assert!(s.term(4).expect_err("4 gone").is_unavailable());
    s.truncate_suffix(10).expect("past the end is a no-op");
    s.truncate_suffix(4).expect("at the end is a no-op");
    assert_eq!(s.last_index(), 3);
    s.append(&entries(4..=5, 2))
        .expect("append after truncation");
    assert_eq!(s.term(4).expect("term"), 2);
    s.truncate_suffix(1).expect("truncate everything");
    assert_eq!((s.first_index(), s.last_index()), (1, 0));
    assert_eq!(s.entries(1, 1).expect("empty"), vec![]);
    assert!(matches!(
        s.truncate_suffix(0),
        Err(StorageError::InvalidLogChange { index: 0, .. })
    ));
    s.append(&entries(1..=2, 3)).expect("append from 1 again");
    assert_eq!(s.entries(1, 3).expect("read"), entries(1..=2, 3));
}

fn compact_prefix<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    let log: Vec<LogEntry> = (1..=10).map(|i| txn_entry(i, i / 3 + 1)).collect();
    s.append(&log).expect("append");
    s.apply(&apply_marker(7)).expect("apply through 7");
    s.compact_prefix(5).expect("compact through 5");
    assert_eq!((s.first_index(), s.last_index()), (6, 10));
    assert_eq!(s.meta().compacted, (5, 5 / 3 + 1));
    assert_eq!(s.term(5).expect("term of the compacted boundary"), 2);
    assert!(matches!(
        s.term(4),
        Err(StorageError::Compacted {
            index: 4,
            first_index: 6
        })
    ));
    assert!(s.term(0).expect_err("term(0)").is_compacted());
    assert!(s.entries(5, 7).expect_err("5 compacted").is_compacted());
    assert_eq!(s.entries(6, 11).expect("rest"), log[5..].to_vec());
    assert_eq!(s.entries(6, 6).expect("empty at first"), vec![]);

    s.compact_prefix(3).expect("already compacted: no-op");
    s.compact_prefix(5).expect("same point: no-op");
    assert_eq!(s.first_index(), 6);
    assert!(matches!(
        s.compact_prefix(8),
        Err(StorageError::InvalidLogChange { index: 8, .. })
    ));
    // Appends and truncations into the compacted prefix are refused.
    assert!(matches!(
        s.append(&entries(5..=6, 9)),
        Err(StorageError::InvalidAppend { index: 5, .. })
    ));
    assert!(matches!(
        s.truncate_suffix(5),
        Err(StorageError::InvalidLogChange { index: 5, .. })
    ));

    // Compact everything: the log is empty and ends at the boundary.
    s.apply(&apply_marker(10)).expect("apply through 10");
    s.compact_prefix(10).expect("compact all");
    assert_eq!((s.first_index(), s.last_index()), (11, 10));
    assert_eq!(s.term(10).expect("boundary term"), 10 / 3 + 1);
    assert_eq!(s.entries(11, 11).expect("empty"), vec![]);
    assert!(s.entries(10, 11).expect_err("compacted").is_compacted());
    assert!(s.term(11).expect_err("past end").is_unavailable());
    assert!(matches!(
        s.append(&entries(10..=10, 9)),
        Err(StorageError::InvalidAppend { index: 10, .. })
    ));
    assert!(matches!(
        s.append(&entries(12..=12, 9)),
        Err(StorageError::InvalidAppend { index: 12, .. })
    ));
    s.append(&entries(11..=12, 9))
        .expect("append after the boundary");
    assert_eq!((s.first_index(), s.last_index()), (11, 12));
    assert_eq!(s.term(11).expect("term"), 9);

    s.sync().expect("sync");
    let s = b.restart(s);
    assert_eq!((s.first_index(), s.last_index()), (11, 12));
    assert_eq!(s.term(10).expect("boundary term after restart"), 4);
    assert_eq!(s.meta().compacted, (10, 4));
}

fn applied_entries_are_protected<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=5, 1)).expect("append");
    s.apply(&apply_marker(3)).expect("apply through 3");
    assert!(matches!(
        s.append(&entries(3..=4, 2)),
        Err(StorageError::InvalidAppend { index: 3, .. })
    ));
    assert!(matches!(
        s.truncate_suffix(3),
        Err(StorageError::InvalidLogChange { index: 3, .. })
    ));
    s.append(&entries(4..=4, 2))
        .expect("overwrite above applied");
    assert_eq!(s.last_index(), 4);
    s.truncate_suffix(4).expect("truncate above applied");
    assert_eq!(s.last_index(), 3);
    assert!(matches!(
        s.apply(&apply_marker(2)),
        Err(StorageError::InvalidApply { .. })
    ));
    assert!(matches!(
        s.apply(&apply_marker(4)),
        Err(StorageError::InvalidApply { .. })
    ));
    s.apply(&apply_marker(3))
        .expect("same applied index is fine");
    assert_eq!(s.meta().applied_index, 3);
}

fn hard_state_and_config<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    let hs = HardState {
        term: 3,
        vote: 2,
        commit: 17,
    };
    s.set_hard_state(hs).expect("hard state");
    s.set_config(b"first").expect("config");
    s.set_config(b"server.1=10.0.0.1:2888:3888;2181")
        .expect("config");
    assert_eq!(s.meta().hard_state, hs);
    assert_eq!(
        s.meta().config.as_deref(),
        Some(&b"server.1=10.0.0.1:2888:3888;2181"[..])
    );
    s.set_config(b"").expect("empty config");
    assert_eq!(s.meta().config, Some(vec![]));
    s.sync().expect("sync");
    let s = b.restart(s);
    assert_eq!(s.meta().hard_state, hs);
    assert_eq!(s.meta().config, Some(vec![]));
    assert_eq!(s.load().expect("load").meta, s.meta());
}

fn apply_batches_and_load<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=4, 1)).expect("append");
    let first = ApplyBatch {
        applied_index: 2,
        applied_zxid: 0x1_0000_0002,
        nodes: vec![
            ("/zookeeper".into(), Some(node(0, b""))),
            ("/a/b".into(), Some(node(2, b"ab"))),
            ("/a".into(), Some(node(1, b"a"))),
            ("/a-b".into(), Some(node(2, b"a-b"))),
            ("/".into(), Some(node(0, b""))),
            ("/b".into(), Some(node(2, b"b"))),
            ("/\u{e9}t\u{e9}/\u{1f600}".into(), Some(node(2, b"utf8"))),
        ],
        sessions: vec![
            (0x0100_0000_0000_0001, Some(session(30_000))),
            (-5, Some(session(4_000))),
            (7, Some(session(6_000))),
        ],
    };
    s.apply(&first).expect("apply first");
    let mut loaded = s.load().expect("load");
    assert_eq!(loaded.meta.applied_index, 2);
    assert_eq!(loaded.meta.applied_zxid, 0x1_0000_0002);
    let paths: Vec<&str> = loaded.nodes.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "/",
            "/a",
            "/a-b",
            "/a/b",
            "/b",
            "/zookeeper",
            "/\u{e9}t\u{e9}/\u{1f600}"
        ],
        "nodes in path (byte) order"
    );
    assert_eq!(loaded.nodes[3].1, node(2, b"ab"));
    let ids: Vec<i64> = loaded.sessions.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        vec![-5, 7, 0x0100_0000_0000_0001],
        "sessions in id order"
    );
    assert_eq!(loaded.sessions[0].1, session(4_000));

    let mut null_data = node(4, b"");
    null_data.data = None;
    null_data.acl = std::sync::Arc::new(vec![]);
    let second = ApplyBatch {
        applied_index: 4,
        applied_zxid: 0x1_0000_0004,
        nodes: vec![
            ("/a/b".into(), None),
            ("/b".into(), Some(node(4, b"b2"))),
            ("/c".into(), Some(node(4, b"c"))),
            ("/c".into(), None), // later change of the same path wins
            ("/d".into(), None), // deleting a missing node is fine
            ("/e".into(), None),
            ("/e".into(), Some(null_data.clone())),
        ],
        sessions: vec![(7, None), (-5, Some(session(9_000)))],
    };
    s.apply(&second).expect("apply second");
    loaded = s.load().expect("load");
    let paths: Vec<&str> = loaded.nodes.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "/",
            "/a",
            "/a-b",
            "/b",
            "/e",
            "/zookeeper",
            "/\u{e9}t\u{e9}/\u{1f600}"
        ]
    );
    assert_eq!(loaded.nodes[3].1, node(4, b"b2"));
    assert_eq!(loaded.nodes[4].1, null_data);
    assert_eq!(
        loaded.sessions,
        vec![
            (-5, session(9_000)),
            (0x0100_0000_0000_0001, session(30_000))
        ]
    );
    assert_eq!(loaded.meta, s.meta());

    s.sync().expect("sync");
    let s = b.restart(s);
    assert_eq!(s.load().expect("load after restart"), loaded);
}

fn restart_keeps_everything_synced<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=20, 1)).expect("append");
    s.append(&entries(15..=25, 2)).expect("overwrite");
    s.apply(&ApplyBatch {
        nodes: vec![("/x".into(), Some(node(12, b"x")))],
        sessions: vec![(42, Some(session(5000)))],
        ..apply_marker(12)
    })
    .expect("apply");
    s.compact_prefix(10).expect("compact");
    s.truncate_suffix(24).expect("truncate");
    s.set_hard_state(HardState {
        term: 2,
        vote: 1,
        commit: 23,
    })
    .expect("hard state");
    s.set_config(b"cfg").expect("config");
    s.sync().expect("sync");
    let before = (log_view(&s), s.meta(), s.load().expect("load"));
    let mut s = b.restart(s);
    assert_eq!((log_view(&s), s.meta(), s.load().expect("load")), before);
    // And the restarted store keeps working.
    s.append(&entries(24..=24, 3))
        .expect("append after restart");
    s.sync().expect("sync");
    let s = b.restart(s);
    assert_eq!(s.last_index(), 24);
    assert_eq!(s.term(24).expect("term"), 3);
}

fn installing_an_image_replaces_log_tree_and_sessions<B: Builder>(b: &mut B) {
    let mut s = b.fresh();
    s.append(&entries(1..=20, 1)).expect("append");
    s.apply(&ApplyBatch {
        nodes: vec![
            ("/".into(), Some(node(1, b""))),
            ("/old".into(), Some(node(5, b"old"))),
        ],
        sessions: vec![(7, Some(session(4000))), (-3, Some(session(4000)))],
        ..apply_marker(5)
    })
    .expect("apply");
    let image = storage::Image {
        index: 40,
        term: 3,
        zxid: (3 << 32) | 9,
        nodes: vec![
            ("/".into(), node(1, b"")),
            ("/new".into(), node(30, b"new")),
        ],
        sessions: vec![(42, session(6000))],
    };
    s.install_image(&image).expect("install");
    let check = |s: &B::S| {
        assert_eq!(s.first_index(), 41);
        assert_eq!(s.last_index(), 40);
        assert_eq!(s.term(40).expect("term of the image's index"), 3);
        let loaded = s.load().expect("load");
        assert_eq!(loaded.nodes, image.nodes);
        assert_eq!(loaded.sessions, image.sessions);
        assert_eq!(loaded.meta.applied_index, 40);
        assert_eq!(loaded.meta.applied_zxid, image.zxid);
        assert_eq!(loaded.meta.compacted, (40, 3));
    };
    check(&s);
    s.sync().expect("sync");
    let mut s = b.restart(s);
    check(&s);
    // The log goes on after the image.
    s.append(&entries(41..=42, 3))
        .expect("append after the image");
    assert_eq!(s.last_index(), 42);
    let round_trip = storage::decode_image(&storage::encode_image(&image)).expect("decode");
    assert_eq!(round_trip, image);
    let mut damaged = storage::encode_image(&image);
    damaged[10] ^= 1;
    assert!(storage::decode_image(&damaged).is_err());
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $scenario() { super::$scenario(&mut super::MemoryBuilder); } )*
        }
        mod rocks {
            $( #[test] fn $scenario() { super::$scenario(&mut super::RocksBuilder::default()); } )*
        }
    };
}

conformance!(
    empty_store,
    append_and_read_ranges,
    entries_limited_by_size,
    append_overwrites_a_suffix,
    append_refuses_gaps,
    truncate_suffix,
    compact_prefix,
    applied_entries_are_protected,
    hard_state_and_config,
    apply_batches_and_load,
    restart_keeps_everything_synced,
    installing_an_image_replaces_log_tree_and_sessions,
);

// ---------------------------------------------------------------- MemoryStore crash model

#[test]
fn memory_crash_drops_unsynced_mutations_and_keeps_synced_ones() {
    let mut s = MemoryStore::new();
    s.append(&entries(1..=3, 1)).expect("append");
    s.apply(&ApplyBatch {
        nodes: vec![("/synced".into(), Some(node(2, b"s")))],
        ..apply_marker(2)
    })
    .expect("apply");
    s.sync().expect("sync");
    assert_eq!(s.unsynced(), 0);
    let synced = (log_view(&s), s.load().expect("load"));

    s.append(&entries(4..=6, 1)).expect("append unsynced");
    s.apply(&ApplyBatch {
        nodes: vec![
            ("/synced".into(), None),
            ("/unsynced".into(), Some(node(5, b"u"))),
        ],
        sessions: vec![(1, Some(session(1000)))],
        ..apply_marker(5)
    })
    .expect("apply unsynced");
    s.set_hard_state(HardState {
        term: 9,
        vote: 9,
        commit: 9,
    })
    .expect("hard state");
    s.set_config(b"new").expect("config");
    s.truncate_suffix(6).expect("truncate");
    assert_eq!(s.unsynced(), 5);
    s.crash();
    assert_eq!((log_view(&s), s.load().expect("load")), synced);
    assert_eq!(s.unsynced(), 0);
    assert_eq!(s.meta().hard_state, HardState::default());
    assert_eq!(s.meta().config, None);
    // A crash right after a sync loses nothing.
    s.crash();
    assert_eq!((log_view(&s), s.load().expect("load")), synced);
}

#[test]
fn memory_crash_keeping_a_prefix_of_the_unsynced_mutations() {
    let mut s = MemoryStore::new();
    s.append(&entries(1..=2, 1)).expect("append");
    s.sync().expect("sync");
    s.append(&entries(3..=3, 1)).expect("1st unsynced");
    s.apply(&apply_marker(3)).expect("2nd unsynced");
    s.append(&entries(4..=4, 1)).expect("3rd unsynced");
    let mut two = s.clone();
    two.crash_keeping(2);
    assert_eq!(two.last_index(), 3);
    assert_eq!(two.meta().applied_index, 3);
    let mut one = s.clone();
    one.crash_keeping(1);
    assert_eq!((one.last_index(), one.meta().applied_index), (3, 0));
    let mut all = s.clone();
    all.crash_keeping(usize::MAX);
    assert_eq!((all.last_index(), all.meta().applied_index), (4, 3));
    s.crash_keeping(0);
    assert_eq!((s.last_index(), s.meta().applied_index), (2, 0));
}

#[test]
fn memory_sync_covers_compaction_and_later_crash_keeps_it() {
    let mut s = MemoryStore::new();
    s.append(&entries(1..=5, 1)).expect("append");
    s.apply(&apply_marker(4)).expect("apply");
    s.compact_prefix(3).expect("compact");
    s.sync().expect("sync");
    s.append(&entries(6..=6, 2)).expect("append");
    s.crash();
    assert_eq!((s.first_index(), s.last_index()), (4, 5));
    assert_eq!(s.term(3).expect("boundary"), 1);
}

// ---------------------------------------------------------------- RocksDB refusals

/// Opens a store directory with a raw RocksDB handle, as an attacker (or a
/// disk) would change it.
fn raw_db(dir: &Path) -> rocksdb::DB {
    let options = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&options, dir).expect("list cfs");
    rocksdb::DB::open_cf(&options, dir, cfs).expect("raw open")
}

fn created_store(b: &mut RocksBuilder) -> PathBuf {
    let mut s = b.fresh();
    s.append(&entries(1..=3, 1)).expect("append");
    s.apply(&ApplyBatch {
        nodes: vec![("/a".into(), Some(node(1, b"a")))],
        sessions: vec![(1, Some(session(1000)))],
        ..apply_marker(1)
    })
    .expect("apply");
    s.sync().expect("sync");
    s.dir().to_owned()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn rocks_second_open_of_an_open_store_is_locked() {
    let mut b = RocksBuilder::default();
    let s = b.fresh();
    let err = RocksStore::open(s.dir()).expect_err("second open");
    assert!(
        matches!(&err, StorageError::Locked { path, .. } if path == s.dir()),
        "{err:?}"
    );
    assert!(err.to_string().contains("locked"), "{err}");
    // Once the first is closed, the store opens.
    let dir = s.dir().to_owned();
    drop(s);
    RocksStore::open(&dir).expect("open after close");
}

#[test]
fn rocks_store_locked_by_another_process_is_refused() {
    // A child process (this test binary, running the helper below) holds
    // the store open while we try to open it.
    let mut b = RocksBuilder::default();
    let dir = created_store(&mut b);
    let ready = dir.with_extension("ready");
    let mut child = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "rocks_hold_store_open_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CONCLAVE_HOLD_STORE", &dir)
        .env("CONCLAVE_HOLD_READY", &ready)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn holder");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "holder never opened the store"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = RocksStore::open(&dir).expect_err("open while another process holds it");
    drop(child.stdin.take()); // tells the holder to exit
    child.wait().expect("holder exit");
    assert!(matches!(err, StorageError::Locked { .. }), "{err:?}");
    RocksStore::open(&dir).expect("open after the holder exited");
}

/// Not a real test: run by `rocks_store_locked_by_another_process_is_refused`
/// in a child process, it opens the store named in the environment and
/// holds it until its stdin closes. Without that environment it does nothing.
#[test]
fn rocks_hold_store_open_helper() {
    let (Some(dir), Some(ready)) = (
        std::env::var_os("CONCLAVE_HOLD_STORE"),
        std::env::var_os("CONCLAVE_HOLD_READY"),
    ) else {
        return;
    };
    let store = RocksStore::open(Path::new(&dir)).expect("holder open");
    std::fs::write(&ready, b"").expect("signal ready");
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    drop(store);
}

#[test]
fn rocks_unknown_format_version_is_refused() {
    let mut b = RocksBuilder::default();
    let dir = created_store(&mut b);
    {
        let db = raw_db(&dir);
        let meta = db.cf_handle("meta").expect("meta cf");
        db.put_cf(meta, b"format_version", 99u32.to_be_bytes())
            .expect("write version");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::UnknownFormatVersion { found: 99, supported: FORMAT_VERSION, path } if *path == dir),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[test]
fn rocks_garbage_in_the_log_is_corruption() {
    let mut b = RocksBuilder::default();
    let dir = created_store(&mut b);
    {
        let db = raw_db(&dir);
        let log = db.cf_handle("log").expect("log cf");
        db.put_cf(log, 2u64.to_be_bytes(), b"definitely not a log entry")
            .expect("write garbage");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("log entry 2") && message.contains("checksum"),
        "{message}"
    );
}

#[test]
fn rocks_a_flipped_bit_in_a_stored_value_is_corruption() {
    let mut b = RocksBuilder::default();
    let dir = created_store(&mut b);
    {
        let db = raw_db(&dir);
        let log = db.cf_handle("log").expect("log cf");
        let mut value = db
            .get_cf(log, 3u64.to_be_bytes())
            .expect("read")
            .expect("entry 3");
        value[10] ^= 0x04;
        db.put_cf(log, 3u64.to_be_bytes(), value).expect("write");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        err.to_string().contains("log entry 3") && err.to_string().contains("checksum"),
        "{err}"
    );

    // A corrupt node record is found when the store is opened (the
    // read-only validation decodes the whole tree).
    let dir = created_store(&mut b);
    {
        let db = raw_db(&dir);
        let tree = db.cf_handle("tree").expect("tree cf");
        let mut value = db.get_cf(tree, b"/a").expect("read").expect("node /a");
        let last = value.len() - 1;
        value[last] ^= 0x80;
        db.put_cf(tree, b"/a", value).expect("write");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::Corrupt { what, .. } if what.contains("/a")),
        "{err:?}"
    );
}

#[test]
fn rocks_missing_log_entries_are_corruption() {
    let mut b = RocksBuilder::default();
    // A hole in the middle.
    let dir = created_store(&mut b);
    {
        let db = raw_db(&dir);
        let log = db.cf_handle("log").expect("log cf");
        db.delete_cf(log, 2u64.to_be_bytes()).expect("delete");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(err.to_string().contains("missing"), "{err}");

    // A log that ends before the applied index (a truncated directory).
    let dir = created_store(&mut b);
    {
        let db = raw_db(&dir);
        let log = db.cf_handle("log").expect("log cf");
        for i in 1..=3u64 {
            db.delete_cf(log, i.to_be_bytes()).expect("delete");
        }
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::Corrupt { detail, .. } if detail.contains("applied index 1")),
        "{err:?}"
    );
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect()
}

#[test]
fn rocks_missing_write_ahead_log_is_refused() {
    let mut b = RocksBuilder::default();
    let dir = created_store(&mut b);
    let wals = wal_files(&dir);
    assert!(!wals.is_empty());
    for wal in wals {
        std::fs::remove_file(wal).expect("remove WAL");
    }
    let err = RocksStore::open(&dir).expect_err("open without its WAL");
    assert!(
        matches!(&err, StorageError::Corrupt { detail, .. } if detail.contains("WAL")),
        "{err:?}"
    );
}

#[test]
fn rocks_close_moves_everything_out_of_the_write_ahead_log() {
    let mut b = RocksBuilder::default();
    let mut s = b.fresh();
    s.append(&entries(1..=4, 1)).expect("append");
    s.apply(&ApplyBatch {
        nodes: vec![("/a".into(), Some(node(2, b"a")))],
        sessions: vec![(9, Some(session(9000)))],
        ..apply_marker(2)
    })
    .expect("apply");
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 4,
    })
    .expect("hard state");
    let before = (log_view(&s), s.load().expect("load"));
    let dir = s.dir().to_owned();
    s.close().expect("close");
    // After a clean close the WAL holds nothing the store needs: even an
    // emptied WAL loses nothing.
    for wal in wal_files(&dir) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(wal)
            .expect("open WAL")
            .set_len(0)
            .expect("empty WAL");
    }
    let s = RocksStore::open(&dir).expect("reopen");
    assert_eq!((log_view(&s), s.load().expect("load")), before);
}

#[test]
fn rocks_missing_column_family_is_refused() {
    let mut b = RocksBuilder::default();
    let dir = created_store(&mut b);
    {
        let mut db = raw_db(&dir);
        db.drop_cf("sessions").expect("drop cf");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::Corrupt { detail, .. } if detail.contains("`sessions` is missing")),
        "{err:?}"
    );
}

#[test]
fn rocks_corrupt_meta_is_refused() {
    let mut b = RocksBuilder::default();
    let dir = created_store(&mut b);
    {
        let db = raw_db(&dir);
        let meta = db.cf_handle("meta").expect("meta cf");
        db.put_cf(meta, b"applied", b"\x00\x01").expect("write");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::Corrupt { what, .. } if what.contains("applied marker")),
        "{err:?}"
    );
}

#[test]
fn rocks_directory_with_other_files_is_refused_untouched() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("notes.txt"), b"my notes").expect("write");
    std::fs::create_dir(dir.join("version-2")).expect("mkdir");
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::NotAStore { path, .. } if *path == dir),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("not a Conclave data directory") && message.contains("notes.txt"),
        "{message}"
    );
    assert_eq!(
        listing(&dir),
        vec!["notes.txt", "version-2"],
        "nothing written"
    );
    assert_eq!(
        std::fs::read(dir.join("notes.txt")).expect("read"),
        b"my notes"
    );

    // A plain file is not a data directory either.
    let err = RocksStore::open(&dir.join("notes.txt")).expect_err("open a file");
    assert!(matches!(err, StorageError::NotAStore { .. }), "{err:?}");
}

#[test]
fn rocks_foreign_rocksdb_database_is_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("other");
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let db = rocksdb::DB::open(&options, &dir).expect("create foreign db");
        db.put(b"key", b"value").expect("put");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::NotAStore { reason, .. } if reason.contains("RocksDB database")),
        "{err:?}"
    );
    let db = rocksdb::DB::open_default(&dir).expect("reopen foreign db");
    assert_eq!(db.get(b"key").expect("get").as_deref(), Some(&b"value"[..]));
}

#[test]
fn rocks_creates_in_missing_or_empty_directories() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // Missing, several levels deep.
    let deep = tmp.path().join("a/b/c");
    drop(RocksStore::open(&deep).expect("create in missing dir"));
    // Empty but for lost+found, as on a fresh volume.
    let volume = tmp.path().join("volume");
    std::fs::create_dir_all(volume.join("lost+found")).expect("mkdir");
    let s = RocksStore::open(&volume).expect("create next to lost+found");
    assert_eq!(s.meta().format_version, FORMAT_VERSION);
    let names = listing(&volume);
    assert!(names.contains(&"CURRENT".to_owned()) && names.contains(&"lost+found".to_owned()));
}

#[test]
fn rocks_interrupted_creation_is_finished() {
    // Creation stopped after RocksDB made the database and some of the
    // column families, before the format version was written.
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        rocksdb::DB::open_cf(&options, &dir, ["log", "meta"]).expect("create partial db");
    }
    let mut s = RocksStore::open(&dir).expect("finish creation");
    s.append(&entries(1..=1, 1)).expect("append");
    s.sync().expect("sync");
    drop(s);
    let mut cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &dir).expect("list");
    cfs.sort();
    let mut expected: Vec<String> = COLUMN_FAMILIES.iter().map(|s| s.to_string()).collect();
    expected.push("default".into());
    expected.sort();
    assert_eq!(cfs, expected);
    assert_eq!(RocksStore::open(&dir).expect("reopen").last_index(), 1);

    // But a store with data and no format version is refused.
    let dir = tmp.path().join("data2");
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&options, &dir, COLUMN_FAMILIES).expect("create db");
        let log = db.cf_handle("log").expect("log cf");
        db.put_cf(log, 1u64.to_be_bytes(), b"x").expect("put");
    }
    let err = RocksStore::open(&dir).expect_err("open");
    assert!(
        matches!(&err, StorageError::Corrupt { detail, .. } if detail.contains("no format version")),
        "{err:?}"
    );
}

#[test]
fn rocks_checkpoint_is_a_consistent_openable_copy() {
    let mut b = RocksBuilder::default();
    let mut s = b.fresh();
    s.append(&entries(1..=8, 2)).expect("append");
    s.apply(&ApplyBatch {
        nodes: vec![("/a".into(), Some(node(5, b"a")))],
        sessions: vec![(3, Some(session(3000)))],
        ..apply_marker(5)
    })
    .expect("apply");
    s.compact_prefix(2).expect("compact");
    s.set_hard_state(HardState {
        term: 2,
        vote: 1,
        commit: 8,
    })
    .expect("hard state");
    s.sync().expect("sync");
    let target = b.new_path();
    s.checkpoint(&target).expect("checkpoint");
    // Later writes to the original are not in the copy.
    s.append(&entries(9..=9, 2)).expect("append");
    let copy = RocksStore::open(&target).expect("open checkpoint");
    assert_eq!(copy.meta(), s.meta());
    assert_eq!(copy.last_index(), 8);
    assert_eq!(
        copy.entries(3, 9).expect("log"),
        s.entries(3, 9).expect("log")
    );
    assert_eq!(copy.load().expect("load"), s.load().expect("load"));
    // The target must not exist yet.
    assert!(s.checkpoint(&target).is_err());
}

#[test]
fn rocks_log_iterator_for_inspection() {
    let mut b = RocksBuilder::default();
    let mut s = b.fresh();
    s.append(&entries(1..=6, 1)).expect("append");
    s.apply(&apply_marker(3)).expect("apply");
    s.compact_prefix(2).expect("compact");
    let all: Vec<LogEntry> = s
        .log_entries(0)
        .expect("iterator")
        .collect::<Result<_, _>>()
        .expect("entries");
    assert_eq!(all, entries(3..=6, 1));
    let tail: Vec<u64> = s
        .log_entries(5)
        .expect("iterator")
        .map(|e| e.expect("entry").index)
        .collect();
    assert_eq!(tail, vec![5, 6]);
}

#[test]
fn rocks_synced_writes_survive_and_the_store_is_reusable_after_reopen_many_times() {
    let mut b = RocksBuilder::default();
    let mut s = b.fresh();
    for round in 0..5u64 {
        let start = round * 10 + 1;
        s.append(&entries(start..=start + 9, round + 1))
            .expect("append");
        s.apply(&apply_marker(start + 4)).expect("apply");
        s.sync().expect("sync");
        s = b.restart(s);
        assert_eq!(s.last_index(), start + 9);
        assert_eq!(s.meta().applied_index, start + 4);
    }
    assert_eq!(s.entries(1, 51).expect("all").len(), 50);
}

// ---------------------------------------------------------------- differential property test

mod differential {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Append `count` entries starting `back` entries before the end + 1.
        Append {
            back: u64,
            count: u64,
            term: u64,
            big: bool,
        },
        Truncate {
            back: u64,
        },
        /// Compact through `back` before the applied index, or before the
        /// end of the log (usually refused).
        Compact {
            from_end: bool,
            back: u64,
        },
        Apply {
            ahead: u64,
            nodes: Vec<(u8, Option<u8>)>,
            sessions: Vec<(i8, Option<i32>)>,
        },
        /// Read `len` entries from `off` after the first index or `off`
        /// before the end; `clamp` keeps the range within the log.
        Read {
            from_first: bool,
            off: u64,
            len: u64,
            clamp: bool,
            max_bytes: Option<u64>,
        },
        Term {
            from_first: bool,
            off: u64,
        },
        HardState(u64, u64, u64),
        Config(Vec<u8>),
        Sync,
        Reopen,
        Load,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u64..3, 0u64..8, 0u64..4, any::<bool>())
                .prop_map(|(back, count, term, big)| Op::Append { back, count, term, big }),
            2 => (0u64..8).prop_map(|back| Op::Truncate { back }),
            1 => (proptest::bool::weighted(0.2), 0u64..6)
                .prop_map(|(from_end, back)| Op::Compact { from_end, back }),
            3 => (
                0u64..4,
                proptest::collection::vec((0u8..6, proptest::option::of(any::<u8>())), 0..4),
                proptest::collection::vec((-3i8..3, proptest::option::of(any::<i32>())), 0..3),
            )
                .prop_map(|(ahead, nodes, sessions)| Op::Apply { ahead, nodes, sessions }),
            4 => (
                any::<bool>(),
                0u64..8,
                0u64..10,
                proptest::bool::weighted(0.8),
                proptest::option::of(0u64..400),
            )
                .prop_map(|(from_first, off, len, clamp, max_bytes)| Op::Read {
                    from_first,
                    off,
                    len,
                    clamp,
                    max_bytes,
                }),
            2 => (any::<bool>(), 0u64..8).prop_map(|(from_first, off)| Op::Term { from_first, off }),
            1 => (0u64..5, 0u64..5, 0u64..30).prop_map(|(a, b, c)| Op::HardState(a, b, c)),
            1 => proptest::collection::vec(any::<u8>(), 0..8).prop_map(Op::Config),
            2 => Just(Op::Sync),
            1 => Just(Op::Reopen),
            1 => Just(Op::Load),
        ]
    }

    /// Runs one op on a store and renders everything observable about it.
    fn run<S: Store>(s: &mut S, op: &Op) -> String {
        let last = s.last_index();
        let first = s.first_index();
        let applied = s.meta().applied_index;
        // An index near the start (possibly one below it) or near the end.
        let pick = |from_first: bool, off: u64| {
            if from_first {
                (first + off).saturating_sub(1)
            } else {
                (last + 1).saturating_sub(off)
            }
        };
        let result = match op {
            Op::Append {
                back,
                count,
                term,
                big,
            } => {
                let start = (last + 1).saturating_sub(*back);
                let list: Vec<LogEntry> = (start..start + count)
                    .map(|i| {
                        let mut e = txn_entry(i, *term);
                        if *big {
                            e.data.extend_from_slice(&[0xab; 100]);
                        }
                        e
                    })
                    .collect();
                format!("{:?}", s.append(&list))
            }
            Op::Truncate { back } => {
                format!("{:?}", s.truncate_suffix((last + 1).saturating_sub(*back)))
            }
            Op::Compact { from_end, back } => {
                let through = if *from_end { last } else { applied };
                format!("{:?}", s.compact_prefix(through.saturating_sub(*back)))
            }
            Op::Apply {
                ahead,
                nodes,
                sessions,
            } => {
                let batch = ApplyBatch {
                    applied_index: applied + ahead,
                    applied_zxid: (applied + ahead) as i64 * 3,
                    nodes: nodes
                        .iter()
                        .map(|(p, d)| (format!("/n{p}"), d.map(|d| node(i64::from(d), &[d]))))
                        .collect(),
                    sessions: sessions
                        .iter()
                        .map(|(id, t)| (i64::from(*id), t.map(session)))
                        .collect(),
                };
                format!("{:?}", s.apply(&batch))
            }
            Op::Read {
                from_first,
                off,
                len,
                clamp,
                max_bytes,
            } => {
                let lo = pick(*from_first, *off);
                let hi = if *clamp {
                    (lo + len).min(last + 1).max(lo)
                } else {
                    lo + len
                };
                match max_bytes {
                    None => format!("{:?}", s.entries(lo, hi)),
                    Some(m) => format!("{:?}", s.entries_limited(lo, hi, *m)),
                }
            }
            Op::Term { from_first, off } => format!("{:?}", s.term(pick(*from_first, *off))),
            Op::HardState(term, vote, commit) => format!(
                "{:?}",
                s.set_hard_state(HardState {
                    term: *term,
                    vote: *vote,
                    commit: *commit
                })
            ),
            Op::Config(c) => format!("{:?}", s.set_config(c)),
            Op::Sync => format!("{:?}", s.sync()),
            Op::Reopen | Op::Load => format!("{:?}", s.load()),
        };
        format!(
            "{result} | first {} last {} meta {:?}",
            s.first_index(),
            s.last_index(),
            s.meta()
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn random_operations_observe_the_same_on_both_stores(ops in proptest::collection::vec(op(), 1..40)) {
            let mut b = RocksBuilder::default();
            let mut rocks = b.fresh();
            let mut memory = MemoryStore::new();
            for (step, op) in ops.iter().enumerate() {
                if matches!(op, Op::Reopen) {
                    // A clean restart: RocksDB's WAL reached the OS, so even
                    // unsynced writes survive; the memory store just goes on.
                    let dir = rocks.dir().to_owned();
                    drop(rocks);
                    rocks = RocksStore::open(&dir).expect("reopen");
                }
                let m = run(&mut memory, op);
                let r = run(&mut rocks, op);
                prop_assert_eq!(&m, &r, "step {} {:?}", step, op);
            }
            prop_assert_eq!(memory.load().expect("load"), rocks.load().expect("load"));
            prop_assert_eq!(log_view(&memory), log_view(&rocks));
        }
    }
}
