//! The image stream: the state machine as of one log entry, as a sequence
//! of records that can be written while a store is read and read while
//! it is written to another, without holding the whole in memory. What a
//! leader sends a follower too far behind, in chunks
//! (`consensus::driver::image_stream`), and what a backup holds.
//!
//! ```text
//! magic "CNCLIMG2" | index u64 | term u64 | zxid i64
//! ( 0x01 | path: u32 len, bytes | node record: u32 len, bytes        )*
//! ( 0x02 | session id i64       | session record: u32 len, bytes     )*
//! 0x00 | nodes u64 | sessions u64 | CRC-32C of everything before, u32
//! ```
//!
//! Records are the store's own encodings (each sealed with its own
//! checksum), nodes in path order, then sessions in id order; integers
//! are big-endian. The image's id (`consensus::driver::SnapshotId`) carries
//! its size and the CRC-32C of all of it, trailer included.

use std::io::{Read, Write};

use tree::SessionRecord;

use crate::codec::{self, Crc32c};
use crate::{Image, NodeRecord, StorageError};

const MAGIC: &[u8; 8] = b"CNCLIMG2";
const NODE: u8 = 1;
const SESSION: u8 = 2;
const END: u8 = 0;
/// No path or record is longer (ZooKeeper's `jute.maxbuffer` is 1 MiB
/// by default; a stored record is a little more than its data).
const MAX_FIELD: u32 = 64 << 20;

/// Where an image stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub index: u64,
    pub term: u64,
    pub zxid: i64,
}

/// Writes an image stream, record by record.
pub struct StreamWriter<W: Write> {
    out: W,
    crc: Crc32c,
    bytes: u64,
    nodes: u64,
    sessions: u64,
}

impl<W: Write> std::fmt::Debug for StreamWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("bytes", &self.bytes)
            .field("nodes", &self.nodes)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

impl<W: Write> StreamWriter<W> {
    pub fn new(out: W, header: ImageHeader) -> std::io::Result<Self> {
        let mut writer = StreamWriter {
            out,
            crc: Crc32c::default(),
            bytes: 0,
            nodes: 0,
            sessions: 0,
        };
        writer.put(MAGIC)?;
        writer.put(&header.index.to_be_bytes())?;
        writer.put(&header.term.to_be_bytes())?;
        writer.put(&header.zxid.to_be_bytes())?;
        Ok(writer)
    }

    /// A node, its record as the store encodes it.
    pub fn node(&mut self, path: &str, record: &[u8]) -> std::io::Result<()> {
        self.put(&[NODE])?;
        self.field(path.as_bytes())?;
        self.field(record)?;
        self.nodes += 1;
        Ok(())
    }

    /// A session, its record as the store encodes it (after every node).
    pub fn session(&mut self, id: i64, record: &[u8]) -> std::io::Result<()> {
        self.put(&[SESSION])?;
        self.put(&id.to_be_bytes())?;
        self.field(record)?;
        self.sessions += 1;
        Ok(())
    }

    /// Ends the stream: its size and checksum.
    pub fn finish(mut self) -> std::io::Result<(u64, u32)> {
        self.put(&[END])?;
        self.put(&self.nodes.to_be_bytes())?;
        self.put(&self.sessions.to_be_bytes())?;
        let trailer = self.crc.value().to_be_bytes();
        self.put(&trailer)?;
        self.out.flush()?;
        Ok((self.bytes, self.crc.value()))
    }

