//! Which column families hold the tree and the sessions: one pair per
//! *generation*. A store is created at generation 0 (`tree`, `sessions`).
//! Installing a snapshot's image fills the next generation's pair
//! (`tree.1`, `sessions.1`, …) from table files written beside the store
//! as the image's stream is read — the image's records come in key order,
//! as a table file wants them — then one small synced batch in `meta`
//! names the new generation, together with the image's applied and
//! compaction markers and the emptied log, and the old pair is dropped.
//! Until that batch is durable the store is the old one (the next open
//! drops a half-filled pair); after it, the new one.
//!
//! Why not one write batch of the whole image, as a store of format
//! version 1 installed it: the batch and then RocksDB's memtables held
//! every record, which at 5,000,000 znodes of 256 bytes took a follower
//! catching up to 6.2 GiB resident (against 2.7 GiB for its leader).
//! Here the image passes through a table file writer's buffers only (the
//! same follower then peaked at 2.7 GiB, below its leader's 2.9).

use std::io::Read;
use std::path::{Path, PathBuf};

use rocksdb::{IngestExternalFileOptions, Options, SstFileWriter, WriteBatch};

use super::{CF_META, CF_SESSIONS, CF_TREE, RocksStore, beside, db_options, remove_dir_if_present};
use crate::codec::{self, meta_key};
use crate::image::{ImageHeader, RawRecord};
use crate::writeback::SYNC_EVERY_BYTES;
use crate::{FORMAT_VERSION, StorageError};

/// The pair of column families of one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Generation {
    number: u64,
    tree: String,
    sessions: String,
}

impl Generation {
    pub(super) fn new(number: u64) -> Generation {
        let name = |base: &str| {
            if number == 0 {
                base.to_owned()
            } else {
                format!("{base}.{number}")
            }
        };
        Generation {
            number,
            tree: name(CF_TREE),
            sessions: name(CF_SESSIONS),
        }
    }

    pub(super) fn number(&self) -> u64 {
        self.number
    }

    pub(super) fn tree(&self) -> &str {
        &self.tree
    }

    pub(super) fn sessions(&self) -> &str {
        &self.sessions
    }

    pub(super) fn next(&self) -> Generation {
        Generation::new(self.number + 1)
    }

    /// Its column families' names.
    pub(super) fn names(&self) -> [&str; 2] {
        [&self.tree, &self.sessions]
    }

    /// Whether `name` is the tree's or the sessions' column family of some
    /// generation (this one's or a leftover of another).
    pub(super) fn is_generation_name(name: &str) -> bool {
        // The number it would have, then whether that generation's names
        // are spelt so (`tree.01`, `tree.0` and `trees` are not).
        let number = name
            .rsplit_once('.')
            .map_or(Some(0), |(_, number)| number.parse::<u64>().ok());
        number.is_some_and(|number| Generation::new(number).names().contains(&name))
    }
}

/// The generation `meta` names (`get` reads a metadata key).
pub(super) fn read_generation(
    dir: &Path,
    get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Generation, StorageError> {
    match get(meta_key::GENERATION)? {
        None => Ok(Generation::new(0)),
        Some(bytes) => codec::decode_generation(&bytes)
            .map(Generation::new)
            .map_err(|e| e.into_error(format!("generation in {}", dir.display()))),
    }
}

/// Where an install writes its table files: beside the store, on the same
/// file system (ingesting them moves them into the store).
pub(super) fn tables_dir(store: &Path) -> PathBuf {
    beside(store, ".image-install")
}

/// One table file, opened at its first record.
struct TableFile<'o> {
    path: PathBuf,
    writer: Option<SstFileWriter<'o>>,
    /// The same file, to sync what the writer wrote every few MiB
    /// (`writeback.rs`; RocksDB's table file writer has no such option).
    synced: Option<std::fs::File>,
    /// Record bytes put since the last sync.
    unsynced: u64,
}

