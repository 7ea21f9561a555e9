//! Snapshot images on both sides of a transfer (`storage::image`): made
//! from a store's view, read in chunks, staged chunk by chunk on the
//! receiver, resumed after a restart, refused when damaged, and restored
//! into the same tree. The driver's side of the transfer is exercised by
//! the simulator; this is the bytes' side.

use consensus::driver::{SnapshotId, Staged};
use proptest::prelude::*;
use storage::image::{FileDir, ImageDir, Images, MemoryDir, read_image, write_image};
use storage::memory::MemoryStore;
use storage::{Image, Store};
use tree::{DataTree, SessionRecord};

/// A consistent tree of `nodes` children of `/` with `size` bytes each.
fn image(nodes: usize, size: usize, index: u64, term: u64) -> Image {
    let mut image = storage::recovery::image_of(&DataTree::new(), index, term, (term as i64) << 32);
    let template = image
        .nodes
        .iter()
        .find(|(path, _)| path == "/zookeeper")
        .map(|(_, node)| node.clone())
        .expect("/zookeeper");
    for i in 0..nodes {
        let mut node = template.clone();
        node.data = Some(vec![(i % 251) as u8; size]);
        image.nodes.push((format!("/n{i:06}"), node));
    }
    image.nodes.sort_by(|a, b| a.0.cmp(&b.0));
    image.sessions.push((
        0x100,
        SessionRecord {
            timeout_ms: 4000,
            password: vec![7; 16],
        },
    ));
    image
}

/// The image `image` as a leader makes it: installed in a store, viewed,
/// written into `dir` (whose `Images` were opened before: opening drops
/// the images made by a previous run).
fn make(dir: &MemoryDir, image: &Image) -> SnapshotId {
    make_keeping(dir, image, &[])
}

/// [`make`], while the images `keep` are still being sent.
fn make_keeping(dir: &MemoryDir, image: &Image, keep: &[SnapshotId]) -> SnapshotId {
    let mut store = MemoryStore::new();
    store.install_image(image).expect("install");
    let view = store.image_view().expect("view");
    Images::make(dir, view.as_ref(), image.index, image.term, keep).expect("make")
}

/// `tree` holds exactly `image`'s nodes and sessions.
fn assert_same_tree(tree: &DataTree, image: &Image) {
    let rebuilt = storage::recovery::image_of(tree, image.index, image.term, image.zxid);
    assert_eq!(rebuilt.nodes, image.nodes);
    assert_eq!(rebuilt.sessions, image.sessions);
}

/// Sends all of `id` from `from` to `to` in chunks of `chunk` bytes.
fn send<D: ImageDir>(
    from: &Images<MemoryDir>,
    to: &mut Images<D>,
    id: &SnapshotId,
    start: u64,
    chunk: u64,
) -> Staged {
    let mut offset = start;
    loop {
        let len = chunk.min(id.bytes - offset) as usize;
        let bytes = from.read(id, offset, len).expect("read");
        match to.receive(id, offset, &bytes).expect("receive") {
            Staged::Complete => return Staged::Complete,
            Staged::At(held) => offset = held,
        }
    }
}

