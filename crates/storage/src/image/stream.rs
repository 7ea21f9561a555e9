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

/// Decodes an image stream from bytes as they come (chunks from a peer,
/// blocks from a file), record by record, checking every record and, at
/// the end, the counts, the order and the checksum. Errors are
/// [`StorageError::Corrupt`], never panics: the bytes come from a peer or
/// a file.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Bytes not decoded yet.
    pending: Vec<u8>,
    /// CRC-32C of every byte decoded so far (the trailer too, once the
    /// stream ended: the image's checksum, its `SnapshotId`'s).
    crc: Crc32c,
    header: Option<ImageHeader>,
    nodes: u64,
    sessions: u64,
    /// The previous node's path (a buffer reused: no allocation per node).
    last_path: String,
    /// The previous node's ACL list, shared with the next that has it.
    acl: codec::SharedAcl,
    ended: bool,
}

/// What decoding the pending bytes found.
enum Step {
    Record(ImageRecord),
    /// The header, or the end: nothing to hand out.
    Nothing,
    /// More bytes are needed.
    More,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// Whether the whole stream arrived and checked out.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// CRC-32C of every byte decoded so far: once the stream ended, of the
    /// whole image.
    pub fn checksum(&self) -> u32 {
        self.crc.value()
    }

    /// Decodes what `bytes` complete, handing each record to `each`.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        each: &mut dyn FnMut(ImageRecord) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        if self.ended {
            return Err(corrupt("bytes after the end of the image"));
        }
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            match self.step(&mut at) {
                Ok(Step::Record(record)) => {
                    if let Err(e) = each(record) {
                        break Err(e);
                    }
                }
                Ok(Step::Nothing) => {}
                Ok(Step::More) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.pending.drain(..at);
        if result.is_ok() && self.ended && !self.pending.is_empty() {
            return Err(corrupt("bytes after the end of the image"));
        }
        result
    }

    /// The stream must have ended: its header.
    pub fn finish(&self) -> Result<ImageHeader, StorageError> {
        match self.header {
            Some(header) if self.ended => Ok(header),
            _ => Err(corrupt("it ends before its end")),
        }
    }

    /// Decodes one thing at `*at` of the pending bytes, moving `*at` past
    /// it (and folding its bytes into the checksum) only when it is whole.
    fn step(&mut self, at: &mut usize) -> Result<Step, StorageError> {
        if self.ended {
            return Ok(Step::More);
        }
        let mut r = Cursor {
            bytes: &self.pending[*at..],
            at: 0,
        };
        if self.header.is_none() {
            let Some(magic) = r.take(8) else {
                return Ok(Step::More);
            };
            if magic != MAGIC {
                return Err(corrupt("it does not start as an image stream"));
            }
            let (Some(index), Some(term), Some(zxid)) = (r.u64(), r.u64(), r.u64()) else {
                return Ok(Step::More);
            };
            self.header = Some(ImageHeader {
                index,
                term,
                zxid: zxid as i64,
            });
            self.consume(at, r.at);
            return Ok(Step::Nothing);
        }
        let Some(tag) = r.take(1) else {
            return Ok(Step::More);
        };
        match tag[0] {
            NODE => {
                if self.sessions > 0 {
                    return Err(corrupt("a node after the sessions"));
                }
                let Some(path) = r.field()? else {
                    return Ok(Step::More);
                };
                let Some(record) = r.field()? else {
                    return Ok(Step::More);
                };
                let path = codec::decode_node_key(path).map_err(|e| e.into_error("image"))?;
                if self.nodes > 0 && self.last_path >= path {
                    return Err(corrupt(format!("node {path} out of order")));
                }
                let node = codec::decode_node_sharing(record, &mut self.acl)
                    .map_err(|e| e.into_error(format!("image node {path}")))?;
                let used = r.at;
                self.consume(at, used);
                self.nodes += 1;
                self.last_path.clear();
                self.last_path.push_str(&path);
                Ok(Step::Record(ImageRecord::Node(path, node)))
            }
            SESSION => {
                let Some(id) = r.u64() else {
                    return Ok(Step::More);
                };
                let Some(record) = r.field()? else {
                    return Ok(Step::More);
                };
                let id = id as i64;
                let session = codec::decode_session(record)
                    .map_err(|e| e.into_error(format!("image session {id:#x}")))?;
                let used = r.at;
                self.consume(at, used);
                self.sessions += 1;
                Ok(Step::Record(ImageRecord::Session(id, session)))
            }
            END => {
                let (Some(nodes), Some(sessions)) = (r.u64(), r.u64()) else {
                    return Ok(Step::More);
                };
                let body = r.at;
                let Some(trailer) = r.take(4) else {
                    return Ok(Step::More);
                };
                if (nodes, sessions) != (self.nodes, self.sessions) {
                    return Err(corrupt(format!(
                        "it says {nodes} nodes and {sessions} sessions, it holds {} and {}",
                        self.nodes, self.sessions
                    )));
                }
                let stored = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                self.consume(at, body);
                let computed = self.crc.value();
                if stored != computed {
                    return Err(corrupt(format!(
                        "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                    )));
                }
                self.consume(at, 4);
                self.ended = true;
                Ok(Step::Nothing)
            }
            other => Err(corrupt(format!("unknown record kind {other}"))),
        }
    }

    fn consume(&mut self, at: &mut usize, len: usize) {
        self.crc.update(&self.pending[*at..*at + len]);
        *at += len;
    }
}

/// Reads within the pending bytes; `None` when they end first.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }

    /// A length-prefixed field; an error for a length over the limit
    /// (before its bytes arrive, so a hostile length buffers nothing).
    fn field(&mut self) -> Result<Option<&'a [u8]>, StorageError> {
        let Some(len) = self.take(4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if len > MAX_FIELD {
            return Err(corrupt(format!("a field of {len} bytes")));
        }
        Ok(self.take(len as usize))
    }
}

/// The records of an image stream read from `input`, decoded as they are
/// read (a block at a time).
pub fn read_records(
    mut input: impl Read,
    each: &mut dyn FnMut(ImageRecord) -> Result<(), StorageError>,
) -> Result<ImageHeader, StorageError> {
    let mut decoder = StreamDecoder::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = input
            .read(&mut block)
            .map_err(|e| corrupt(format!("reading: {e}")))?;
        if n == 0 {
            return decoder.finish();
        }
        decoder.feed(&block[..n], each)?;
    }
}

/// A whole image stream, read and checked.
pub fn read_image(input: impl Read) -> Result<Image, StorageError> {
    let mut nodes = Vec::new();
    let mut sessions = Vec::new();
    let header = read_records(input, &mut |record| {
        match record {
            ImageRecord::Node(path, node) => nodes.push((path, node)),
            ImageRecord::Session(id, session) => sessions.push((id, session)),
        }
        Ok(())
    })?;
    Ok(Image {
        index: header.index,
        term: header.term,
        zxid: header.zxid,
        nodes,
        sessions,
    })
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
