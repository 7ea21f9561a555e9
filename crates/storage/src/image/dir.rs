//! Where images are kept while made, sent and received: files in a
//! directory of the data directory for a server ([`FileDir`]), a map in
//! memory for the simulator ([`MemoryDir`]). Both are cheap handles on the
//! same place: a clone reaches the same files.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::writeback::{self, SyncingWriter};

/// A flat directory of named byte files.
pub trait ImageDir: Clone + Send + 'static {
    fn names(&self) -> std::io::Result<Vec<String>>;
    /// The size of `name`, if it exists.
    fn size(&self, name: &str) -> std::io::Result<Option<u64>>;
    /// A new, empty `name` to write (replacing one of that name).
    fn create(&self, name: &str) -> std::io::Result<Box<dyn Write + Send>>;
    /// Appends to `name`, creating it.
    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn read_at(&self, name: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>>;
    fn open(&self, name: &str) -> std::io::Result<Box<dyn Read + Send>>;
    /// Makes `name` durable (its bytes and its entry in the directory).
    fn sync(&self, name: &str) -> std::io::Result<()>;
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()>;
    /// Removes `name`; nothing if it does not exist.
    fn remove(&self, name: &str) -> std::io::Result<()>;
}

/// Images as files in one directory, created when first needed.
#[derive(Debug, Clone)]
pub struct FileDir {
    dir: PathBuf,
}

impl FileDir {
    pub fn new(dir: impl Into<PathBuf>) -> FileDir {
        FileDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn at(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl ImageDir for FileDir {
    fn names(&self) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn size(&self, name: &str) -> std::io::Result<Option<u64>> {
        match std::fs::metadata(self.at(name)) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Synced as it is written (`writeback.rs`): an image is gigabytes.
    fn create(&self, name: &str) -> std::io::Result<Box<dyn Write + Send>> {
        std::fs::create_dir_all(&self.dir)?;
        let file = File::create(self.at(name))?;
        Ok(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            SyncingWriter::new(file),
        )))
    }

    /// Synced at each few MiB it grows by (`writeback.rs`).
    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.at(name))?;
        let before = file.metadata()?.len();
        file.write_all(bytes)?;
        if writeback::crossed(before, before + bytes.len() as u64) {
            file.sync_data()?;
        }
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut file = File::open(self.at(name))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = vec![0u8; len];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    fn open(&self, name: &str) -> std::io::Result<Box<dyn Read + Send>> {
        let file = File::open(self.at(name))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, file)))
    }

    fn sync(&self, name: &str) -> std::io::Result<()> {
        File::open(self.at(name))?.sync_all()?;
        File::open(&self.dir)?.sync_all()
    }

    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        std::fs::rename(self.at(from), self.at(to))
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.at(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// Images in memory (the simulator's disk holds one; losing the disk
/// empties it).
#[derive(Debug, Clone, Default)]
pub struct MemoryDir(Arc<Mutex<BTreeMap<String, Vec<u8>>>>);

impl MemoryDir {
    pub fn new() -> MemoryDir {
        MemoryDir::default()
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything is gone (a lost disk).
    pub fn clear(&self) {
        self.files().clear();
    }

    /// Overwrites a byte of `name` (a damaged file, for tests).
    pub fn damage(&self, name: &str, at: usize) {
        if let Some(byte) = self.files().get_mut(name).and_then(|f| f.get_mut(at)) {
            *byte ^= 0xff;
        }
    }
}

fn not_found(name: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no image file {name}"),
    )
}

/// A file being written into a [`MemoryDir`]: each write appends.
struct MemoryFile {
    dir: MemoryDir,
    name: String,
}

impl Write for MemoryFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.dir.append(&self.name, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ImageDir for MemoryDir {
    fn names(&self) -> std::io::Result<Vec<String>> {
        Ok(self.files().keys().cloned().collect())
    }

    fn size(&self, name: &str) -> std::io::Result<Option<u64>> {
        Ok(self.files().get(name).map(|f| f.len() as u64))
    }

    fn create(&self, name: &str) -> std::io::Result<Box<dyn Write + Send>> {
        self.files().insert(name.to_owned(), Vec::new());
        Ok(Box::new(MemoryFile {
            dir: self.clone(),
            name: name.to_owned(),
        }))
    }

    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.files()
            .entry(name.to_owned())
            .or_default()
            .extend_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let files = self.files();
        let file = files.get(name).ok_or_else(|| not_found(name))?;
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        file.get(start..start.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
    }

    fn open(&self, name: &str) -> std::io::Result<Box<dyn Read + Send>> {
        let bytes = self
            .files()
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }

    fn sync(&self, _name: &str) -> std::io::Result<()> {
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        let mut files = self.files();
        let bytes = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_owned(), bytes);
        Ok(())
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.files().remove(name);
        Ok(())
    }
}
