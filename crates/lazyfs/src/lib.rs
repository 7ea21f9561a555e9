//! LazyFS: a FUSE passthrough filesystem that keeps unsynced file data in
//! memory and drops it on command, for power-cut tests of real
//! `conclave-server` processes (after Jepsen's LazyFS).
//!
//! A test runs the server with its data directory on the mount, SIGKILLs
//! it, calls [`Controller::power_cut`] (or sends `power-cut` to the control
//! socket), and starts the server again on the same mount: it then sees
//! what a real disk would have kept.
//!
//! # Durability rules
//!
//! - **File data is lazy.** A `write` goes to an in-memory cache of the file
//!   (the "page cache") and is visible to every read at once. It reaches
//!   the backing file only when the file is `fsync`ed or `fdatasync`ed
//!   (through any open handle of that file: all of the file's cached data
//!   is written, then the backing file is synced), when it is opened with
//!   `O_SYNC`/`O_DSYNC`, on a `sync` command, or by write-back when more
//!   than `max_dirty_bytes` (default 1 GiB) are cached in total.
//!   `close` does **not** make data durable, nor does `flush`, nor does
//!   unlinking or renaming the file.
//! - **Metadata is durable at once** (a simplification: real filesystems
//!   may lose a create or rename not followed by a directory fsync):
//!   create, mkdir, unlink, rmdir, rename, link, chmod, chown and utimes go
//!   to the backing directory immediately. Directory fsync is therefore a
//!   no-op. A file created and written but never fsynced survives a power
//!   cut as an empty file; a file written without fsync and renamed over
//!   another leaves the new name empty (ext4's classic zero-length file).
//! - **Length changes**: a truncate applies to the backing file at once in so
//!   far as it does not depend on unsynced data. Cutting below the synced
//!   length cuts the backing file; growing past the current length grows
//!   it (the new bytes are zeros, and unsynced data below the old length
//!   then reads as zeros after a power cut). A truncate inside the unsynced
//!   tail only trims the cache, and one to the current length changes
//!   nothing (RocksDB truncates every file it closes to its own length).
//!   `fallocate` reserves space in the backing file; without
//!   `FALLOC_FL_KEEP_SIZE` its growth is a truncate; punching a hole zeroes
//!   the range in the cache (lazy, like a write) and releases space past
//!   the end at once. Other `fallocate` modes are refused (`EOPNOTSUPP`).
//! - **A power cut** drops every unsynced byte of every file (open or not),
//!   and every file's length goes back to its backing file's. Nothing
//!   else changes: names and directories stay as they are. Files still
//!   open stay open.
//! - **Unmount** (SIGTERM, SIGINT, [`Mounted::unmount`]) writes the cache
//!   back first, like a clean shutdown. Killing LazyFS itself loses the
//!   cache, like a power cut, and leaves a dead mount to detach
//!   ([`recover_stale_mount`], or `umount -l <dir>`).
//!
//! The kernel keeps no page cache of its own for the mount (every file is
//! opened with `direct_io`) and trusts no attribute (zero TTL), so after a
//! power cut every process sees the backing files' contents and lengths.
//!
//! # Not supported
//!
//! Symlinks, device nodes, fifos, sockets, extended attributes and shared
//! writable `mmap` (all refused with an errno); `RENAME_EXCHANGE`. POSIX
//! and `flock` locks work, handled by the kernel on the mount alone.
//!
//! # Layout
//!
//! `extents` (dirty ranges of one file, pure) · `cache` (the page cache
//! over backing files) · `inodes` (inode numbers ↔ backing paths) ·
//! `state` (every operation, under one lock) · `fs` (the FUSE glue) ·
//! `attr`, `errno` (conversions) · `controller` (power cut, sync, stats) ·
//! `control` (the control socket) · `mount` (mount, unmount, stale mounts).

mod attr;
mod cache;
pub mod control;
mod controller;
mod errno;
mod error;
mod extents;
mod fs;
mod inodes;
mod mount;
mod state;

pub use cache::{FileId, PageCache, PowerCutReport, Stats, SyncReport};
pub use controller::Controller;
pub use error::Error;
pub use mount::{DEFAULT_MAX_DIRTY_BYTES, MountConfig, Mounted, mount, recover_stale_mount};
