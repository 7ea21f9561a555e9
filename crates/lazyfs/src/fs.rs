//! The FUSE glue: each kernel request becomes one call on [`State`] under
//! its lock, and its result one reply (an error as its errno).
//!
//! Two choices here keep the kernel from showing what a power cut dropped:
//! attributes and directory entries are given a time-to-live of zero (a
//! file's length is asked for again after a power cut shrank it), and
//! every file is opened with `FOPEN_DIRECT_IO`, so the kernel keeps no page
//! cache of its own and every read comes here. The cost is speed, which a
//! crash test does not need; the cost in function is that shared writable
//! `mmap` of files on the mount is refused (RocksDB does not use it by
//! default).

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileHandle, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::errno::errno;
use crate::state::{Caller, SetAttr, Shared};

/// How long the kernel may trust an attribute or entry: not at all.
const TTL: Duration = Duration::ZERO;
const GENERATION: Generation = Generation(0);

/// The mountable filesystem: a handle on the shared state.
#[derive(Debug)]
pub(crate) struct LazyFs {
    shared: Arc<Shared>,
}

impl LazyFs {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
    }
}

fn fail(op: &'static str, error: &std::io::Error) -> Errno {
    let code = errno(error);
    tracing::debug!(op, %error, errno = code.code(), "request failed");
    code
}

impl fuser::Filesystem for LazyFs {
    /// A clean unmount writes the cache back, as a clean shutdown of a
    /// real machine does; a power cut must be asked for before it.
    fn destroy(&mut self) {
        match self.shared.lock().sync() {
            Ok(report) => tracing::info!(
                files = report.files,
                bytes = report.bytes,
                "unmounted: cached data written back"
            ),
            Err(e) => tracing::error!(error = %e, "unmounted: writing cached data back failed"),
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.shared.lock().lookup(parent.0, name) {
            Ok(attr) => reply.entry(&TTL, &attr, GENERATION),
            // Misses are the common case (RocksDB probes for files): quiet.
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.shared.lock().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.shared.lock().getattr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(fail("getattr", &e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.shared.lock().setattr(ino.0, change) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(fail("setattr", &e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        match self
            .shared
            .lock()
            .mknod(parent.0, name, mode & !umask, caller(req))
        {
            Ok(attr) => reply.entry(&TTL, &attr, GENERATION),
            Err(e) => reply.error(fail("mknod", &e)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self
            .shared
            .lock()
            .mkdir(parent.0, name, mode & !umask, caller(req))
        {
            Ok(attr) => reply.entry(&TTL, &attr, GENERATION),
            Err(e) => reply.error(fail("mkdir", &e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.shared.lock().unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("unlink", &e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.shared.lock().rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("rmdir", &e)),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self
            .shared
            .lock()
            .rename(parent.0, name, newparent.0, newname, flags)
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("rename", &e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        match self.shared.lock().link(ino.0, newparent.0, newname) {
            Ok(attr) => reply.entry(&TTL, &attr, GENERATION),
            Err(e) => reply.error(fail("link", &e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.shared.lock().open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(fail("open", &e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.shared.lock().read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(fail("read", &e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.shared.lock().write(fh.0, offset, data, flags.0) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(fail("write", &e)),
        }
    }

    /// `close(2)`: nothing is written back (a page cache does not either).
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.shared.lock().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.shared.lock().fsync(fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("fsync", &e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.shared.lock().opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(fail("opendir", &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.shared.lock();
        match state.readdir(fh.0, offset) {
            Ok(entries) => {
                for (next, entry) in (offset + 1..).zip(entries) {
                    if reply.add(INodeNo(entry.ino), next, entry.kind, &entry.name) {
                        break; // the reply buffer is full; the kernel asks again
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(fail("readdir", &e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.shared.lock().releasedir(fh.0);
        reply.ok();
    }

    /// Directory fsync: a no-op, since every metadata change already
    /// reached the backing directory.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.shared.lock().statfs() {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                u32::try_from(s.block_size()).unwrap_or(4096),
                u32::try_from(s.name_max()).unwrap_or(255),
                u32::try_from(s.fragment_size()).unwrap_or(4096),
            ),
            Err(e) => reply.error(fail("statfs", &e)),
        }
    }

    /// Permissions are checked by the kernel (`default_permissions`); this
    /// answers `access(2)` only for existence.
    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        match self.shared.lock().getattr(ino.0) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(fail("access", &e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self
            .shared
            .lock()
            .create(parent.0, name, mode & !umask, flags, caller(req));
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                GENERATION,
                FileHandle(fh),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(fail("create", &e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        match self.shared.lock().fallocate(fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("fallocate", &e)),
        }
    }
}
