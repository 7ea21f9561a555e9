//! A server's images, on either side of a snapshot transfer: the one it
//! made last (a leader reads chunks of it to send), and the one it
//! receives (staged chunk by chunk with a running checksum, never whole in
//! memory, kept across broken connections and restarts so a transfer
//! resumes). The server and the simulator both keep theirs here; they
//! differ only in where the bytes live ([`ImageDir`]).

use consensus::driver::{SnapshotId, Staged};
use tree::DataTree;

use super::dir::ImageDir;
use super::stream::read_image;
use super::view::{ImageView, write_view};
use crate::codec::Crc32c;
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

/// What is staged of the image being received.
#[derive(Debug)]
struct Staging {
    id: SnapshotId,
    len: u64,
    crc: Crc32c,
    complete: bool,
}

/// A received image, decoded and checked, and the tree it holds: what
/// installing it takes.
#[derive(Debug)]
pub struct Restored {
    pub image: Image,
    pub tree: DataTree,
}

/// One server's images.
#[derive(Debug)]
pub struct Images<D: ImageDir> {
    dir: D,
    staging: Option<Staging>,
    /// The image checked before Raft took it, until it is installed.
    prepared: Option<Restored>,
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

    /// Makes the image of `view` as of entry `index` of `term` into `dir`
    /// (replacing the one made before). Takes as long as writing the
    /// whole state: a server calls it from a thread of its own.
    pub fn make(
        dir: &D,
        view: &dyn ImageView,
        index: u64,
        term: u64,
    ) -> Result<SnapshotId, StorageError> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| StorageError::Io { context, source }
        };
        let out = dir.create(MAKING).map_err(io("creating an image"))?;
        let id = write_view(view, index, term, out)?;
        let name = made_name(index, term);
        dir.rename(MAKING, &name).map_err(io("naming an image"))?;
        for old in dir.names().map_err(io("listing images"))? {
            if old.starts_with(MADE) && old != name {
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
        let staging = self.staging_for(id)?;
        if staging.complete {
            return Ok(Staged::Complete);
        }
        if offset != staging.len {
            return Ok(Staged::At(staging.len));
        }
        if let Err(e) = self.dir.append(&name, bytes) {
            self.drop_staged();
            return Err(format!("staging image {id}: {e}"));
        }
        let Some(staging) = self.staging.as_mut() else {
            return Err("no image staged".into());
        };
        staging.crc.update(bytes);
        staging.len += bytes.len() as u64;
        if staging.len < id.bytes {
            return Ok(Staged::At(staging.len));
        }
        if staging.crc.value() != id.checksum {
            let computed = staging.crc.value();
            self.drop_staged();
            return Err(format!(
                "image {id} arrived with checksum {computed:08x}: dropped"
            ));
        }
        staging.complete = true;
        if let Err(e) = self.dir.sync(&name) {
            self.drop_staged();
            return Err(format!("syncing image {id}: {e}"));
        }
        Ok(Staged::Complete)
    }

    /// Checks a snapshot's data before Raft takes it: an id whose image is
    /// staged whole (or an inline image of an earlier release), decoded
    /// and restored into a tree, kept for [`Images::take`].
    pub fn prepare(&mut self, index: u64, term: u64, data: &[u8]) -> Result<(), String> {
        if self
            .prepared
            .as_ref()
            .is_some_and(|p| p.image.index == index && p.image.term == term)
        {
            return Ok(());
        }
        let image = match SnapshotId::decode(data) {
            Some(id) => {
                if (id.index, id.term) != (index, term) {
                    return Err(format!("a snapshot for {index}/{term} names image {id}"));
                }
                if !self.staging_for(&id)?.complete {
                    return Err(format!("image {id} has not arrived whole"));
                }
                let input = self
                    .dir
                    .open(&staged_name(&id))
                    .map_err(|e| format!("opening image {id}: {e}"))?;
                read_image(input).map_err(|e| e.to_string())?
            }
            None => crate::decode_image(data).map_err(|e| e.to_string())?,
        };
        if (image.index, image.term) != (index, term) {
            return Err(format!(
                "a snapshot for {index}/{term} carries the image of {}/{}",
                image.index, image.term
            ));
        }
        let tree = crate::recovery::tree_of(&image)
            .map_err(|e| format!("the snapshot's tree is inconsistent: {e}"))?;
        self.prepared = Some(Restored { image, tree });
        Ok(())
    }

    /// The image [`Images::prepare`] checked, to install; its staged file
    /// is dropped (a crash before the install is durable leaves the old
    /// state, and the leader sends the image again).
    pub fn take(&mut self, index: u64, term: u64, data: &[u8]) -> Result<Restored, String> {
        self.prepare(index, term, data)?;
        self.drop_staged();
        self.prepared
            .take()
            .ok_or_else(|| "no image prepared".to_owned())
    }

    /// The staging of image `id`: the one in progress, or what a previous
    /// run left of it (checked again), or a new one. Partial images of
    /// other ids are dropped.
    fn staging_for(&mut self, id: &SnapshotId) -> Result<&mut Staging, String> {
        if self.staging.as_ref().is_some_and(|s| s.id == *id) {
            return self
                .staging
                .as_mut()
                .ok_or_else(|| "no image staged".into());
        }
        let name = staged_name(id);
        self.staging = None;
        if let Ok(names) = self.dir.names() {
            for other in names
                .iter()
                .filter(|n| n.starts_with(STAGED) && **n != name)
            {
                self.remove(other);
            }
        }
        let mut staging = Staging {
            id: *id,
            len: 0,
            crc: Crc32c::default(),
            complete: false,
        };
        match self.dir.size(&name) {
            Ok(Some(size)) if size > 0 && size <= id.bytes => match self.checksum_of(&name) {
                Ok(crc) if size < id.bytes || crc.value() == id.checksum => {
                    staging.len = size;
                    staging.crc = crc;
                    staging.complete = size == id.bytes;
                    tracing::info!(image = %id, staged = size, "resuming a partly received image");
                }
                _ => self.remove(&name),
            },
            Ok(Some(_)) => self.remove(&name),
            Ok(None) => {}
            Err(e) => return Err(format!("image {id}: {e}")),
        }
        Ok(self.staging.insert(staging))
    }

    fn checksum_of(&self, name: &str) -> std::io::Result<Crc32c> {
        let mut input = self.dir.open(name)?;
        let mut crc = Crc32c::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                return Ok(crc);
            }
            crc.update(&buf[..n]);
        }
    }

    /// Drops every staged image.
    fn drop_staged(&mut self) {
        self.staging = None;
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

use std::io::Read as _;
