//! A consistent, read-only view of a store at one moment — what a leader
//! makes an image from while the store goes on taking writes
//! ([`crate::Store::image_view`]: a RocksDB checkpoint for the durable
//! store, a copy for the in-memory one).

use std::io::Write;

use consensus::driver::SnapshotId;

use super::stream::{ImageHeader, StreamWriter};
use crate::StorageError;

/// One stored record, as the store encodes it.
#[derive(Debug, Clone, Copy)]
pub enum RawRecord<'a> {
    Node { path: &'a str, record: &'a [u8] },
    Session { id: i64, record: &'a [u8] },
}

/// What a view holds.
pub trait ImageView: Send {
    /// The applied index and zxid of the state it holds.
    fn applied(&self) -> (u64, i64);

    /// Every node in path order, then every session in id order.
    fn visit(
        &self,
        each: &mut dyn FnMut(RawRecord<'_>) -> std::io::Result<()>,
    ) -> Result<(), StorageError>;
}

/// Writes the image a view holds, as of log entry `index` of `term`, to
/// `out`. Refused if the view holds another index (the store moved on
/// before the view was taken).
pub fn write_view(
    view: &dyn ImageView,
    index: u64,
    term: u64,
    out: impl Write,
) -> Result<SnapshotId, StorageError> {
    let (applied, zxid) = view.applied();
    if applied != index {
        return Err(StorageError::corrupt(
            "image view",
            format!("it holds the state as of {applied}, not {index}"),
        ));
    }
    let io = |e: std::io::Error| StorageError::Io {
        context: "writing an image".into(),
        source: e,
    };
    let mut writer = StreamWriter::new(out, ImageHeader { index, term, zxid }).map_err(io)?;
    let mut failed = None;
    view.visit(&mut |record| {
        let written = match record {
            RawRecord::Node { path, record } => writer.node(path, record),
            RawRecord::Session { id, record } => writer.session(id, record),
        };
        if let Err(e) = &written {
            failed = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
        written
    })?;
    if let Some(e) = failed {
        return Err(io(e));
    }
    let (bytes, checksum) = writer.finish().map_err(io)?;
    Ok(SnapshotId {
        index,
        term,
        bytes,
        checksum,
    })
}
