//! Certificates that are read again when their files change: a TLS
//! configuration built from key and trust store files, rebuilt when one of
//! them changes (size or modification time, following symbolic links: a
//! Kubernetes Secret volume swaps a link to a new directory). Connections
//! made after a rebuild use the new configuration; open ones keep theirs.
//!
//! A rebuild that fails (a file half-written, a key that does not match
//! its new certificate) keeps the configuration in use and is tried again
//! at the next check: a running server never drops to no TLS, and never
//! stops serving because a rotation went wrong; it says so.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use super::{SslSettings, TlsError};

/// How often the files are looked at.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(10);

/// One file's state as last read.
type Stamp = Option<(SystemTime, u64)>;

type Build<T> = Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>;

/// A configuration `T` built from `files`, rebuilt when they change.
pub struct Reloadable<T> {
    what: &'static str,
    files: Vec<PathBuf>,
    build: Build<T>,
    current: RwLock<Arc<T>>,
    /// The files' stamps when `current` was built.
    stamps: Mutex<Vec<Stamp>>,
}

impl<T> std::fmt::Debug for Reloadable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloadable")
            .field("what", &self.what)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// What a check found.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Reloaded,
    /// The files changed and could not be built from: the old
    /// configuration stays in use.
    Failed(TlsError),
}

impl<T> Reloadable<T> {
    /// Builds the first configuration; its error stops the server.
    pub fn new(
        what: &'static str,
        files: Vec<PathBuf>,
        build: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Reloadable<T>, TlsError> {
        let stamps = stamps(&files);
        let first = build()?;
        Ok(Reloadable {
            what,
            files,
            build: Box::new(build),
            current: RwLock::new(Arc::new(first)),
            stamps: Mutex::new(stamps),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<T> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds if a file changed since the last build.
    pub fn check(&self) -> Reload {
        let now = stamps(&self.files);
        let Ok(mut last) = self.stamps.lock() else {
            return Reload::Unchanged;
        };
        if *last == now {
            return Reload::Unchanged;
        }
        match (self.build)() {
            Ok(built) => {
                match self.current.write() {
                    Ok(mut current) => *current = Arc::new(built),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(built),
                }
                *last = now;
                Reload::Reloaded
            }
            Err(e) => Reload::Failed(e),
        }
    }

    /// Checks every [`CHECK_EVERY`] for as long as the server runs, saying
    /// what came of each change.
    pub fn watch(self: Arc<Self>)
    where
        T: Send + Sync + 'static,
    {
        tokio::spawn(async move {
            let mut said_failure: Option<String> = None;
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                match self.check() {
                    Reload::Unchanged => {}
                    Reload::Reloaded => {
                        said_failure = None;
                        tracing::info!(
                            what = self.what,
                            "certificates changed on disk: read again"
                        );
                    }
                    Reload::Failed(e) => {
                        let text = e.to_string();
                        if said_failure.as_deref() != Some(text.as_str()) {
                            tracing::error!(
                                what = self.what,
                                error = %text,
                                "certificates changed on disk but cannot be used; keeping the ones in use"
                            );
                            said_failure = Some(text);
                        }
                    }
                }
            }
        });
    }
}

/// The files a configuration from `settings` is built from: its stores
/// and their password files.
pub(super) fn store_files(settings: &SslSettings) -> Vec<PathBuf> {
    [&settings.key_store, &settings.trust_store]
        .into_iter()
        .flat_map(|s| [s.location.clone(), s.password_path.clone()])
        .flatten()
        .collect()
}

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_changed_file_is_read_again_and_a_bad_one_keeps_the_old() {
        let dir = std::env::temp_dir().join(format!("conclave-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("store.pem");
        std::fs::write(&file, "one").unwrap();
        let builds = Arc::new(AtomicU32::new(0));
        let (path, counted) = (file.clone(), builds.clone());
        let reloadable = Reloadable::new("test", vec![file.clone()], move || {
            counted.fetch_add(1, Ordering::Relaxed);
            let text = std::fs::read_to_string(&path).map_err(|e| TlsError::Store {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            if text == "bad" {
                return Err(TlsError::Store {
                    path: path.display().to_string(),
                    reason: "bad".into(),
                });
            }
            Ok(text)
        })
        .unwrap();
        assert_eq!(*reloadable.current(), "one");
        assert!(matches!(reloadable.check(), Reload::Unchanged));
        assert_eq!(
            builds.load(Ordering::Relaxed),
            1,
            "nothing changed, nothing built"
        );

        std::fs::write(&file, "two, longer").unwrap();
        assert!(matches!(reloadable.check(), Reload::Reloaded));
        assert_eq!(*reloadable.current(), "two, longer");

        std::fs::write(&file, "bad").unwrap();
        assert!(matches!(reloadable.check(), Reload::Failed(_)));
        assert_eq!(*reloadable.current(), "two, longer");
        // Tried again at the next check, until the files are good.
        assert!(matches!(reloadable.check(), Reload::Failed(_)));
        std::fs::write(&file, "three").unwrap();
        assert!(matches!(reloadable.check(), Reload::Reloaded));
        assert_eq!(*reloadable.current(), "three");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
