//! The page cache: unsynced file data, kept in memory over the backing files.
//!
//! Each cached file has a backing [`File`] (the real file in the backing
//! directory), its current length as the mount shows it, the length the
//! backing file has (what survives a power cut) and its dirty ranges
//! ([`Extents`]). The rules, which `lib.rs` states for users:
//!
//! - `write` only changes the cache; a read sees the backing file's bytes
//!   with the dirty ranges laid over them, and zeros in a hole.
//! - `flush` (fsync/fdatasync) writes the dirty ranges to the backing file,
//!   sets its length, then `fdatasync`s (or `fsync`s) it. Only then are the
//!   bytes durable.
//! - `set_len` (truncate) changes the backing file at once in so far as
//!   the change does not depend on unsynced data: cutting below the synced
//!   length cuts the backing file, growing past the current length grows
//!   it (a hole of zeros). A truncate that lands inside the unsynced tail
//!   only trims the cache; one to the current length is a no-op (RocksDB
//!   `ftruncate`s every file it closes to the length it wrote, which must
//!   not make an unsynced tail's length durable).
//! - `power_cut` forgets every dirty range and resets each length to the
//!   backing file's.
//! - Past `max_dirty_bytes` in total, a write first writes dirty files back
//!   (without syncing), as a kernel's writeback would: such data survives a
//!   power cut, which a real disk allows too. [`Stats`] counts it.
//!
//! The cache knows files only by a [`FileId`] (the FUSE inode number):
//! renames and unlinks never touch it.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use crate::extents::Extents;

/// Identifies a cached file: the FUSE inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// Writes bigger than this are zero-filled in chunks of it (punching a
/// hole inside unsynced data).
const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// What a power cut dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PowerCutReport {
    /// Files that had unsynced data.
    pub files: u64,
    /// Unsynced bytes dropped (bytes written and not synced, counted once
    /// however often they were overwritten).
    pub bytes: u64,
}

/// What a `sync` (or a write-back) wrote to the backing files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Files that had unsynced data.
    pub files: u64,
    /// Bytes written to backing files.
    pub bytes: u64,
}

/// Counters and current sizes of the cache (and of the inode table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inodes the filesystem knows (filled in by the filesystem; 0 from
    /// the cache alone).
    pub nodes: u64,
    /// Files with cache state (open, or with unsynced data).
    pub cached_files: u64,
    /// Open handles over all cached files.
    pub open_handles: u64,
    /// Files with unsynced data now.
    pub dirty_files: u64,
    /// Unsynced bytes now.
    pub dirty_bytes: u64,
    /// The write-back threshold.
    pub max_dirty_bytes: u64,
    /// Bytes made durable by fsync/fdatasync/`sync` since the start.
    pub synced_bytes_total: u64,
    /// Bytes written back because the cache was over `max_dirty_bytes`.
    pub written_back_bytes_total: u64,
    /// Bytes dropped by power cuts since the start.
    pub dropped_bytes_total: u64,
    /// Unsynced bytes of deleted files forgotten at their last close.
    pub discarded_bytes_total: u64,
    /// Power cuts since the start.
    pub power_cuts: u64,
}

#[derive(Debug)]
struct CachedFile {
    backing: File,
    /// The length the mount shows. Invariant: `len >= durable_len` and
    /// every dirty byte lies below `len`.
    len: u64,
    /// The backing file's length.
    durable_len: u64,
    dirty: Extents,
    open_handles: u64,
    /// Time of the last cached write, shown as the file's mtime.
    mtime: Option<SystemTime>,
}

impl CachedFile {
    fn check(&self) {
        debug_assert!(self.len >= self.durable_len, "{self:?}");
        debug_assert!(self.dirty.end().is_none_or(|end| end <= self.len));
    }

    /// Writes the dirty ranges and the length to the backing file, without
    /// syncing. On error the ranges stay dirty (writing them again is
    /// harmless).
    fn write_back(&mut self) -> io::Result<u64> {
        for (offset, data) in self.dirty.iter() {
            self.backing.write_all_at(data, offset)?;
        }
        if self.backing.metadata()?.len() != self.len {
            self.backing.set_len(self.len)?;
        }
        self.durable_len = self.len;
        Ok(self.dirty.clear())
    }
}

/// The cache of every file's unsynced data. Not thread-safe by itself: the
/// filesystem keeps it behind its one lock (`state.rs`).
#[derive(Debug)]
pub struct PageCache {
    files: HashMap<FileId, CachedFile>,
    dirty_bytes: u64,
    max_dirty_bytes: u64,
    stats: Stats,
}

