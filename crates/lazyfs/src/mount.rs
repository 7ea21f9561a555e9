//! Mounting and unmounting: [`mount`] starts the FUSE session on a thread
//! and returns a [`Mounted`] handle.
//!
//! fuser mounts without libfuse: as root it calls `mount(2)` on
//! `/dev/fuse` itself; otherwise it runs `fusermount3` (Debian's `fuse3`
//! package), which must then be installed. The mount is `allow_other` and
//! `default_permissions`, so a server running as another user can use it
//! and the kernel checks permissions.
//!
//! Unmounting while a process still has files open on the mount fails
//! with `EBUSY`; [`Mounted::unmount`] then detaches the mount lazily
//! (`umount -l`) and keeps serving the open files until they are closed.
//! A LazyFS that was killed leaves a dead mount (`ENOTCONN` on every
//! access); [`recover_stale_mount`] detaches it, as `umount -l <dir>` or
//! `fusermount3 -u -z <dir>` would.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};
use nix::mount::MntFlags;

use crate::controller::Controller;
use crate::error::Error;
use crate::fs::LazyFs;
use crate::state::{Shared, State};

/// The default write-back threshold: 1 GiB of unsynced data in total.
pub const DEFAULT_MAX_DIRTY_BYTES: u64 = 1 << 30;

/// What to mount where.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// The directory that holds the data (what a real disk would keep).
    pub backing: PathBuf,
    /// Where the filesystem appears (an existing, empty directory).
    pub mount_point: PathBuf,
    /// Past this many unsynced bytes in total, dirty files are written
    /// back (unsynced), as a kernel would; that data then survives a power
    /// cut. See [`crate::Stats::written_back_bytes_total`].
    pub max_dirty_bytes: u64,
}

impl MountConfig {
    /// `backing` mounted on `mount_point`, with the default threshold.
    pub fn new(backing: impl Into<PathBuf>, mount_point: impl Into<PathBuf>) -> Self {
        Self {
            backing: backing.into(),
            mount_point: mount_point.into(),
            max_dirty_bytes: DEFAULT_MAX_DIRTY_BYTES,
        }
    }
}

/// A mounted LazyFS. Dropping it unmounts (lazily if busy); prefer
/// [`Mounted::unmount`], which reports errors and waits for the end.
#[derive(Debug)]
pub struct Mounted {
    mount_point: PathBuf,
    controller: Controller,
    unmounter: SessionUnmounter,
    session: Option<JoinHandle<io::Result<()>>>,
}

/// Mounts `config.backing` on `config.mount_point`. The filesystem serves
/// requests once this returns.
pub fn mount(config: &MountConfig) -> Result<Mounted, Error> {
    let backing = config
        .backing
        .canonicalize()
        .map_err(|source| Error::Backing {
            path: config.backing.clone(),
            source,
        })?;
    let mount_error = |source| Error::Mount {
        path: config.mount_point.clone(),
        source,
    };
    let mount_point = config.mount_point.canonicalize().map_err(mount_error)?;
    if mount_point.starts_with(&backing) || backing.starts_with(&mount_point) {
        return Err(mount_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the mount point and the backing directory must not contain each other",
        )));
    }
    let state =
        State::new(backing.clone(), config.max_dirty_bytes).map_err(|source| Error::Backing {
            path: backing.clone(),
            source,
        })?;
    let shared = Arc::new(Shared::new(state));
    let mut options = Config::default();
    options.mount_options = vec![
        MountOption::FSName("lazyfs".to_owned()),
        MountOption::Subtype("lazyfs".to_owned()),
        MountOption::DefaultPermissions,
    ];
    options.acl = SessionACL::All;
    let mut session =
        Session::new(LazyFs::new(shared.clone()), &mount_point, &options).map_err(mount_error)?;
    let unmounter = session.unmount_callable();
    let thread = std::thread::Builder::new()
        .name("lazyfs-fuse".to_owned())
        .spawn(move || session.run())
        .map_err(mount_error)?;
    tracing::info!(backing = %backing.display(), mount = %mount_point.display(), "mounted");
    Ok(Mounted {
        mount_point,
        controller: Controller::new(shared),
        unmounter,
        session: Some(thread),
    })
}

impl Mounted {
    /// Where the filesystem is mounted (canonical).
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// A handle for power cuts, syncs and stats.
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// Whether the filesystem has stopped (unmounted from outside, e.g.
    /// by `umount`).
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Unmounts (the cache is written back, as at a clean shutdown) and
    /// waits for the filesystem thread. If processes still have files
    /// open on the mount, it is detached and this waits until they close.
    pub fn unmount(mut self) -> Result<(), Error> {
        self.detach()?;
        let error = |source| Error::Unmount {
            path: self.mount_point.clone(),
            source,
        };
        match self.session.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(error(e)),
            Some(Err(_)) => Err(error(io::Error::other("the filesystem thread panicked"))),
        }
    }

    /// Unmounts, or detaches lazily when busy.
    fn detach(&mut self) -> Result<(), Error> {
        match self.unmounter.unmount() {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::warn!(
                    mount = %self.mount_point.display(),
                    "mount busy: detaching it; open files are served until closed"
                );
                nix::mount::umount2(&self.mount_point, MntFlags::MNT_DETACH).map_err(|e| {
                    Error::Unmount {
                        path: self.mount_point.clone(),
                        source: e.into(),
                    }
                })
            }
            Err(source) => Err(Error::Unmount {
                path: self.mount_point.clone(),
                source,
            }),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.session.is_some()
            && let Err(e) = self.detach()
        {
            tracing::warn!(error = %e, "unmounting on drop");
        }
    }
}

/// If `mount_point` is a dead FUSE mount (its LazyFS was killed: every
/// access fails with `ENOTCONN`), detaches it and returns `true`.
pub fn recover_stale_mount(mount_point: &Path) -> Result<bool, Error> {
    match std::fs::metadata(mount_point) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            nix::mount::umount2(mount_point, MntFlags::MNT_DETACH).map_err(|e| Error::Unmount {
                path: mount_point.to_path_buf(),
                source: e.into(),
            })?;
            tracing::warn!(mount = %mount_point.display(), "detached a stale mount");
            Ok(true)
        }
        _ => Ok(false),
    }
}
