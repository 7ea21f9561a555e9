//! File attributes as the kernel sees them: the backing file's `stat`,
//! with our inode number and, for a cached file, the cached length and
//! mtime (a write not yet synced already shows in `stat`, as it would on a
//! real filesystem).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

/// `seconds` and `nanos` since the epoch (either side of it).
fn time(seconds: i64, nanos: i64) -> SystemTime {
    let nanos = u32::try_from(nanos.clamp(0, 999_999_999)).unwrap_or(0);
    let base = if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))
    };
    base.and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
        .unwrap_or(UNIX_EPOCH)
}

/// The kind of file `meta` describes (the backing tree holds only what
/// the filesystem can create, but anything found there is reported).
pub(crate) fn kind(meta: &Metadata) -> FileType {
    FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile)
}

/// Attributes for inode `ino` from the backing file's `meta`; `cached`
/// overrides the length and mtime with the page cache's.
pub(crate) fn attr(
    ino: u64,
    meta: &Metadata,
    cached: Option<(u64, Option<SystemTime>)>,
) -> FileAttr {
    let (size, mtime) = match cached {
        Some((len, mtime)) => (
            len,
            mtime.unwrap_or_else(|| time(meta.mtime(), meta.mtime_nsec())),
        ),
        None => (meta.size(), time(meta.mtime(), meta.mtime_nsec())),
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        // Blocks the backing file has, or enough for the cached length.
        blocks: meta.blocks().max(size.div_ceil(512)),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime,
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: kind(meta),
        perm: u16::try_from(meta.mode() & 0o7777).unwrap_or(0o600),
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_on_both_sides_of_the_epoch() {
        assert_eq!(time(1, 5), UNIX_EPOCH + Duration::new(1, 5));
        assert_eq!(time(-1, 0), UNIX_EPOCH - Duration::from_secs(1));
        assert_eq!(time(0, -3), UNIX_EPOCH);
    }

    #[test]
    fn the_cached_length_and_mtime_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let plain = attr(7, &meta, None);
        assert_eq!(
            (plain.ino, plain.size, plain.kind),
            (INodeNo(7), 3, FileType::RegularFile)
        );
        let when = UNIX_EPOCH + Duration::from_secs(1000);
        let cached = attr(7, &meta, Some((10_000, Some(when))));
        assert_eq!((cached.size, cached.mtime), (10_000, when));
        assert!(cached.blocks >= 20);
    }
}
