//! A server's images, on either side of a snapshot transfer: the one it
//! made last (a leader reads chunks of it to send), and the one it
//! receives — staged chunk by chunk with a running checksum, and decoded
//! into a tree as it arrives, so the tree is ready the moment the last
//! chunk is (the image's bytes are never whole in memory); kept across
//! broken connections and restarts so a transfer resumes. The server and
//! the simulator both keep theirs here; they differ only in where the bytes
//! live ([`ImageDir`]).

use std::io::Read as _;

use consensus::driver::{SnapshotId, Staged};
use tree::{DataTree, SessionRecord, TreeBuilder};

use super::dir::ImageDir;
use super::stream::{ImageRecord, StreamDecoder};
use super::view::{ImageView, write_view};
use crate::writer::WriteCommand;
use crate::{Image, StorageError};

/// Where an image is written while it is made.
const MAKING: &str = "making.tmp";
const MADE: &str = "made-";
const STAGED: &str = "staged-";

fn made_name(index: u64, term: u64) -> String {
    format!("{MADE}{index:020}-{term:020}")
}

fn staged_name(id: &SnapshotId) -> String {
    format!(
        "{STAGED}{:020}-{:020}-{}-{:08x}",
        id.index, id.term, id.bytes, id.checksum
    )
}

/// What is staged of the image being received, and what it decoded to
/// (the decoder's checksum is the image's).
#[derive(Debug)]
struct Staging {
    id: SnapshotId,
    len: u64,
    decoder: StreamDecoder,
    builder: TreeBuilder,
    sessions: Vec<(i64, SessionRecord)>,
}

impl Staging {
    fn new(id: SnapshotId) -> Staging {
        Staging {
            id,
            len: 0,
            decoder: StreamDecoder::new(),
            builder: TreeBuilder::new(),
            sessions: Vec::new(),
        }
    }

    /// All of it: a staging that reaches its image's size with another
    /// checksum is dropped on the spot, so one that stays whole checked out.
    fn complete(&self) -> bool {
        self.len == self.id.bytes
    }

    /// Folds in the next bytes: decoder (and its checksum), tree.
    fn take_in(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.len += bytes.len() as u64;
        let (builder, sessions) = (&mut self.builder, &mut self.sessions);
        self.decoder
            .feed(bytes, &mut |record| {
                match record {
                    ImageRecord::Node(path, node) => builder
                        .push(path, crate::recovery::node_from_record(node))
                        .map_err(|e| StorageError::corrupt("image", e.to_string()))?,
                    ImageRecord::Session(id, session) => sessions.push((id, session)),
                }
                Ok(())
            })
            .map_err(|e| format!("image {}: {e}", self.id))
    }
}

/// A received image, checked, as what installing it takes: the tree it
/// holds and the store's replacement (queued to the log writer, which
/// reads a staged image from its file).
#[derive(Debug)]
pub struct Restored {
    pub tree: DataTree,
    /// The image's zxid.
    pub zxid: i64,
    /// The store's replacement, for the log writer.
    pub install: WriteCommand,
}

/// One server's images.
#[derive(Debug)]
pub struct Images<D: ImageDir> {
    dir: D,
    staging: Option<Staging>,
    /// The image checked before Raft took it, until it is installed.
    prepared: Option<(u64, u64, Restored)>,
}

impl<D: ImageDir> Images<D> {
    /// The images in `dir`. An image made before a restart is not sent
    /// (a new one is made); a partial received one is kept, to resume.
    pub fn open(dir: D) -> Images<D> {
        if let Ok(names) = dir.names() {
            for name in names {
                if (name == MAKING || name.starts_with(MADE))
                    && let Err(e) = dir.remove(&name)
                {
                    tracing::warn!(name, error = %e, "could not remove an old image");
                }
            }
        }
        Images {
            dir,
            staging: None,
            prepared: None,
        }
    }

    pub fn dir(&self) -> &D {
        &self.dir
    }