impl<'o> TableFile<'o> {
    fn new(path: PathBuf) -> TableFile<'o> {
        TableFile {
            path,
            writer: None,
            synced: None,
            unsynced: 0,
        }
    }

    fn put(&mut self, options: &'o Options, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let context = || format!("writing table file {}", self.path.display());
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                let writer = SstFileWriter::create(options);
                writer
                    .open(&self.path)
                    .map_err(|e| StorageError::rocks(context(), e))?;
                self.writer.insert(writer)
            }
        };
        writer
            .put(key, value)
            .map_err(|e| StorageError::rocks(context(), e))?;
        self.unsynced += (key.len() + value.len()) as u64;
        if self.unsynced >= SYNC_EVERY_BYTES {
            self.unsynced = 0;
            let io = |source| StorageError::Io {
                context: format!("syncing table file {}", self.path.display()),
                source,
            };
            if self.synced.is_none() {
                self.synced = Some(std::fs::File::open(&self.path).map_err(io)?);
            }
            if let Some(file) = &self.synced {
                file.sync_data().map_err(io)?;
            }
        }
        Ok(())
    }

    /// The finished file, if it holds any record (a table file cannot be
    /// empty).
    fn finish(mut self) -> Result<Option<PathBuf>, StorageError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(None);
        };
        writer.finish().map_err(|e| {
            StorageError::rocks(format!("finishing table file {}", self.path.display()), e)
        })?;
        Ok(Some(self.path))
    }
}

impl RocksStore {
    /// Replaces the tree, the sessions and the log with the image `input`
    /// streams, as the next generation (see the module's notes). Nothing
    /// changes if the stream fails its checks or a write fails before the
    /// switch.
    pub(super) fn install_next_generation(
        &mut self,
        input: &mut dyn Read,
    ) -> Result<(), StorageError> {
        self.check_usable()?;
        let next = self.generation.next();
        let tables = tables_dir(&self.dir);
        let filled = remove_dir_if_present(&tables).and_then(|()| self.fill(&next, &tables, input));
        if let Err(e) = remove_dir_if_present(&tables) {
            tracing::warn!(error = %e, "could not remove an install's table files");
        }
        match filled {
            Ok(header) => self.switch_to(next, header),
            Err(e) => {
                self.drop_generation(&next, "an image that did not install");
                Err(e)
            }
        }
    }

    /// Writes the image's records into table files, checks the whole
    /// stream, and ingests the files into `next`'s new column families.
    fn fill(
        &mut self,
        next: &Generation,
        dir: &Path,
        input: &mut dyn Read,
    ) -> Result<ImageHeader, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
        let options = db_options()?;
        let mut tree = TableFile::new(dir.join("tree.sst"));
        let mut sessions = TableFile::new(dir.join("sessions.sst"));
        // The stream's own checks (order, counts, checksum) run as it is
        // read; nothing is ingested before they all passed.
        let header = crate::image::read_raw_records(input, &mut |record| match record {
            RawRecord::Node { path, record } => tree.put(&options, codec::node_key(path), record),
            RawRecord::Session { id, record } => {
                sessions.put(&options, &codec::session_key(id), record)
            }
        })?;
        let files = [tree.finish()?, sessions.finish()?];
        let mut ingest = IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        // Left by an install that failed in this process.
        self.drop_generation(next, "an earlier install's");
        for (name, file) in next.names().into_iter().zip(files) {
            self.db.create_cf(name, &options).map_err(|e| {
                StorageError::rocks(
                    format!("creating column family {name} in {}", self.dir.display()),
                    e,
                )
            })?;
            if let Some(file) = file {
                self.db
                    .ingest_external_file_cf_opts(self.cf(name)?, &ingest, vec![file])
                    .map_err(|e| {
                        StorageError::rocks(format!("ingesting the image into {name}"), e)
                    })?;
            }
        }
        Ok(header)
    }

    /// One synced batch: the log emptied, the markers at the image's index,
    /// `next` named. Then the replaced generation is dropped.
    fn switch_to(&mut self, next: Generation, header: ImageHeader) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        self.put_image_point(&mut batch, &header)?;
        let meta = self.cf(CF_META)?;
        batch.put_cf(
            meta,
            meta_key::GENERATION,
            codec::encode_generation(next.number()),
        );
        batch.put_cf(
            meta,
            meta_key::FORMAT_VERSION,
            codec::encode_format_version(FORMAT_VERSION),
        );
        self.write_opt(batch, "the switch to an installed image", true)?;
        self.meta.format_version = FORMAT_VERSION;
        self.at_image_point(&header);
        let replaced = std::mem::replace(&mut self.generation, next);
        tracing::info!(
            generation = self.generation.number(),
            index = header.index,
            "installed an image"
        );
        self.drop_generation(&replaced, "the generation an image replaced");
        Ok(())
    }

    /// Drops `generation`'s column families, where they exist; a failure
    /// leaves them to the next open.
    pub(super) fn drop_generation(&mut self, generation: &Generation, what: &str) {
        for name in generation.names() {
            if self.db.cf_handle(name).is_some()
                && let Err(e) = self.db.drop_cf(name)
            {
                tracing::warn!(name, what, error = %e, "could not drop a column family");
            }
        }
    }
}