    fn field(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|len| *len <= MAX_FIELD)
            .ok_or_else(|| std::io::Error::other("a record too large for an image"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// One record of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRecord {
    Node(String, NodeRecord),
    Session(i64, SessionRecord),
}

/// Reads an image stream record by record, checking every record and, at
/// the end, the counts and the checksum. Errors are
/// [`StorageError::Corrupt`], never panics: the bytes come from a peer or
/// a file.
pub struct StreamReader<R: Read> {
    input: R,
    crc: Crc32c,
    header: ImageHeader,
    nodes: u64,
    sessions: u64,
    ended: bool,
}

impl<R: Read> std::fmt::Debug for StreamReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("header", &self.header)
            .field("nodes", &self.nodes)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

impl<R: Read> StreamReader<R> {
    pub fn new(input: R) -> Result<Self, StorageError> {
        let mut reader = StreamReader {
            input,
            crc: Crc32c::default(),
            header: ImageHeader {
                index: 0,
                term: 0,
                zxid: 0,
            },
            nodes: 0,
            sessions: 0,
            ended: false,
        };
        let mut magic = [0u8; 8];
        reader.take(&mut magic, "image magic")?;
        if &magic != MAGIC {
            return Err(corrupt("it does not start as an image stream"));
        }
        reader.header = ImageHeader {
            index: reader.u64("image index")?,
            term: reader.u64("image term")?,
            zxid: reader.u64("image zxid")? as i64,
        };
        Ok(reader)
    }

    pub fn header(&self) -> ImageHeader {
        self.header
    }

    /// The next record; `None` once the stream ended and checked out.
    pub fn next_record(&mut self) -> Result<Option<ImageRecord>, StorageError> {
        if self.ended {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.take(&mut tag, "record kind")?;
        match tag[0] {
            NODE => {
                if self.sessions > 0 {
                    return Err(corrupt("a node after the sessions"));
                }
                let path = self.field("node path")?;
                let path = codec::decode_node_key(&path).map_err(|e| e.into_error("image"))?;
                let record = self.field("node record")?;
                let node = codec::decode_node(&record)
                    .map_err(|e| e.into_error(format!("image node {path}")))?;
                self.nodes += 1;
                Ok(Some(ImageRecord::Node(path, node)))
            }
            SESSION => {
                let id = self.u64("session id")? as i64;
                let record = self.field("session record")?;
                let session = codec::decode_session(&record)
                    .map_err(|e| e.into_error(format!("image session {id:#x}")))?;
                self.sessions += 1;
                Ok(Some(ImageRecord::Session(id, session)))
            }
            END => {
                let nodes = self.u64("node count")?;
                let sessions = self.u64("session count")?;
                if (nodes, sessions) != (self.nodes, self.sessions) {
                    return Err(corrupt(format!(
                        "it says {nodes} nodes and {sessions} sessions, it holds {} and {}",
                        self.nodes, self.sessions
                    )));
                }
                let computed = self.crc.value();
                let mut trailer = [0u8; 4];
                self.take(&mut trailer, "image checksum")?;
                let stored = u32::from_be_bytes(trailer);
                if stored != computed {
                    return Err(corrupt(format!(
                        "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                    )));
                }
                let mut extra = [0u8; 1];
                match self.input.read(&mut extra) {
                    Ok(0) => {}
                    Ok(_) => return Err(corrupt("bytes after the end of the image")),
                    Err(e) => return Err(corrupt(format!("reading: {e}"))),
                }
                self.ended = true;
                Ok(None)
            }
            other => Err(corrupt(format!("unknown record kind {other}"))),
        }
    }

    fn field(&mut self, what: &'static str) -> Result<Vec<u8>, StorageError> {
        let mut len = [0u8; 4];
        self.take(&mut len, what)?;
        let len = u32::from_be_bytes(len);
        if len > MAX_FIELD {
            return Err(corrupt(format!("{what} of {len} bytes")));
        }
        let mut bytes = vec![0u8; len as usize];
        self.take(&mut bytes, what)?;
        Ok(bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, StorageError> {
        let mut bytes = [0u8; 8];
        self.take(&mut bytes, what)?;
        Ok(u64::from_be_bytes(bytes))
    }

    fn take(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), StorageError> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(format!("it ends within the {what}"))
            } else {
                corrupt(format!("reading the {what}: {e}"))
            }
        })?;
        self.crc.update(buf);
        Ok(())
    }
}

/// A whole image stream, read and checked.
pub fn read_image(input: impl Read) -> Result<Image, StorageError> {
    let mut reader = StreamReader::new(input)?;
    let header = reader.header();
    let mut image = Image {
        index: header.index,
        term: header.term,
        zxid: header.zxid,
        nodes: Vec::new(),
        sessions: Vec::new(),
    };
    let mut last_path: Option<String> = None;
    while let Some(record) = reader.next_record()? {
        match record {
            ImageRecord::Node(path, node) => {
                if last_path.as_ref().is_some_and(|last| *last >= path) {
                    return Err(corrupt(format!("node {path} out of order")));
                }
                last_path = Some(path.clone());
                image.nodes.push((path, node));
            }
            ImageRecord::Session(id, session) => image.sessions.push((id, session)),
        }
    }
    Ok(image)
}

/// An image (a bootstrap point, a test's) as a stream.
pub fn write_image(image: &Image, out: impl Write) -> std::io::Result<(u64, u32)> {
    let mut writer = StreamWriter::new(
        out,
        ImageHeader {
            index: image.index,
            term: image.term,
            zxid: image.zxid,
        },
    )?;
    for (path, node) in &image.nodes {
        writer.node(path, &codec::encode_node(node))?;
    }
    for (id, session) in &image.sessions {
        writer.session(*id, &codec::encode_session(session))?;
    }
    writer.finish()
}

fn corrupt(detail: impl Into<String>) -> StorageError {
    StorageError::corrupt("image stream", detail)
}