    /// Makes the image of `view` as of entry `index` of `term` into `dir`,
    /// removing the images made before except those in `keep` (still being
    /// sent: removing one would break its transfer and start it over with
    /// this image). Takes as long as writing the whole state: a server
    /// calls it from a thread of its own.
    pub fn make(
        dir: &D,
        view: &dyn ImageView,
        index: u64,
        term: u64,
        keep: &[SnapshotId],
    ) -> Result<SnapshotId, StorageError> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| StorageError::Io { context, source }
        };
        let out = dir.create(MAKING).map_err(io("creating an image"))?;
        let id = write_view(view, index, term, out)?;
        let name = made_name(index, term);
        dir.rename(MAKING, &name).map_err(io("naming an image"))?;
        let kept: Vec<String> = keep.iter().map(|k| made_name(k.index, k.term)).collect();
        for old in dir.names().map_err(io("listing images"))? {
            if old.starts_with(MADE) && old != name && !kept.contains(&old) {
                dir.remove(&old).map_err(io("removing an old image"))?;
            }
        }
        Ok(id)
    }

    /// `len` bytes at `offset` of image `id`, which this server made.
    pub fn read(&self, id: &SnapshotId, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        let name = made_name(id.index, id.term);
        match self.dir.size(&name) {
            Ok(Some(size)) if size == id.bytes => {}
            Ok(_) => return Err(format!("image {id} is no longer here")),
            Err(e) => return Err(format!("image {id}: {e}")),
        }
        self.dir
            .read_at(&name, offset, len)
            .map_err(|e| format!("reading image {id} at {offset}: {e}"))
    }

    /// A chunk of image `id` at `offset` (see
    /// `consensus::driver::StateMachine::receive_snapshot`).
    pub fn receive(
        &mut self,
        id: &SnapshotId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Staged, String> {
        let name = staged_name(id);
        let (complete, len) = {
            let staging = self.staging_for(id)?;
            (staging.complete(), staging.len)
        };
        if complete {
            return Ok(Staged::Complete);
        }
        if offset != len {
            return Ok(Staged::At(len));
        }
        let taken = match self.dir.append(&name, bytes) {
            Err(e) => Err(format!("staging image {id}: {e}")),
            Ok(()) => match self.staging.as_mut() {
                Some(staging) => staging.take_in(bytes).map(|()| {
                    (
                        staging.len,
                        staging.decoder.checksum(),
                        staging.decoder.ended(),
                    )
                }),
                None => Err("no image staged".into()),
            },
        };
        let (len, computed, ended) = match taken {
            Ok(taken) => taken,
            Err(e) => {
                self.drop_staged();
                return Err(e);
            }
        };
        if len < id.bytes {
            return Ok(Staged::At(len));
        }
        if computed != id.checksum || !ended {
            self.drop_staged();
            return Err(format!(
                "image {id} arrived with checksum {computed:08x} (or ended early): dropped"
            ));
        }
        if let Err(e) = self.dir.sync(&name) {
            self.drop_staged();
            return Err(format!("syncing image {id}: {e}"));
        }
        Ok(Staged::Complete)
    }

    /// Checks a snapshot's data before Raft takes it: an id whose image is
    /// staged whole (or an inline image of an earlier release), its tree
    /// built, kept for [`Images::take`].
    pub fn prepare(&mut self, index: u64, term: u64, data: &[u8]) -> Result<(), String> {
        if self
            .prepared
            .as_ref()
            .is_some_and(|(i, t, _)| (*i, *t) == (index, term))
        {
            return Ok(());
        }
        let restored = match SnapshotId::decode(data) {
            Some(id) => {
                if (id.index, id.term) != (index, term) {
                    return Err(format!("a snapshot for {index}/{term} names image {id}"));
                }
                if !self.staging_for(&id)?.complete() {
                    return Err(format!("image {id} has not arrived whole"));
                }
                let Some(staging) = self.staging.take() else {
                    return Err("no image staged".into());
                };
                let header = staging
                    .decoder
                    .finish()
                    .map_err(|e| format!("image {id}: {e}"))?;
                if (header.index, header.term) != (index, term) {
                    return Err(format!(
                        "a snapshot for {index}/{term} carries the image of {}/{}",
                        header.index, header.term
                    ));
                }
                let tree = staging
                    .builder
                    .finish(staging.sessions, header.zxid)
                    .map_err(|e| format!("the snapshot's tree is inconsistent: {e}"))?;
                let name = staged_name(&id);
                let input = self
                    .dir
                    .open(&name)
                    .map_err(|e| format!("opening image {id}: {e}"))?;
                let dir = self.dir.clone();
                let install = WriteCommand::InstallStream {
                    input,
                    // Once installed (or failed: the leader sends it
                    // again), the staged file has served.
                    done: Box::new(move || {
                        if let Err(e) = dir.remove(&name) {
                            tracing::warn!(name, error = %e, "could not remove an installed image");
                        }
                    }),
                };
                Restored {
                    tree,
                    zxid: header.zxid,
                    install,
                }
            }
            None => {
                let image = crate::decode_image(data).map_err(|e| e.to_string())?;
                restored_inline(image, index, term)?
            }
        };
        self.prepared = Some((index, term, restored));
        Ok(())
    }

    /// The image [`Images::prepare`] checked, to install.
    pub fn take(&mut self, index: u64, term: u64, data: &[u8]) -> Result<Restored, String> {
        self.prepare(index, term, data)?;
        match self.prepared.take() {
            Some((_, _, restored)) => Ok(restored),
            None => Err("no image prepared".to_owned()),
        }
    }

    /// The staging of image `id`: the one in progress, or what a previous
    /// run left of it (read and decoded again), or a new one. Partial
    /// images of other ids are dropped.
    fn staging_for(&mut self, id: &SnapshotId) -> Result<&mut Staging, String> {
        if self.staging.as_ref().is_some_and(|s| s.id == *id) {
            return self
                .staging
                .as_mut()
                .ok_or_else(|| "no image staged".into());
        }
        let name = staged_name(id);
        self.staging = None;
        self.prepared = None;
        if let Ok(names) = self.dir.names() {
            for other in names
                .iter()
                .filter(|n| n.starts_with(STAGED) && **n != name)
            {
                self.remove(other);
            }
        }
        let staging = match self.dir.size(&name) {
            Ok(Some(size)) if size > 0 && size <= id.bytes => match self.replay(id, &name) {
                Ok(staging) => {
                    tracing::info!(image = %id, staged = size, "resuming a partly received image");
                    staging
                }
                Err(e) => {
                    tracing::warn!(image = %id, error = e, "dropping a partly received image");
                    self.remove(&name);
                    Staging::new(*id)
                }
            },
            Ok(Some(_)) => {
                self.remove(&name);
                Staging::new(*id)
            }
            Ok(None) => Staging::new(*id),
            Err(e) => return Err(format!("image {id}: {e}")),
        };
        Ok(self.staging.insert(staging))
    }

    /// What a previous run staged of `id`, read and decoded again.
    fn replay(&self, id: &SnapshotId, name: &str) -> Result<Staging, String> {
        let mut staging = Staging::new(*id);
        let mut input = self.dir.open(name).map_err(|e| e.to_string())?;
        let mut block = vec![0u8; 1 << 20];
        loop {
            let n = input.read(&mut block).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            staging.take_in(&block[..n])?;
        }
        if staging.complete()
            && (staging.decoder.checksum() != id.checksum || !staging.decoder.ended())
        {
            return Err("it does not match its checksum".into());
        }
        Ok(staging)
    }

    /// Drops every staged image.
    fn drop_staged(&mut self) {
        self.staging = None;
        self.prepared = None;
        if let Ok(names) = self.dir.names() {
            for name in names.iter().filter(|n| n.starts_with(STAGED)) {
                self.remove(name);
            }
        }
    }

    fn remove(&self, name: &str) {
        if let Err(e) = self.dir.remove(name) {
            tracing::warn!(name, error = %e, "could not remove an image file");
        }
    }
}

/// An inline image of an earlier release, checked.
fn restored_inline(image: Image, index: u64, term: u64) -> Result<Restored, String> {
    if (image.index, image.term) != (index, term) {
        return Err(format!(
            "a snapshot for {index}/{term} carries the image of {}/{}",
            image.index, image.term
        ));
    }
    let tree = crate::recovery::tree_of(&image)
        .map_err(|e| format!("the snapshot's tree is inconsistent: {e}"))?;
    Ok(Restored {
        tree,
        zxid: image.zxid,
        install: WriteCommand::InstallImage(Box::new(image)),
    })
}
