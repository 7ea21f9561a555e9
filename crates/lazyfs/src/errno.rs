//! Turning I/O errors into the errno the kernel passes to the caller.
//!
//! Backing-file errors carry their errno and pass through unchanged (a
//! full backing disk is `ENOSPC` to RocksDB, as it would be without
//! LazyFS). Errors without one are mapped by kind; anything else is `EIO`.

use std::io;

use fuser::Errno;

/// The errno for `error`.
pub(crate) fn errno(error: &io::Error) -> Errno {
    if let Some(code) = error.raw_os_error() {
        return Errno::from_i32(code);
    }
    let code = match error.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::PermissionDenied => libc::EACCES,
        io::ErrorKind::AlreadyExists => libc::EEXIST,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::OutOfMemory => libc::ENOMEM,
        io::ErrorKind::Unsupported => libc::EOPNOTSUPP,
        _ => libc::EIO,
    };
    Errno::from_i32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_pass_through_and_others_map_by_kind() {
        let enospc = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(errno(&enospc).code(), libc::ENOSPC);
        let missing = io::Error::new(io::ErrorKind::NotFound, "no such file in the cache");
        assert_eq!(errno(&missing).code(), libc::ENOENT);
        assert_eq!(errno(&io::Error::other("?")).code(), libc::EIO);
    }
}
