//! Large files written beside the log (a snapshot's image as it is made
//! or received, the table files of an install) are made durable as they
//! are written, a few MiB at a time, instead of all at once.
//!
//! Left to the kernel, gigabytes of such a file stay dirty in the page
//! cache (background writeback starts at 10 % of memory, or after 30 s)
//! and then go to the disk in one burst, while the log's `fdatasync`s —
//! every acknowledged write — queue behind it. Syncing each few MiB keeps
//! the writer at the disk's pace and the burst small. (RocksDB's own
//! files do the same through its `bytes_per_sync` option.)

use std::fs::File;
use std::io::Write;

/// How many bytes of a large file may be written before they are synced.
pub(crate) const SYNC_EVERY_BYTES: u64 = 8 << 20;

/// A file written in order, synced every [`SYNC_EVERY_BYTES`].
#[derive(Debug)]
pub(crate) struct SyncingWriter {
    file: File,
    unsynced: u64,
}

impl SyncingWriter {
    pub(crate) fn new(file: File) -> SyncingWriter {
        SyncingWriter { file, unsynced: 0 }
    }
}

impl Write for SyncingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY_BYTES {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Whether a file that grew from `before` to `after` bytes crossed a
/// multiple of [`SYNC_EVERY_BYTES`]: time to sync it.
pub(crate) fn crossed(before: u64, after: u64) -> bool {
    before / SYNC_EVERY_BYTES != after / SYNC_EVERY_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_falls_due_at_each_multiple() {
        assert!(!crossed(0, SYNC_EVERY_BYTES - 1));
        assert!(crossed(SYNC_EVERY_BYTES - 1, SYNC_EVERY_BYTES));
        assert!(!crossed(SYNC_EVERY_BYTES, 2 * SYNC_EVERY_BYTES - 1));
        assert!(crossed(0, 3 * SYNC_EVERY_BYTES));
    }

    #[test]
    fn what_is_written_arrives_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let mut w =
            std::io::BufWriter::new(SyncingWriter::new(File::create(&path).expect("create")));
        let block = vec![7u8; 1 << 20];
        for _ in 0..20 {
            w.write_all(&block).expect("write");
        }
        w.flush().expect("flush");
        drop(w);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 20 << 20);
    }
}
