//! Shared by the integration tests: a LazyFS mounted over a temporary
//! backing directory, or a clear skip where FUSE cannot be mounted.
//!
//! Set `LAZYFS_REQUIRE_FUSE=1` to turn the skip into a failure (for a
//! machine where these tests must run).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io;
use std::path::{Path, PathBuf};

use lazyfs::{Controller, Error, MountConfig, Mounted};

/// A mounted LazyFS; unmounted (and its directories removed) on drop.
pub struct Fixture {
    // Dropped in this order: the mount before the directories.
    pub mounted: Option<Mounted>,
    pub backing: PathBuf,
    pub mount: PathBuf,
    _dirs: tempfile::TempDir,
}

impl Fixture {
    pub fn controller(&self) -> Controller {
        self.mounted.as_ref().expect("mounted").controller()
    }

    /// A path on the mount.
    pub fn at(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }

    /// The same path in the backing directory (what a real disk holds).
    pub fn on_disk(&self, name: &str) -> PathBuf {
        self.backing.join(name)
    }

    pub fn unmount(&mut self) {
        if let Some(mounted) = self.mounted.take() {
            mounted.unmount().expect("unmount");
        }
    }
}

impl Drop for Fixture {
    /// Unmounts without waiting (a failed test may have left files open:
    /// the mount is then detached and served until they close).
    fn drop(&mut self) {
        drop(self.mounted.take());
    }
}

fn skip(why: &str) -> Option<Fixture> {
    if std::env::var_os("LAZYFS_REQUIRE_FUSE").is_some() {
        panic!("FUSE is required (LAZYFS_REQUIRE_FUSE is set) but: {why}");
    }
    eprintln!("SKIPPED: cannot mount a FUSE filesystem here: {why}");
    None
}

/// Why FUSE cannot be used here, if it cannot.
pub fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is absent".to_owned());
    }
    None
}

/// Mounts a fresh LazyFS, or returns `None` (after saying why) when this
/// machine cannot mount FUSE filesystems.
pub fn mount() -> Option<Fixture> {
    mount_with(lazyfs::DEFAULT_MAX_DIRTY_BYTES)
}

pub fn mount_with(max_dirty_bytes: u64) -> Option<Fixture> {
    if let Some(why) = fuse_unavailable() {
        return skip(&why);
    }
    let dirs = tempfile::tempdir().expect("tempdir");
    let backing = dirs.path().join("backing");
    let mount = dirs.path().join("mnt");
    std::fs::create_dir(&backing).expect("mkdir backing");
    std::fs::create_dir(&mount).expect("mkdir mnt");
    let mut config = MountConfig::new(&backing, &mount);
    config.max_dirty_bytes = max_dirty_bytes;
    match lazyfs::mount(&config) {
        Ok(mounted) => Some(Fixture {
            mount: mounted.mount_point().to_path_buf(),
            backing: backing.canonicalize().expect("canonical backing"),
            mounted: Some(mounted),
            _dirs: dirs,
        }),
        Err(Error::Mount { source, .. })
            if matches!(
                source.raw_os_error(),
                Some(libc::EPERM | libc::EACCES | libc::ENODEV)
            ) || source.kind() == io::ErrorKind::NotFound =>
        {
            skip(&format!("mount failed: {source}"))
        }
        Err(e) => panic!("mounting LazyFS: {e}"),
    }
}
