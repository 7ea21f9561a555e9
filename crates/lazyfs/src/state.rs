//! The filesystem's state and every operation on it, as plain methods that
//! return `io::Result` (`fs.rs` turns them into FUSE replies).
//!
//! Metadata operations (create, mkdir, unlink, rmdir, rename, link, chmod,
//! chown, utimes) go to the backing directory at once; file data goes
//! through the [`PageCache`]. Truncation and `fallocate` are split by the
//! cache (see `cache.rs`).
//!
//! One [`std::sync::Mutex`] guards all of it (see [`Shared`]): the inode
//! table, the cache and the handle tables change together (an unlink must
//! see whether the file is open and drop its cached data in one step), and
//! the only contention is between the FUSE thread and a control command.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, File, FileTimes, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, DirEntryExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use fuser::{FileAttr, FileType, RenameFlags, TimeOrNow};

use crate::attr::{attr, kind};
use crate::cache::{FileId, PageCache, PowerCutReport, Stats, SyncReport};
use crate::inodes::{BackingId, Inodes, ROOT};

fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn backing_id(meta: &std::fs::Metadata) -> BackingId {
    (meta.dev(), meta.ino())
}

/// An open file handle.
#[derive(Debug, Clone, Copy)]
struct OpenFile {
    ino: u64,
    /// `O_APPEND`: every write goes to the current end.
    append: bool,
    /// `O_SYNC`/`O_DSYNC`: every write is flushed at once.
    sync: bool,
}

/// One entry of a directory listing, taken at `opendir`.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) ino: u64,
    pub(crate) kind: FileType,
    pub(crate) name: OsString,
}

/// Attribute changes of a `setattr`.
#[derive(Debug, Default)]
pub(crate) struct SetAttr {
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) size: Option<u64>,
    pub(crate) atime: Option<TimeOrNow>,
    pub(crate) mtime: Option<TimeOrNow>,
}

/// Who asked: new files and directories are given to them when the
/// filesystem runs as root (as a kernel filesystem would).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The whole mutable state of one mounted filesystem.
#[derive(Debug)]
pub(crate) struct State {
    root: PathBuf,
    inodes: Inodes,
    cache: PageCache,
    files: HashMap<u64, OpenFile>,
    dirs: HashMap<u64, Vec<Listed>>,
    next_fh: u64,
    running_as_root: bool,
}

/// The state behind its lock, shared by the FUSE thread and the
/// [`crate::Controller`]s.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
        }
    }

    /// Locks the state. A panic while it was held (none is expected) does
    /// not stop the filesystem: every operation leaves the state valid
    /// between its steps.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn system_time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// Opens a backing file read-write (so any handle can flush the file's
/// cached data), falling back to the access mode asked for when read-write
/// is refused. Never follows a symlink out of the backing tree; only
/// regular files are opened.
fn open_backing(path: &Path, flags: i32) -> io::Result<File> {
    let read_write = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let file = match read_write {
        Ok(file) => file,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            ) =>
        {
            let mut options = OpenOptions::new();
            match flags & libc::O_ACCMODE {
                libc::O_WRONLY => options.write(true),
                libc::O_RDWR => options.read(true).write(true),
                _ => options.read(true),
            };
            options.custom_flags(libc::O_NOFOLLOW).open(path)?
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(os_error(libc::EINVAL));
    }
    Ok(file)
}

impl State {
    /// A filesystem over the backing directory `root`, caching up to
    /// `max_dirty_bytes` before writing back.
    pub(crate) fn new(root: PathBuf, max_dirty_bytes: u64) -> io::Result<Self> {
        let meta = std::fs::metadata(&root)?;
        if !meta.is_dir() {
            return Err(os_error(libc::ENOTDIR));
        }
        Ok(Self {
            inodes: Inodes::new(backing_id(&meta)),
            root,
            cache: PageCache::new(max_dirty_bytes),
            files: HashMap::new(),
            dirs: HashMap::new(),
            next_fh: 1,
            running_as_root: nix::unistd::geteuid().is_root(),
        })
    }

