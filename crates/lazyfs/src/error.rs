//! The library's error type.
//!
//! Errors of the filesystem operations themselves never leave the crate as
//! this type: they are `std::io::Error`s turned into an errno for the kernel
//! (`errno.rs`). This enum is for what a caller of the library sees: a
//! mount that failed, a control request that failed.

use std::io;
use std::path::PathBuf;

/// What can go wrong mounting, unmounting or talking to a mounted LazyFS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backing directory is missing or is not a directory.
    #[error("backing directory {path}: {source}")]
    Backing {
        /// The backing directory given.
        path: PathBuf,
        /// Why it cannot be used.
        source: io::Error,
    },
    /// Mounting the FUSE filesystem failed (no `/dev/fuse`, not permitted,
    /// mount point missing or busy).
    #[error("mounting on {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The error from `mount(2)` or `/dev/fuse`.
        source: io::Error,
    },
    /// Unmounting failed, or the filesystem thread ended with an error.
    #[error("unmounting {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Writing cached data back to the backing files failed (a `sync`
    /// request, or the write-back at unmount).
    #[error("writing cached data back: {0}")]
    Flush(#[source] io::Error),
    /// The control socket could not be created, reached, or answered
    /// something that is not a reply.
    #[error("control socket {path}: {source}")]
    Control {
        /// The socket's path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The control socket answered with an error line.
    #[error("control request refused: {0}")]
    Refused(String),
}
