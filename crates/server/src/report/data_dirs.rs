//! The snapshot and log directories as ZooKeeper reports them (`conf`,
//! `dirs`, the admin API's `configuration`, `dirs` and `server_stats`):
//! their `version-2` subdirectory, its absolute path, and the size of the
//! files in it.

/// Where ZooKeeper keeps snapshots and logs under `dataDir` / `dataLogDir`
/// (`FileTxnSnapLog.VERSION`): `conf`, `dirs` and the admin API report this
/// directory and the size of the files in it, as ZooKeeper does.
pub fn snap_dir(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("version-2")
}

/// A path made absolute without resolving links (`File.getAbsolutePath`).
pub fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_owned())
        .display()
        .to_string()
}

/// Total size of the files directly in a directory (ZooKeeper sums its
/// snapshot and log directories the same way).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