fn no_such_file(id: FileId) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("file {} is not in the cache", id.0),
    )
}

fn too_big() -> io::Error {
    io::Error::from_raw_os_error(libc::EFBIG)
}

impl PageCache {
    /// An empty cache that writes dirty data back (unsynced) once more than
    /// `max_dirty_bytes` are held.
    pub fn new(max_dirty_bytes: u64) -> Self {
        Self {
            files: HashMap::new(),
            dirty_bytes: 0,
            max_dirty_bytes,
            stats: Stats::default(),
        }
    }

    /// Registers one more open handle of `id`; `open` supplies the backing
    /// file (read-write when possible) the first time.
    pub fn open(&mut self, id: FileId, open: impl FnOnce() -> io::Result<File>) -> io::Result<()> {
        if let Some(file) = self.files.get_mut(&id) {
            file.open_handles += 1;
            return Ok(());
        }
        let backing = open()?;
        let len = backing.metadata()?.len();
        self.files.insert(
            id,
            CachedFile {
                backing,
                len,
                durable_len: len,
                dirty: Extents::default(),
                open_handles: 1,
                mtime: None,
            },
        );
        Ok(())
    }

    /// Drops one open handle. Closing never syncs: the file's dirty data
    /// stays cached. When the last handle goes, the file leaves the cache
    /// if it has nothing dirty, or if `deleted` (its data can no longer be
    /// reached, so it is discarded).
    pub fn release(&mut self, id: FileId, deleted: bool) {
        let Some(file) = self.files.get_mut(&id) else {
            return;
        };
        file.open_handles = file.open_handles.saturating_sub(1);
        if file.open_handles > 0 {
            return;
        }
        if deleted {
            let discarded = file.dirty.clear();
            self.dirty_bytes -= discarded;
            self.stats.discarded_bytes_total += discarded;
        }
        if file.dirty.is_empty() {
            self.files.remove(&id);
        }
    }

    /// Forgets a deleted, closed file's cached data (nothing can reach it
    /// any more).
    pub fn discard(&mut self, id: FileId) {
        if self.is_open(id) {
            return;
        }
        if let Some(mut file) = self.files.remove(&id) {
            let discarded = file.dirty.clear();
            self.dirty_bytes -= discarded;
            self.stats.discarded_bytes_total += discarded;
        }
    }

    /// Forgets the cached mtime of `id` (an explicit `utimes` set the
    /// backing file's).
    pub fn clear_mtime(&mut self, id: FileId) {
        if let Some(file) = self.files.get_mut(&id) {
            file.mtime = None;
        }
    }

    /// Whether `id` has cache state (open, or dirty).
    pub fn contains(&self, id: FileId) -> bool {
        self.files.contains_key(&id)
    }

    /// Whether `id` has open handles.
    pub fn is_open(&self, id: FileId) -> bool {
        self.files.get(&id).is_some_and(|f| f.open_handles > 0)
    }

    /// The length the mount shows for `id`, and its cached mtime.
    pub fn len_and_mtime(&self, id: FileId) -> Option<(u64, Option<SystemTime>)> {
        self.files.get(&id).map(|f| (f.len, f.mtime))
    }

    /// The backing file of `id`, for `fstat` and for metadata changes.
    pub fn backing(&self, id: FileId) -> Option<&File> {
        self.files.get(&id).map(|f| &f.backing)
    }

