//! Snapshot images as a peer sends them: bytes decoded as an image stream
//! (what a receiver restores) and read raw (what a store installs), and
//! the same bytes staged as chunks of an image whose id the input names
//! (what a receiver stages). Nothing may panic; a stream that decodes must
//! survive a round trip, and read raw as well.
#![no_main]

use consensus::driver::{SnapshotId, Staged};
use libfuzzer_sys::fuzz_target;
use storage::image::{Images, MemoryDir, read_image, read_raw_records, write_image};

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = read_image(data) {
        let mut again = Vec::new();
        write_image(&image, &mut again).expect("writing to memory");
        let decoded = read_image(again.as_slice()).expect("an image written reads back");
        assert_eq!(decoded, image, "a decoded image survives a round trip");
        // What reads decoded reads raw (a store installing it).
        assert!(read_raw_records(data, &mut |_| Ok(())).is_ok());
    } else {
        // Raw reading checks less (records stay encoded), but never panics.
        let _ = read_raw_records(data, &mut |_| Ok(()));
    }
    // The first byte picks a chunk size; the rest is the image, staged
    // under an id that claims its size and a checksum from the input.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let id = SnapshotId {
        index: 7,
        term: 2,
        bytes: rest.len() as u64,
        checksum: rest
            .get(..4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
    };
    let mut images = Images::open(MemoryDir::new());
    let mut offset = 0usize;
    while offset < rest.len() {
        let end = (offset + chunk).min(rest.len());
        match images.receive(&id, offset as u64, &rest[offset..end]) {
            Ok(Staged::At(held)) => offset = held as usize,
            Ok(Staged::Complete) | Err(_) => break,
        }
    }
    let _ = images.prepare(id.index, id.term, &id.encode());
});
