//! A RocksDB store installs a snapshot's image into the next generation of
//! column families and switches to it with one synced batch
//! (`storage::rocks`, `rocks/generation.rs`): what it holds after each
//! install and after a reopen, what an install interrupted before or after
//! its switch leaves (the next open drops the other generation's column
//! families), and a store of format version 1.

use std::path::Path;

use storage::image::write_image;
use storage::rocks::RocksStore;
use storage::{ApplyBatch, FORMAT_VERSION, Image, StorageError, Store};
use tree::{DataTree, SessionRecord};

/// A consistent tree of `nodes` children of `/` (`tag` in their data),
/// with `sessions` sessions.
fn image(nodes: usize, sessions: usize, tag: u8, index: u64, term: u64) -> Image {
    let mut image = storage::recovery::image_of(&DataTree::new(), index, term, (term as i64) << 32);
    let template = image
        .nodes
        .iter()
        .find(|(path, _)| path == "/zookeeper")
        .map(|(_, node)| node.clone())
        .expect("/zookeeper");
    for i in 0..nodes {
        let mut node = template.clone();
        node.data = Some(vec![tag; 40]);
        image.nodes.push((format!("/n{i:06}"), node));
    }
    image.nodes.sort_by(|a, b| a.0.cmp(&b.0));
    for i in 0..sessions {
        image.sessions.push((
            i as i64 - 1,
            SessionRecord {
                timeout_ms: 4000,
                password: vec![tag; 16],
            },
        ));
    }
    image
}

fn stream(image: &Image) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_image(image, &mut bytes).expect("write");
    bytes
}

/// Installs `image` as a follower does: from its stream.
fn install(store: &mut RocksStore, image: &Image) {
    store
        .install_image_stream(&mut stream(image).as_slice())
        .expect("install");
}

fn column_families(dir: &Path) -> Vec<String> {
    let mut names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).expect("list");
    names.sort();
    names
}

fn expected_families(generation: u64) -> Vec<String> {
    let mut names = vec!["default".to_owned(), "log".into(), "meta".into()];
    if generation == 0 {
        names.extend(["sessions".to_owned(), "tree".into()]);
    } else {
        names.extend([
            format!("sessions.{generation}"),
            format!("tree.{generation}"),
        ]);
    }
    names.sort();
    names
}

fn assert_holds(store: &RocksStore, image: &Image) {
    let loaded = store.load().expect("load");
    assert_eq!(loaded.nodes, image.nodes);
    assert_eq!(loaded.sessions, image.sessions);
    assert_eq!(
        (loaded.meta.applied_index, loaded.meta.compacted),
        (image.index, (image.index, image.term))
    );
    assert_eq!(
        (store.first_index(), store.last_index()),
        (image.index + 1, image.index)
    );
}

#[test]
fn each_install_is_a_new_generation_and_the_old_one_is_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut store = RocksStore::open(&dir).expect("open");
    store
        .append(&[storage::LogEntry {
            index: 1,
            term: 1,
            kind: storage::EntryKind::Empty,
            data: Vec::new(),
        }])
        .expect("append");
    store.sync().expect("sync");

    let first = image(300, 3, 1, 50, 2);
    install(&mut store, &first);
    assert_holds(&store, &first);
    assert_eq!(column_families(&dir), expected_families(1));
    assert_eq!(store.meta().format_version, FORMAT_VERSION);

    // Writes after the install go to the new generation, and survive a
    // reopen with it.
    let mut changed = first.clone();
    let (path, mut node) = changed.nodes.pop().expect("a node");
    node.data = Some(b"after".to_vec());
    changed.nodes.push((path.clone(), node.clone()));
    store
        .append(&[storage::LogEntry {
            index: 51,
            term: 2,
            kind: storage::EntryKind::Empty,
            data: Vec::new(),
        }])
        .expect("append");
    store
        .apply(&ApplyBatch {
            nodes: vec![(path, Some(node))],
            sessions: Vec::new(),
            applied_index: 51,
            applied_zxid: (2 << 32) | 1,
        })
        .expect("apply");
    store.sync().expect("sync");
    drop(store);
    let mut store = RocksStore::open(&dir).expect("reopen");
    assert_eq!(store.load().expect("load").nodes, changed.nodes);
    assert_eq!(store.last_index(), 51);

    // A view (what a leader makes images from) reads the live generation.
    let view = store.image_view().expect("view");
    let images = storage::image::MemoryDir::new();
    let id = storage::image::Images::make(&images, view.as_ref(), 51, 2, &[]).expect("make");
    drop(view);
    let made = storage::image::ImageDir::names(&images)
        .expect("names")
        .pop()
        .expect("made");
    let bytes =
        storage::image::ImageDir::read_at(&images, &made, 0, id.bytes as usize).expect("read");
    let viewed = storage::image::read_image(bytes.as_slice()).expect("decode");
    assert_eq!(viewed.nodes, changed.nodes);

    // A second install: generation 2, generation 1 dropped; an image
    // without sessions leaves the sessions empty.
    let second = image(10, 0, 3, 90, 3);
    install(&mut store, &second);
    assert_holds(&store, &second);
    assert_eq!(column_families(&dir), expected_families(2));
    store.close().expect("close");
    let store = RocksStore::open(&dir).expect("reopen");
    assert_holds(&store, &second);
}