    /// Reads up to `size` bytes at `offset`: the backing file's bytes with
    /// the unsynced ones over them. Short only at the end of the file.
    pub fn read(&self, id: FileId, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let file = self.files.get(&id).ok_or_else(|| no_such_file(id))?;
        let available = file.len.saturating_sub(offset);
        let n = available.min(u64::from(size));
        let mut buf = vec![0u8; usize::try_from(n).map_err(|_| too_big())?];
        // The backing file holds bytes below `durable_len` only; past it
        // the mount shows zeros (a hole) or dirty bytes.
        let from_backing = file.durable_len.saturating_sub(offset).min(n);
        let mut done = 0usize;
        let want = usize::try_from(from_backing).map_err(|_| too_big())?;
        while done < want {
            let at = offset + u64::try_from(done).map_err(|_| too_big())?;
            match file.backing.read_at(&mut buf[done..want], at) {
                Ok(0) => break, // shorter than recorded: the rest reads as zeros
                Ok(read) => done += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        file.dirty.overlay(offset, &mut buf);
        Ok(buf)
    }

    /// Caches `data` written at `offset`; the file grows if it ends past
    /// the current length. Writes dirty data back first if the cache is
    /// over its limit.
    pub fn write(&mut self, id: FileId, offset: u64, data: &[u8]) -> io::Result<()> {
        let file = self.files.get_mut(&id).ok_or_else(|| no_such_file(id))?;
        let end = u64::try_from(data.len())
            .ok()
            .and_then(|n| offset.checked_add(n))
            .filter(|end| i64::try_from(*end).is_ok())
            .ok_or_else(too_big)?;
        let before = file.dirty.bytes();
        if !file.dirty.insert(offset, data) {
            return Err(too_big());
        }
        self.dirty_bytes = self.dirty_bytes - before + file.dirty.bytes();
        file.len = file.len.max(end);
        file.mtime = Some(SystemTime::now());
        file.check();
        self.write_back_over_limit(id);
        Ok(())
    }

    /// Writes files back (unsynced) while the cache holds more than its
    /// limit: `first` first, then the dirtiest. A failure is logged and
    /// leaves the data cached; the next fsync reports it.
    fn write_back_over_limit(&mut self, first: FileId) {
        let mut next = Some(first);
        while self.dirty_bytes > self.max_dirty_bytes {
            let id = match next.take() {
                Some(id) => id,
                None => match self
                    .files
                    .iter()
                    .filter(|(_, f)| !f.dirty.is_empty())
                    .max_by_key(|(_, f)| f.dirty.bytes())
                {
                    Some((id, _)) => *id,
                    None => return,
                },
            };
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            match file.write_back() {
                Ok(bytes) => {
                    self.dirty_bytes -= bytes;
                    self.stats.written_back_bytes_total += bytes;
                    tracing::debug!(file = id.0, bytes, "cache over its limit: wrote back");
                }
                Err(e) => {
                    tracing::warn!(file = id.0, error = %e, "write-back failed; data stays cached");
                    return;
                }
            }
        }
    }

    /// Truncates (or extends) `id` to `new_len`; see the module docs for
    /// which part reaches the backing file at once.
    pub fn set_len(&mut self, id: FileId, new_len: u64) -> io::Result<()> {
        if i64::try_from(new_len).is_err() {
            return Err(too_big());
        }
        let file = self.files.get_mut(&id).ok_or_else(|| no_such_file(id))?;
        if new_len == file.len {
            return Ok(());
        }
        if new_len > file.len {
            // Growing past everything written: a hole, durable at once.
            file.backing.set_len(new_len)?;
            file.durable_len = new_len;
        } else {
            let before = file.dirty.bytes();
            file.dirty.truncate(new_len);
            self.dirty_bytes = self.dirty_bytes - before + file.dirty.bytes();
            if new_len < file.durable_len {
                // Cutting synced data: durable at once.
                file.backing.set_len(new_len)?;
                file.durable_len = new_len;
            }
        }
        file.len = new_len;
        file.mtime = Some(SystemTime::now());
        file.check();
        Ok(())
    }

    /// `fallocate` without `FALLOC_FL_KEEP_SIZE`: space is reserved in the
    /// backing file and the file grows to `offset + length` if shorter
    /// (the growth durable at once, as for [`PageCache::set_len`]).
    pub fn allocate(&mut self, id: FileId, offset: u64, length: u64) -> io::Result<()> {
        self.allocate_keep_size(id, offset, length)?;
        let end = offset.checked_add(length).ok_or_else(too_big)?;
        let len = self.files.get(&id).map_or(0, |f| f.len);
        if end > len {
            self.set_len(id, end)?;
        }
        Ok(())
    }

    /// `fallocate(FALLOC_FL_KEEP_SIZE)`: reserves space in the backing file;
    /// no visible change, nothing to cache.
    pub fn allocate_keep_size(&mut self, id: FileId, offset: u64, length: u64) -> io::Result<()> {
        let file = self.files.get(&id).ok_or_else(|| no_such_file(id))?;
        fallocate(
            &file.backing,
            nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            offset,
            length,
        )
    }

    /// `fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`: the part of
    /// the range inside the file becomes zeros in the cache (a data change,
    /// lazy like a write); the part past the end (preallocated space,
    /// which RocksDB releases when it closes a file) is released in the
    /// backing file at once, which changes nothing visible.
    pub fn punch_hole(&mut self, id: FileId, offset: u64, length: u64) -> io::Result<()> {
        let end = offset.checked_add(length).ok_or_else(too_big)?;
        let file = self.files.get(&id).ok_or_else(|| no_such_file(id))?;
        let len = file.len;
        if end > len {
            let from = offset.max(len);
            let flags = nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
            fallocate(&file.backing, flags, from, end - from)?;
        }
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut at = offset;
        let inside_end = end.min(len);
        while at < inside_end {
            let n = (inside_end - at).min(ZERO_CHUNK_BYTES as u64);
            let n_usize = usize::try_from(n).map_err(|_| too_big())?;
            self.write(id, at, &zeros[..n_usize])?;
            at += n;
        }
        Ok(())
    }

    /// fsync/fdatasync of `id`: writes its dirty data and length to the
    /// backing file and syncs that. Returns the bytes written.
    pub fn flush(&mut self, id: FileId, datasync: bool) -> io::Result<u64> {
        let Some(file) = self.files.get_mut(&id) else {
            return Ok(0);
        };
        let bytes = file.write_back()?;
        self.dirty_bytes -= bytes;
        self.stats.synced_bytes_total += bytes;
        if datasync {
            file.backing.sync_data()?;
        } else {
            file.backing.sync_all()?;
        }
        if file.open_handles == 0 {
            self.files.remove(&id);
        }
        Ok(bytes)
    }

    /// `sync(1)`: flushes every file. Stops at the first error (the files
    /// not reached stay dirty).
    pub fn sync_all(&mut self) -> io::Result<SyncReport> {
        let mut ids: Vec<FileId> = self
            .files
            .iter()
            .filter(|(_, f)| !f.dirty.is_empty() || f.len != f.durable_len)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        let mut report = SyncReport::default();
        for id in ids {
            report.bytes += self.flush(id, true)?;
            report.files += 1;
        }
        Ok(report)
    }

    /// Drops every unsynced byte of every file; each file's length goes
    /// back to its backing file's. Files with no open handle leave the
    /// cache.
    pub fn power_cut(&mut self) -> PowerCutReport {
        let mut report = PowerCutReport::default();
        for (id, file) in &mut self.files {
            let dropped = file.dirty.clear();
            if dropped > 0 || file.len != file.durable_len {
                report.files += 1;
            }
            report.bytes += dropped;
            match file.backing.metadata() {
                Ok(meta) => file.durable_len = meta.len(),
                Err(e) => tracing::warn!(file = id.0, error = %e, "fstat after power cut"),
            }
            file.len = file.durable_len;
            file.mtime = None;
        }
        self.files.retain(|_, f| f.open_handles > 0);
        self.dirty_bytes = 0;
        self.stats.power_cuts += 1;
        self.stats.dropped_bytes_total += report.bytes;
        report
    }

    /// The current counters.
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.cached_files = self.files.len() as u64;
        stats.open_handles = self.files.values().map(|f| f.open_handles).sum();
        stats.dirty_files = self.files.values().filter(|f| !f.dirty.is_empty()).count() as u64;
        stats.dirty_bytes = self.dirty_bytes;
        stats.max_dirty_bytes = self.max_dirty_bytes;
        stats
    }
}

fn fallocate(
    file: &File,
    flags: nix::fcntl::FallocateFlags,
    offset: u64,
    length: u64,
) -> io::Result<()> {
    let offset = i64::try_from(offset).map_err(|_| too_big())?;
    let length = i64::try_from(length).map_err(|_| too_big())?;
    nix::fcntl::fallocate(file, flags, offset, length).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::path::Path;

    use super::*;

    const A: FileId = FileId(2);
    const B: FileId = FileId(3);

    fn open(cache: &mut PageCache, id: FileId, path: &Path) {
        cache
            .open(id, || {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
            })
            .unwrap();
    }

    fn read_all(cache: &PageCache, id: FileId) -> Vec<u8> {
        cache.read(id, 0, u32::MAX).unwrap()
    }

    fn on_disk(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    fn setup() -> (tempfile::TempDir, PageCache) {
        (tempfile::tempdir().unwrap(), PageCache::new(u64::MAX))
    }

    #[test]
    fn writes_are_read_back_at_once_but_reach_the_backing_file_only_on_flush() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        open(&mut cache, A, &path);
        cache.write(A, 0, b"hello").unwrap();
        assert_eq!(read_all(&cache, A), b"hello");
        assert_eq!(on_disk(&path), b"");
        assert_eq!(cache.flush(A, true).unwrap(), 5);
        assert_eq!(on_disk(&path), b"hello");
        assert_eq!(cache.stats().dirty_bytes, 0);
        assert_eq!(cache.stats().synced_bytes_total, 5);
    }

    #[test]
    fn overlapping_writes_over_synced_data_then_power_cut_restores_synced_bytes() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        open(&mut cache, A, &path);
        cache.write(A, 2, b"ab").unwrap();
        cache.write(A, 3, b"XYZ").unwrap();
        cache.write(A, 12, b"tail").unwrap(); // leaves a hole at 10..12
        assert_eq!(read_all(&cache, A), b"01aXYZ6789\0\0tail");
        assert_eq!(cache.stats().dirty_bytes, 8);
        let report = cache.power_cut();
        assert_eq!(report, PowerCutReport { files: 1, bytes: 8 });
        assert_eq!(read_all(&cache, A), b"0123456789");
        assert_eq!(on_disk(&path), b"0123456789");
        assert_eq!(cache.stats().dropped_bytes_total, 8);
    }