#[test]
fn a_stream_round_trips_and_every_truncation_is_refused() {
    let image = image(20, 50, 77, 3);
    let mut bytes = Vec::new();
    let (len, _) = write_image(&image, &mut bytes).expect("write");
    assert_eq!(len as usize, bytes.len());
    assert_eq!(read_image(bytes.as_slice()).expect("read"), image);
    for cut in 0..bytes.len() {
        assert!(read_image(&bytes[..cut]).is_err(), "cut at {cut} read");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(read_image(longer.as_slice()).is_err());
}

#[test]
fn an_image_made_from_a_view_is_staged_in_chunks_and_restored() {
    let leader = MemoryDir::new();
    let sender = Images::open(leader.clone());
    let source = image(300, 100, 40, 2);
    let id = make(&leader, &source);
    let mut receiver = Images::open(MemoryDir::new());
    assert_eq!(send(&sender, &mut receiver, &id, 0, 1000), Staged::Complete);
    receiver
        .prepare(id.index, id.term, &id.encode())
        .expect("prepare");
    let restored = receiver
        .take(id.index, id.term, &id.encode())
        .expect("take");
    assert_same_tree(&restored.tree, &source);
    // The store is replaced from the staged file, which is then removed.
    let mut store = MemoryStore::new();
    storage::writer::write_batch(&mut store, vec![restored.install]).expect("installed");
    let loaded = store.load().expect("load");
    assert_eq!(loaded.nodes, source.nodes);
    assert_eq!(loaded.sessions, source.sessions);
    assert_eq!(loaded.meta.applied_index, source.index);
    assert!(receiver.dir().names().expect("names").is_empty());
    assert!(receiver.prepare(id.index, id.term, &id.encode()).is_err());
}

#[test]
fn a_partial_image_survives_a_restart_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = MemoryDir::new();
    let sender = Images::open(leader.clone());
    let id = make(&leader, &image(200, 64, 9, 1));
    let mut receiver = Images::open(FileDir::new(dir.path()));
    let half = id.bytes / 2;
    let bytes = sender.read(&id, 0, half as usize).expect("read");
    assert_eq!(
        receiver.receive(&id, 0, &bytes).expect("receive"),
        Staged::At(half)
    );
    // A chunk after a gap is not taken: the answer says what is held.
    let later = sender.read(&id, half + 10, 10).expect("read");
    assert_eq!(
        receiver.receive(&id, half + 10, &later).expect("gap"),
        Staged::At(half)
    );
    drop(receiver);
    let mut receiver = Images::open(FileDir::new(dir.path()));
    let again = sender.read(&id, 0, 10).expect("read");
    assert_eq!(
        receiver.receive(&id, 0, &again).expect("copy"),
        Staged::At(half)
    );
    assert_eq!(
        send(&sender, &mut receiver, &id, half, 777),
        Staged::Complete
    );
    receiver
        .take(id.index, id.term, &id.encode())
        .expect("restored after the restart");
}

#[test]
fn a_damaged_image_is_refused_and_dropped() {
    let leader = MemoryDir::new();
    let sender = Images::open(leader.clone());
    let id = make(&leader, &image(50, 64, 12, 1));
    let name = leader
        .names()
        .expect("names")
        .pop()
        .expect("the made image");
    leader.damage(&name, 100);
    let mut receiver = Images::open(MemoryDir::new());
    let bytes = sender.read(&id, 0, id.bytes as usize).expect("read");
    let refused = receiver.receive(&id, 0, &bytes).expect_err("checksum");
    assert!(refused.contains("checksum"), "{refused}");
    assert!(receiver.dir().names().expect("names").is_empty());
    assert!(receiver.prepare(id.index, id.term, &id.encode()).is_err());
}

#[test]
fn a_new_image_replaces_a_partial_one() {
    let leader = MemoryDir::new();
    let sender = Images::open(leader.clone());
    let old = make(&leader, &image(50, 64, 12, 1));
    let old_bytes = sender.read(&old, 0, 100).expect("read");
    let new = make(&leader, &image(60, 64, 30, 2));
    // The old image is gone from the leader once a newer one is made.
    assert!(sender.read(&old, 0, 10).is_err());
    let mut receiver = Images::open(MemoryDir::new());
    assert_eq!(
        receiver.receive(&old, 0, &old_bytes).expect("old"),
        Staged::At(100)
    );
    assert_eq!(
        send(&sender, &mut receiver, &new, 0, 4096),
        Staged::Complete
    );
    assert_eq!(receiver.dir().names().expect("names").len(), 1);
}

