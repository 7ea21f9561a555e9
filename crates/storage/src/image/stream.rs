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

use super::view::RawRecord;
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

/// Where [`StreamDecoder`] hands its records.
enum Records<'a> {
    Decoded(&'a mut dyn FnMut(ImageRecord) -> Result<(), StorageError>),
    Raw(&'a mut dyn FnMut(RawRecord<'_>) -> Result<(), StorageError>),
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
    /// A record left in its encoding (`feed_raw`): where its parts lie in
    /// the pending bytes, and its whole length, not consumed yet.
    Raw(RawAt, usize),
    /// The header, or the end: nothing to hand out.
    Nothing,
    /// More bytes are needed.
    More,
}

/// Where an encoded record's parts lie in the pending bytes.
enum RawAt {
    Node {
        path: std::ops::Range<usize>,
        record: std::ops::Range<usize>,
    },
    Session {
        id: i64,
        record: std::ops::Range<usize>,
    },
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
        self.feed_with(bytes, &mut Records::Decoded(each))
    }

    /// As [`StreamDecoder::feed`], handing out records in their encoding
    /// (the store's) without decoding them: for an image whose records
    /// were decoded and checked once already (a staged image, installed
    /// into a store). The stream's structure, its counts, its order and
    /// its checksum are checked all the same.
    pub fn feed_raw(
        &mut self,
        bytes: &[u8],
        each: &mut dyn FnMut(RawRecord<'_>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.feed_with(bytes, &mut Records::Raw(each))
    }

    fn feed_with(&mut self, bytes: &[u8], each: &mut Records<'_>) -> Result<(), StorageError> {
        if self.ended {
            return Err(corrupt("bytes after the end of the image"));
        }
        self.pending.extend_from_slice(bytes);
        let raw = matches!(each, Records::Raw(_));
        let mut at = 0;
        let result = loop {
            match self.step(&mut at, raw) {
                Ok(Step::Record(record)) => {
                    let Records::Decoded(each) = each else {
                        break Err(corrupt("a decoded record in a raw read"));
                    };
                    if let Err(e) = each(record) {
                        break Err(e);
                    }
                }
                Ok(Step::Raw(where_, used)) => {
                    let Records::Raw(each) = each else {
                        break Err(corrupt("a raw record in a decoded read"));
                    };
                    let record = match &where_ {
                        RawAt::Node { path, record } => RawRecord::Node {
                            // Checked to be UTF-8 by `step`.
                            path: std::str::from_utf8(&self.pending[path.clone()])
                                .unwrap_or_default(),
                            record: &self.pending[record.clone()],
                        },
                        RawAt::Session { id, record } => RawRecord::Session {
                            id: *id,
                            record: &self.pending[record.clone()],
                        },
                    };
                    if let Err(e) = each(record) {
                        break Err(e);
                    }
                    self.consume(&mut at, used);
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
    /// it (and folding its bytes into the checksum) only when it is whole;
    /// with `raw`, a record's own bytes are not decoded, and the caller
    /// moves past it once it has handed it out.
    fn step(&mut self, at: &mut usize, raw: bool) -> Result<Step, StorageError> {
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
                let path_at = *at + r.at - path.len();
                let Some(record) = r.field()? else {
                    return Ok(Step::More);
                };
                let record_at = *at + r.at - record.len();
                let path = std::str::from_utf8(path)
                    .map_err(|e| corrupt(format!("a node path that is not UTF-8 ({e})")))?;
                if self.nodes > 0 && self.last_path.as_str() >= path {
                    return Err(corrupt(format!("node {path} out of order")));
                }
                let node = if raw {
                    None
                } else {
                    let node = codec::decode_node_sharing(record, &mut self.acl)
                        .map_err(|e| e.into_error(format!("image node {path}")))?;
                    Some(node)
                };
                self.nodes += 1;
                self.last_path.clear();
                self.last_path.push_str(path);
                let used = r.at;
                match node {
                    None => {
                        let where_ = RawAt::Node {
                            path: path_at..path_at + path.len(),
                            record: record_at..record_at + record.len(),
                        };
                        Ok(Step::Raw(where_, used))
                    }
                    Some(node) => {
                        self.consume(at, used);
                        let path = self.last_path.clone();
                        Ok(Step::Record(ImageRecord::Node(path, node)))
                    }
                }
            }
            SESSION => {
                let Some(id) = r.u64() else {
                    return Ok(Step::More);
                };
                let Some(record) = r.field()? else {
                    return Ok(Step::More);
                };
                let id = id as i64;
                let record_at = *at + r.at - record.len();
                let used = r.at;
                if raw {
                    self.sessions += 1;
                    let where_ = RawAt::Session {
                        id,
                        record: record_at..record_at + record.len(),
                    };
                    return Ok(Step::Raw(where_, used));
                }
                let session = codec::decode_session(record)
                    .map_err(|e| e.into_error(format!("image session {id:#x}")))?;
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
    input: impl Read,
    each: &mut dyn FnMut(ImageRecord) -> Result<(), StorageError>,
) -> Result<ImageHeader, StorageError> {
    read_with(input, &mut Records::Decoded(each))
}

/// As [`read_records`], handing out records in their encoding (see
/// [`StreamDecoder::feed_raw`]).
pub fn read_raw_records(
    input: impl Read,
    each: &mut dyn FnMut(RawRecord<'_>) -> Result<(), StorageError>,
) -> Result<ImageHeader, StorageError> {
    read_with(input, &mut Records::Raw(each))
}

fn read_with(mut input: impl Read, each: &mut Records<'_>) -> Result<ImageHeader, StorageError> {
    let mut decoder = StreamDecoder::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = input
            .read(&mut block)
            .map_err(|e| corrupt(format!("reading: {e}")))?;
        if n == 0 {
            return decoder.finish();
        }
        decoder.feed_with(&block[..n], each)?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use tree::StatPersisted;

    use super::*;

    fn image(nodes: usize, size: usize) -> Image {
        let acl = Arc::new(vec![proto::Acl::new(31, "world", "anyone")]);
        let node = |i: usize| NodeRecord {
            data: Some(vec![(i % 251) as u8; size]),
            acl: acl.clone(),
            stat: StatPersisted::created(i as i64 + 1, 1000, 0),
        };
        Image {
            index: 9,
            term: 2,
            zxid: 0x2_0000_0009,
            nodes: std::iter::once(("/".to_owned(), node(0)))
                .chain((0..nodes).map(|i| (format!("/n{i:04}"), node(i))))
                .collect(),
            sessions: vec![(
                0x100,
                SessionRecord {
                    timeout_ms: 4000,
                    password: vec![7; 16],
                },
            )],
        }
    }

    /// Everything `feed_raw` hands out for `bytes` fed in chunks of
    /// `chunk`, decoded, and the header; or the first error.
    fn read_raw(bytes: &[u8], chunk: usize) -> Result<Image, StorageError> {
        let mut decoder = StreamDecoder::new();
        let (mut nodes, mut sessions) = (Vec::new(), Vec::new());
        for piece in bytes.chunks(chunk) {
            decoder.feed_raw(piece, &mut |record| {
                match record {
                    RawRecord::Node { path, record } => {
                        let node = codec::decode_node(record).map_err(|e| e.into_error("node"))?;
                        nodes.push((path.to_owned(), node));
                    }
                    RawRecord::Session { id, record } => {
                        let session =
                            codec::decode_session(record).map_err(|e| e.into_error("session"))?;
                        sessions.push((id, session));
                    }
                }
                Ok(())
            })?;
        }
        let header = decoder.finish()?;
        Ok(Image {
            index: header.index,
            term: header.term,
            zxid: header.zxid,
            nodes,
            sessions,
        })
    }

    /// Whether `bytes` read whole as raw records, none of them decoded:
    /// what the stream's own checks (structure, order, counts, checksum)
    /// let through.
    fn raw_checks_pass(bytes: &[u8], chunk: usize) -> bool {
        let mut decoder = StreamDecoder::new();
        bytes
            .chunks(chunk)
            .all(|piece| decoder.feed_raw(piece, &mut |_| Ok(())).is_ok())
            && decoder.finish().is_ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Records handed out in their encoding are the store's encodings
        /// of the image's records, whatever the chunks; a flipped byte or a
        /// cut is refused as by the decoding read.
        #[test]
        fn raw_records_are_the_encoded_records_and_damage_is_refused(
            nodes in 0usize..30,
            size in 0usize..100,
            chunk in 1usize..300,
            flip in any::<prop::sample::Index>(),
        ) {
            let image = image(nodes, size);
            let mut bytes = Vec::new();
            write_image(&image, &mut bytes).expect("write");
            prop_assert_eq!(read_raw(&bytes, chunk).expect("read"), image);
            prop_assert!(raw_checks_pass(&bytes, chunk));
            let mut damaged = bytes.clone();
            let at = flip.index(damaged.len());
            damaged[at] ^= 0x10;
            prop_assert!(!raw_checks_pass(&damaged, chunk));
            let cut = flip.index(bytes.len());
            prop_assert!(!raw_checks_pass(&bytes[..cut], chunk));
        }
    }
}