#[test]
fn a_failed_install_changes_nothing_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let mut store = RocksStore::open(&dir).expect("open");
    let first = image(20, 1, 1, 10, 1);
    install(&mut store, &first);
    let bytes = stream(&image(50, 2, 2, 20, 2));
    // Cut in the middle of the sessions: every node was written into a
    // table file before the stream failed.
    let err = store
        .install_image_stream(&mut &bytes[..bytes.len() - 30])
        .expect_err("a truncated image");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
    assert_holds(&store, &first);
    assert_eq!(column_families(&dir), expected_families(1));
    assert!(!tmp.path().join("store.image-install").exists());
    // And the store goes on: the next install works.
    let third = image(5, 1, 3, 30, 3);
    install(&mut store, &third);
    assert_holds(&store, &third);
    assert_eq!(column_families(&dir), expected_families(2));
}

/// Opens the store's database directly (every column family), to leave in
/// it what a process killed mid-install leaves.
fn with_raw_db(dir: &Path, change: impl FnOnce(&mut rocksdb::DB)) {
    let names = column_families(dir);
    let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, &names).expect("raw open");
    change(&mut db);
}

/// A store in `dir` that installed `image`, closed.
fn installed_and_closed(dir: &Path, image: &Image) {
    let mut store = RocksStore::open(dir).expect("open");
    install(&mut store, image);
    store.close().expect("close");
}

/// Column families `names`, each holding a record, as an install killed
/// before or after its switch leaves them.
fn leave_column_families(dir: &Path, names: [&str; 2]) {
    with_raw_db(dir, |db| {
        for name in names {
            db.create_cf(name, &rocksdb::Options::default())
                .expect("create");
            let cf = db.cf_handle(name).expect("cf");
            db.put_cf(cf, b"/left", b"behind").expect("put");
        }
    });
}

#[test]
fn an_install_interrupted_before_its_switch_leaves_the_old_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let first = image(20, 1, 1, 10, 1);
    installed_and_closed(&dir, &first);
    // Killed after generation 2's column families were created and filled,
    // before the switch: and its table files are still beside the store.
    leave_column_families(&dir, ["tree.2", "sessions.2"]);
    let tables = tmp.path().join("store.image-install");
    std::fs::create_dir_all(&tables).expect("mkdir");
    std::fs::write(tables.join("tree.sst"), b"partial").expect("write");
    let mut store = RocksStore::open(&dir).expect("open");
    assert_holds(&store, &first);
    assert_eq!(column_families(&dir), expected_families(1));
    assert!(!tables.exists());
    let second = image(7, 2, 2, 20, 2);
    install(&mut store, &second);
    assert_holds(&store, &second);
}

#[test]
fn an_install_interrupted_after_its_switch_leaves_the_new_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let second = image(20, 1, 2, 10, 1);
    installed_and_closed(&dir, &second);
    // Killed after the switch, before generation 0 was dropped.
    leave_column_families(&dir, ["tree", "sessions"]);
    let store = RocksStore::open(&dir).expect("open");
    assert_holds(&store, &second);
    assert_eq!(column_families(&dir), expected_families(1));
}

#[test]
fn a_store_of_format_version_1_opens_and_becomes_version_2_at_its_first_install() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    drop(RocksStore::open(&dir).expect("create"));
    with_raw_db(&dir, |db| {
        let meta = db.cf_handle("meta").expect("meta");
        db.put_cf(meta, b"format_version", 1u32.to_be_bytes())
            .expect("put");
    });
    let mut store = RocksStore::open(&dir).expect("a version 1 store opens");
    assert_eq!(store.meta().format_version, 1);
    let first = image(3, 1, 1, 10, 1);
    install(&mut store, &first);
    drop(store);
    let store = RocksStore::open(&dir).expect("reopen");
    assert_eq!(store.meta().format_version, 2);
    assert_holds(&store, &first);
}

#[test]
fn a_column_family_of_no_generation_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    drop(RocksStore::open(&dir).expect("create"));
    for stray in ["tree.0", "tree.x", "trees", "sessions.01"] {
        with_raw_db(&dir, |db| {
            db.create_cf(stray, &rocksdb::Options::default())
                .expect("create");
        });
        let err = RocksStore::open(&dir).expect_err("refused");
        assert!(
            matches!(&err, StorageError::Corrupt { detail, .. } if detail.contains(stray)),
            "{stray}: {err:?}"
        );
        with_raw_db(&dir, |db| db.drop_cf(stray).expect("drop"));
    }
    RocksStore::open(&dir).expect("opens again");
}