#[test]
fn an_image_still_being_sent_outlives_a_newer_one() {
    let leader = MemoryDir::new();
    let sender = Images::open(leader.clone());
    let sent = image(50, 64, 12, 1);
    let old = make(&leader, &sent);
    let mut receiver = Images::open(MemoryDir::new());
    let first_chunk = sender.read(&old, 0, 100).expect("read");
    assert_eq!(
        receiver.receive(&old, 0, &first_chunk).expect("receive"),
        Staged::At(100)
    );
    // A newer image is made (for a member added since) while `old` is on
    // its way: `old` stays, and its transfer goes on where it was.
    let new = make_keeping(&leader, &image(60, 64, 30, 2), &[old]);
    assert_eq!(
        send(&sender, &mut receiver, &old, 100, 4096),
        Staged::Complete
    );
    let restored = receiver
        .take(old.index, old.term, &old.encode())
        .expect("take");
    assert_same_tree(&restored.tree, &sent);
    // Once no transfer needs it, the next image made removes it.
    make_keeping(&leader, &image(70, 64, 40, 2), &[new]);
    assert!(sender.read(&old, 0, 10).is_err());
    assert!(sender.read(&new, 0, 10).is_ok());
}

#[test]
fn the_rocksdb_view_holds_the_state_of_its_moment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = storage::rocks::RocksStore::open(&dir.path().join("store")).expect("open");
    let first = image(100, 32, 50, 2);
    store.install_image(&first).expect("install");
    let view = store.image_view().expect("view");
    // The store moves on; the view does not.
    store.install_image(&image(10, 32, 90, 3)).expect("install");
    let images = MemoryDir::new();
    let id = Images::make(&images, view.as_ref(), 50, 2, &[]).expect("make");
    drop(view);
    assert!(
        !dir.path().join("store.image-view").exists(),
        "the view's checkpoint is removed"
    );
    let made = images.names().expect("names").pop().expect("made");
    let bytes = images.read_at(&made, 0, id.bytes as usize).expect("read");
    assert_eq!(read_image(bytes.as_slice()).expect("decode"), first);

    // Installed from the stream: a damaged one changes nothing, a whole
    // one replaces everything.
    let before = store.load().expect("load");
    let mut damaged = bytes.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 1;
    assert!(store.install_image_stream(&mut damaged.as_slice()).is_err());
    assert!(
        store
            .install_image_stream(&mut &bytes[..bytes.len() - 1])
            .is_err()
    );
    assert_eq!(store.load().expect("load"), before);
    store
        .install_image_stream(&mut bytes.as_slice())
        .expect("install");
    let loaded = store.load().expect("load");
    assert_eq!((loaded.nodes, loaded.meta.applied_index), (first.nodes, 50));

    // A view left by a process that died while making an image is removed
    // when the store opens again.
    drop(store);
    let left = dir.path().join("store.image-view");
    std::fs::create_dir_all(&left).expect("mkdir");
    std::fs::write(left.join("000001.sst"), b"x").expect("write");
    let _store = storage::rocks::RocksStore::open(&dir.path().join("store")).expect("open");
    assert!(!left.exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the chunk sizes, the receiver ends with the image sent; a
    /// flipped byte anywhere is refused.
    #[test]
    fn chunked_transfers_deliver_the_image(nodes in 0usize..40, size in 0usize..200, chunk in 1u64..500, flip in any::<prop::sample::Index>()) {
        let leader = MemoryDir::new();
        let sender = Images::open(leader.clone());
        let source = image(nodes, size, 5, 1);
        let id = make(&leader, &source);
        let mut receiver = Images::open(MemoryDir::new());
        prop_assert_eq!(send(&sender, &mut receiver, &id, 0, chunk), Staged::Complete);
        let restored = receiver.take(id.index, id.term, &id.encode()).expect("take");
        assert_same_tree(&restored.tree, &source);

        let mut bytes = sender.read(&id, 0, id.bytes as usize).expect("read");
        let at = flip.index(bytes.len());
        bytes[at] ^= 0x40;
        let mut receiver = Images::open(MemoryDir::new());
        prop_assert!(receiver.receive(&id, 0, &bytes).is_err());
        prop_assert!(read_image(bytes.as_slice()).is_err());
    }
}