    #[test]
    fn reads_past_the_end_and_reads_spanning_synced_and_unsynced_bytes() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        open(&mut cache, A, &path);
        cache.write(A, 3, b"def").unwrap();
        assert_eq!(cache.read(A, 1, 4).unwrap(), b"bcde");
        assert_eq!(cache.read(A, 5, 100).unwrap(), b"f");
        assert_eq!(cache.read(A, 6, 100).unwrap(), b"");
        assert_eq!(cache.read(A, u64::MAX, 100).unwrap(), b"");
    }

    #[test]
    fn only_fsynced_data_survives_a_power_cut() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        open(&mut cache, A, &path);
        cache.write(A, 0, b"synced ").unwrap();
        cache.flush(A, false).unwrap();
        cache.write(A, 7, b"unsynced").unwrap();
        assert_eq!(read_all(&cache, A), b"synced unsynced");
        let report = cache.power_cut();
        assert_eq!(report, PowerCutReport { files: 1, bytes: 8 });
        assert_eq!(read_all(&cache, A), b"synced ");
        assert_eq!(cache.len_and_mtime(A).unwrap().0, 7);
    }

    #[test]
    fn close_does_not_sync_and_a_closed_dirty_file_stays_cached() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        open(&mut cache, A, &path);
        cache.write(A, 0, b"data").unwrap();
        cache.release(A, false);
        assert!(cache.contains(A));
        assert!(!cache.is_open(A));
        assert_eq!(on_disk(&path), b"");
        // Reopened: the cached data is still what reads see.
        open(&mut cache, A, &path);
        assert_eq!(read_all(&cache, A), b"data");
        cache.release(A, false);
        assert_eq!(cache.power_cut(), PowerCutReport { files: 1, bytes: 4 });
        assert!(
            !cache.contains(A),
            "closed files leave the cache after a power cut"
        );
    }

    #[test]
    fn a_deleted_file_discards_its_data_at_its_last_close() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        open(&mut cache, A, &path);
        cache.write(A, 0, b"data").unwrap();
        cache.release(A, true);
        assert!(!cache.contains(A));
        assert_eq!(cache.stats().dirty_bytes, 0);
        assert_eq!(cache.stats().discarded_bytes_total, 4);
    }

    #[test]
    fn truncate_below_synced_length_is_durable_at_once() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        open(&mut cache, A, &path);
        cache.write(A, 10, b"abc").unwrap();
        cache.set_len(A, 4).unwrap();
        assert_eq!(on_disk(&path), b"0123");
        assert_eq!(read_all(&cache, A), b"0123");
        assert_eq!(cache.stats().dirty_bytes, 0);
        assert_eq!(cache.power_cut(), PowerCutReport::default());
        assert_eq!(read_all(&cache, A), b"0123");
    }

    #[test]
    fn truncate_inside_the_unsynced_tail_only_trims_the_cache() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123").unwrap();
        open(&mut cache, A, &path);
        cache.write(A, 4, b"456789").unwrap();
        cache.set_len(A, 10).unwrap(); // to the current length: nothing at all
        cache.set_len(A, 7).unwrap(); // inside the unsynced tail
        assert_eq!(read_all(&cache, A), b"0123456");
        assert_eq!(on_disk(&path), b"0123");
        assert_eq!(cache.power_cut(), PowerCutReport { files: 1, bytes: 3 });
        assert_eq!(read_all(&cache, A), b"0123");
    }

    #[test]
    fn growing_past_the_end_is_durable_and_unsynced_data_below_reads_as_zeros_after_a_cut() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        std::fs::write(&path, b"ab").unwrap();
        open(&mut cache, A, &path);
        cache.write(A, 2, b"cd").unwrap();
        cache.set_len(A, 6).unwrap();
        assert_eq!(read_all(&cache, A), b"abcd\0\0");
        assert_eq!(on_disk(&path), b"ab\0\0\0\0");
        cache.power_cut();
        assert_eq!(read_all(&cache, A), b"ab\0\0\0\0");
    }

    #[test]
    fn a_flush_after_a_trim_writes_the_trimmed_length() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        open(&mut cache, A, &path);
        cache.write(A, 100, b"x").unwrap();
        cache.set_len(A, 50).unwrap(); // the dirty byte is gone; a 50-byte hole remains
        assert_eq!(cache.stats().dirty_bytes, 0);
        cache.flush(A, true).unwrap();
        assert_eq!(on_disk(&path), vec![0u8; 50]);
    }

    #[test]
    fn sync_all_flushes_every_file_and_then_a_power_cut_drops_nothing() {
        let (dir, mut cache) = setup();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        open(&mut cache, A, &pa);
        open(&mut cache, B, &pb);
        cache.write(A, 0, b"aaa").unwrap();
        cache.write(B, 0, b"bb").unwrap();
        cache.release(B, false);
        let report = cache.sync_all().unwrap();
        assert_eq!(report, SyncReport { files: 2, bytes: 5 });
        assert_eq!(
            (on_disk(&pa), on_disk(&pb)),
            (b"aaa".to_vec(), b"bb".to_vec())
        );
        assert!(
            !cache.contains(B),
            "a closed file leaves the cache once clean"
        );
        assert_eq!(cache.power_cut(), PowerCutReport::default());
    }

    #[test]
    fn past_the_limit_writes_go_back_unsynced_and_survive_a_cut() {
        let (dir, _) = setup();
        let mut cache = PageCache::new(8);
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        open(&mut cache, A, &pa);
        open(&mut cache, B, &pb);
        cache.write(A, 0, b"aaaaaa").unwrap();
        assert_eq!(on_disk(&pa), b"");
        cache.write(B, 0, b"bbbbbb").unwrap(); // 12 > 8: B (the writer) goes back first
        assert_eq!(on_disk(&pb), b"bbbbbb");
        assert_eq!(on_disk(&pa), b"");
        assert_eq!(cache.stats().written_back_bytes_total, 6);
        assert_eq!(cache.power_cut(), PowerCutReport { files: 1, bytes: 6 });
        assert_eq!(read_all(&cache, B), b"bbbbbb");
        assert_eq!(read_all(&cache, A), b"");
    }

    #[test]
    fn punching_a_hole_zeroes_lazily_inside_the_file() {
        let (dir, mut cache) = setup();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        open(&mut cache, A, &path);
        cache.punch_hole(A, 2, 100).unwrap(); // 2..10 inside, 10..102 past the end
        assert_eq!(read_all(&cache, A), b"01\0\0\0\0\0\0\0\0");
        assert_eq!(on_disk(&path), b"0123456789");
        cache.power_cut();
        assert_eq!(read_all(&cache, A), b"0123456789");
    }

    #[test]
    fn writes_and_truncates_past_the_largest_offset_fail_cleanly() {
        let (dir, mut cache) = setup();
        open(&mut cache, A, &dir.path().join("f"));
        let efbig = Some(libc::EFBIG);
        let err = cache.write(A, u64::MAX - 1, b"abc").unwrap_err();
        assert_eq!(err.raw_os_error(), efbig);
        let err = cache.write(A, u64::MAX / 2 + 1, b"a").unwrap_err();
        assert_eq!(err.raw_os_error(), efbig);
        let err = cache.set_len(A, u64::MAX).unwrap_err();
        assert_eq!(err.raw_os_error(), efbig);
        assert!(cache.punch_hole(A, u64::MAX, 2).is_err());
        assert_eq!(cache.stats().dirty_bytes, 0);
        assert!(cache.write(FileId(99), 0, b"x").is_err());
    }
}
