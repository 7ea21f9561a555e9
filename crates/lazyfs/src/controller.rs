//! [`Controller`]: the commands of a mounted filesystem (power cut, sync,
//! stats), for tests in-process and for the control socket.

use std::sync::Arc;

use crate::cache::{PowerCutReport, Stats, SyncReport};
use crate::error::Error;
use crate::state::Shared;

/// Commands on a mounted LazyFS. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct Controller {
    shared: Arc<Shared>,
}

impl Controller {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Simulates a power failure: every byte not yet fsynced is dropped,
    /// and every file's length goes back to what its backing file holds.
    /// Metadata (names, directories, truncations) is kept: it was durable
    /// at once. Meant to follow a SIGKILL of the processes using the
    /// mount; a file still open stays open and sees the cut.
    pub fn power_cut(&self) -> PowerCutReport {
        let report = self.shared.lock().power_cut();
        tracing::info!(files = report.files, bytes = report.bytes, "power cut");
        report
    }

    /// `sync(1)`: writes every file's cached data to its backing file and
    /// syncs it.
    pub fn sync(&self) -> Result<SyncReport, Error> {
        let report = self.shared.lock().sync().map_err(Error::Flush)?;
        tracing::info!(files = report.files, bytes = report.bytes, "sync");
        Ok(report)
    }

    /// The cache's current sizes and counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }
}