    fn full(&self, relative: &Path) -> PathBuf {
        if relative.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(relative)
        }
    }

    fn path_of(&self, ino: u64) -> io::Result<PathBuf> {
        Ok(self.full(self.inodes.path(ino)?))
    }

    fn next_fh(&mut self) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        fh
    }

    fn open_file(&self, fh: u64) -> io::Result<OpenFile> {
        self.files
            .get(&fh)
            .copied()
            .ok_or_else(|| os_error(libc::EBADF))
    }

    /// Forgets `ino` if nothing refers to it any more.
    fn sweep(&mut self, ino: u64) {
        if !self.cache.contains(FileId(ino)) {
            self.inodes.remove_unused(ino);
        }
    }

    fn sweep_all(&mut self) {
        for ino in self.inodes.numbers() {
            self.sweep(ino);
        }
    }

    /// Gives a new file or directory to the caller when running as root.
    fn give_to_caller(&self, path: &Path, caller: Caller) -> io::Result<()> {
        if self.running_as_root && (caller.uid != 0 || caller.gid != 0) {
            std::os::unix::fs::chown(path, Some(caller.uid), Some(caller.gid))?;
        }
        Ok(())
    }

    /// Looks a path up in the backing tree and records it (one lookup).
    fn remember(&mut self, relative: &Path) -> io::Result<FileAttr> {
        let meta = std::fs::symlink_metadata(self.full(relative))?;
        let ino = self.inodes.remember(relative, backing_id(&meta));
        Ok(attr(ino, &meta, self.cache.len_and_mtime(FileId(ino))))
    }

    pub(crate) fn lookup(&mut self, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        let relative = self.inodes.child(parent, name)?;
        self.remember(&relative)
    }

    pub(crate) fn forget(&mut self, ino: u64, lookups: u64) {
        if self.inodes.forget(ino, lookups) {
            self.sweep(ino);
        }
    }

    pub(crate) fn getattr(&self, ino: u64) -> io::Result<FileAttr> {
        let id = FileId(ino);
        let meta = match self.cache.backing(id) {
            // The open file itself: right even once it is deleted.
            Some(file) => file.metadata()?,
            None => std::fs::symlink_metadata(self.path_of(ino)?)?,
        };
        Ok(attr(ino, &meta, self.cache.len_and_mtime(id)))
    }

    pub(crate) fn setattr(&mut self, ino: u64, change: SetAttr) -> io::Result<FileAttr> {
        let id = FileId(ino);
        if let Some(mode) = change.mode {
            let permissions = Permissions::from_mode(mode & 0o7777);
            match self.cache.backing(id) {
                Some(file) => file.set_permissions(permissions)?,
                None => std::fs::set_permissions(self.path_of(ino)?, permissions)?,
            }
        }
        if change.uid.is_some() || change.gid.is_some() {
            match self.cache.backing(id) {
                Some(file) => std::os::unix::fs::fchown(file, change.uid, change.gid)?,
                None => std::os::unix::fs::lchown(self.path_of(ino)?, change.uid, change.gid)?,
            }
        }
        if let Some(size) = change.size {
            if self.cache.contains(id) {
                self.cache.set_len(id, size)?;
            } else {
                // Nothing cached: the backing file's length is the file's.
                let path = self.path_of(ino)?;
                let file = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)?;
                file.set_len(size)?;
            }
        }
        if change.atime.is_some() || change.mtime.is_some() {
            let mut times = FileTimes::new();
            if let Some(atime) = change.atime {
                times = times.set_accessed(system_time(atime));
            }
            if let Some(mtime) = change.mtime {
                times = times.set_modified(system_time(mtime));
            }
            match self.cache.backing(id) {
                Some(file) => file.set_times(times)?,
                None => File::open(self.path_of(ino)?)?.set_times(times)?,
            }
            if change.mtime.is_some() {
                self.cache.clear_mtime(id);
            }
        }
        self.getattr(ino)
    }

    pub(crate) fn mkdir(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        caller: Caller,
    ) -> io::Result<FileAttr> {
        let relative = self.inodes.child(parent, name)?;
        let path = self.full(&relative);
        let mode = mode & 0o7777;
        DirBuilder::new().mode(mode).create(&path)?;
        // The daemon's own umask must not narrow what the caller asked for.
        std::fs::set_permissions(&path, Permissions::from_mode(mode))?;
        self.give_to_caller(&path, caller)?;
        self.remember(&relative)
    }

    /// Creates (or, without `O_EXCL`, opens) a regular file and opens it.
    pub(crate) fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> io::Result<(FileAttr, u64)> {
        let relative = self.inodes.child(parent, name)?;
        let path = self.full(&relative);
        let mode = mode & 0o7777;
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        } else {
            options.create(true);
        }
        let existed = path.exists();
        let file = options.open(&path)?;
        if !existed {
            file.set_permissions(Permissions::from_mode(mode))?;
            self.give_to_caller(&path, caller)?;
        }
        let meta = file.metadata()?;
        let ino = self.inodes.remember(&relative, backing_id(&meta));
        let fh = self.open_ino(ino, flags, Some(file))?;
        Ok((self.getattr(ino)?, fh))
    }

    /// `mknod` of a regular file (the kernel uses it when `create` is not
    /// available); other kinds of node are not supported.
    pub(crate) fn mknod(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        caller: Caller,
    ) -> io::Result<FileAttr> {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return Err(os_error(libc::EPERM));
        }
        let relative = self.inodes.child(parent, name)?;
        let path = self.full(&relative);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(&path)?;
        file.set_permissions(Permissions::from_mode(mode & 0o7777))?;
        self.give_to_caller(&path, caller)?;
        self.remember(&relative)
    }

    /// A path was removed from the backing tree: the table forgets it and,
    /// if that was the file's last name and it is not open, its cached
    /// data goes (nothing can reach it any more).
    fn after_unlink(&mut self, relative: &Path) {
        if let Some(ino) = self.inodes.unlink(relative) {
            if self.inodes.is_orphan(ino) && !self.cache.is_open(FileId(ino)) {
                self.cache.discard(FileId(ino));
            }
            self.sweep(ino);
        }
    }

    pub(crate) fn unlink(&mut self, parent: u64, name: &OsStr) -> io::Result<()> {
        let relative = self.inodes.child(parent, name)?;
        std::fs::remove_file(self.full(&relative))?;
        self.after_unlink(&relative);
        Ok(())
    }

    pub(crate) fn rmdir(&mut self, parent: u64, name: &OsStr) -> io::Result<()> {
        let relative = self.inodes.child(parent, name)?;
        std::fs::remove_dir(self.full(&relative))?;
        self.after_unlink(&relative);
        Ok(())
    }

    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> io::Result<()> {
        let from = self.inodes.child(parent, name)?;
        let to = self.inodes.child(new_parent, new_name)?;
        let (from_path, to_path) = (self.full(&from), self.full(&to));
        let source = std::fs::symlink_metadata(&from_path)?;
        let target = std::fs::symlink_metadata(&to_path).ok();
        if flags == RenameFlags::RENAME_NOREPLACE {
            if target.is_some() {
                return Err(os_error(libc::EEXIST));
            }
        } else if !flags.is_empty() {
            // RENAME_EXCHANGE and RENAME_WHITEOUT: not needed by RocksDB.
            return Err(os_error(libc::EINVAL));
        }
        std::fs::rename(&from_path, &to_path)?;
        if target.as_ref().map(backing_id) == Some(backing_id(&source)) {
            // Two names of one file: rename(2) does nothing.
            return Ok(());
        }
        if target.is_some() {
            self.after_unlink(&to);
        }
        self.inodes.rename(&from, &to);
        Ok(())
    }

    pub(crate) fn link(
        &mut self,
        ino: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> io::Result<FileAttr> {
        let source = self.path_of(ino)?;
        let relative = self.inodes.child(new_parent, new_name)?;
        std::fs::hard_link(source, self.full(&relative))?;
        self.inodes.link(ino, &relative)?;
        self.getattr(ino)
    }

    /// Registers an open handle of `ino` (opening the backing file if the
    /// cache has none; `file` is one already open).
    fn open_ino(&mut self, ino: u64, flags: i32, file: Option<File>) -> io::Result<u64> {
        let id = FileId(ino);
        let path = match self.cache.contains(id) {
            true => None,
            false => Some(self.path_of(ino)?),
        };
        self.cache.open(id, || match (file, path) {
            (Some(file), _) => Ok(file),
            (None, Some(path)) => open_backing(&path, flags),
            (None, None) => Err(os_error(libc::ENOENT)),
        })?;
        let fh = self.next_fh();
        self.files.insert(
            fh,
            OpenFile {
                ino,
                append: flags & libc::O_APPEND != 0,
                sync: flags & libc::O_DSYNC != 0,
            },
        );
        if flags & libc::O_TRUNC != 0 {
            self.cache.set_len(id, 0)?;
        }
        Ok(fh)
    }

    pub(crate) fn open(&mut self, ino: u64, flags: i32) -> io::Result<u64> {
        if flags & libc::O_DIRECTORY != 0 {
            return Err(os_error(libc::EISDIR));
        }
        self.open_ino(ino, flags, None)
    }

    pub(crate) fn read(&self, fh: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let open = self.open_file(fh)?;
        self.cache.read(FileId(open.ino), offset, size)
    }

    /// Caches a write; `flags` are the file's current flags (`O_DSYNC`
    /// may have been set with `fcntl` since the open).
    pub(crate) fn write(
        &mut self,
        fh: u64,
        offset: u64,
        data: &[u8],
        flags: i32,
    ) -> io::Result<u32> {
        let open = self.open_file(fh)?;
        let id = FileId(open.ino);
        let written = u32::try_from(data.len()).map_err(|_| os_error(libc::EINVAL))?;
        let offset = match open.append || flags & libc::O_APPEND != 0 {
            true => self.cache.len_and_mtime(id).map_or(offset, |(len, _)| len),
            false => offset,
        };
        self.cache.write(id, offset, data)?;
        if open.sync || flags & libc::O_DSYNC != 0 {
            self.cache.flush(id, true)?;
        }
        Ok(written)
    }

    pub(crate) fn fsync(&mut self, fh: u64, datasync: bool) -> io::Result<()> {
        let open = self.open_file(fh)?;
        self.cache.flush(FileId(open.ino), datasync)?;
        Ok(())
    }

    pub(crate) fn release(&mut self, fh: u64) {
        let Some(open) = self.files.remove(&fh) else {
            return;
        };
        let deleted = self.inodes.is_orphan(open.ino);
        self.cache.release(FileId(open.ino), deleted);
        self.sweep(open.ino);
    }

    pub(crate) fn fallocate(
        &mut self,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> io::Result<()> {
        let id = FileId(self.open_file(fh)?.ino);
        const KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        match mode {
            0 => self.cache.allocate(id, offset, length),
            KEEP_SIZE => self.cache.allocate_keep_size(id, offset, length),
            PUNCH => self.cache.punch_hole(id, offset, length),
            _ => Err(os_error(libc::EOPNOTSUPP)),
        }
    }

    /// Lists a directory at `opendir`; `readdir` pages through the list.
    pub(crate) fn opendir(&mut self, ino: u64) -> io::Result<u64> {
        let relative = self.inodes.path(ino)?.to_path_buf();
        let mut listing = vec![
            Listed {
                ino,
                kind: FileType::Directory,
                name: ".".into(),
            },
            Listed {
                ino: ROOT, // the kernel answers `..` itself; any number will do
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        for entry in std::fs::read_dir(self.full(&relative))? {
            let entry = entry?;
            let name = entry.file_name();
            let kind = match entry.file_type() {
                Ok(t) => FileType::from_std(t).unwrap_or(FileType::RegularFile),
                Err(_) => match entry.metadata() {
                    Ok(meta) => kind(&meta),
                    Err(_) => continue, // gone meanwhile
                },
            };
            let ino = self
                .inodes
                .at_path(&relative.join(&name))
                .unwrap_or_else(|| entry.ino());
            listing.push(Listed { ino, kind, name });
        }
        let fh = self.next_fh();
        self.dirs.insert(fh, listing);
        Ok(fh)
    }

    /// The listing of `fh` from entry `offset` on.
    pub(crate) fn readdir(&self, fh: u64, offset: u64) -> io::Result<&[Listed]> {
        let listing = self.dirs.get(&fh).ok_or_else(|| os_error(libc::EBADF))?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(listing.len());
        Ok(&listing[start..])
    }

    pub(crate) fn releasedir(&mut self, fh: u64) {
        self.dirs.remove(&fh);
    }

    pub(crate) fn statfs(&self) -> io::Result<nix::sys::statvfs::Statvfs> {
        nix::sys::statvfs::statvfs(&self.root).map_err(io::Error::from)
    }

    pub(crate) fn power_cut(&mut self) -> PowerCutReport {
        let report = self.cache.power_cut();
        self.sweep_all();
        report
    }

    pub(crate) fn sync(&mut self) -> io::Result<SyncReport> {
        let report = self.cache.sync_all();
        self.sweep_all();
        report
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.cache.stats();
        stats.nodes = self.inodes.numbers().len() as u64;
        stats
    }
}
