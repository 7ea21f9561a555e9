#![cfg_attr(not(feature = "rocks"), allow(dead_code))]
//! The on-disk format: every key and value this crate writes, and nothing
//! else anywhere knows these bytes (see `docs/storage.md` for the layout).
//!
//! Conventions: integers are big-endian and fixed-width; a byte string or
//! a UTF-8 string is a `u32` length and the bytes; an optional byte string
//! is a flag byte (0 absent, 1 present) and, if present, a byte string; a
//! list is a `u32` count and the elements. Every value except the format
//! version ends with a CRC-32C (Castagnoli) of the bytes before it, checked
//! before anything is decoded, so a torn or bit-flipped value is reported as
//! corruption and never turned into a plausible record.
//!
//! Decoding is strict and never panics: unknown tags, flag bytes other than
//! 0/1, invalid UTF-8, lengths beyond the bytes present and trailing bytes
//! are all errors, and no length is trusted before allocating.

use proto::{Acl, ErrorCode, Id};
use tree::{CreateTxn, SessionRecord, StatPersisted, Txn, TxnOp};

use crate::{EntryKind, HardState, Image, LogEntry, NodeRecord, StorageError};

/// Version byte at the start of an encoded transaction ([`encode_txn`]).
/// Transactions also travel between replicas, so they carry their own
/// version besides the store's `FORMAT_VERSION`.
pub(crate) const TXN_ENCODING_VERSION: u8 = 1;

/// Deepest nesting of `Multi` inside `Multi` that decodes. `prepare` never
/// nests a multi; the bound keeps hostile bytes from exhausting the stack.
pub(crate) const MAX_MULTI_DEPTH: usize = 8;

/// Keys in the `meta` column family.
pub(crate) mod meta_key {
    pub(crate) const FORMAT_VERSION: &[u8] = b"format_version";
    pub(crate) const APPLIED: &[u8] = b"applied";
    pub(crate) const HARD_STATE: &[u8] = b"hard_state";
    pub(crate) const CONFIG: &[u8] = b"config";
    pub(crate) const COMPACTED: &[u8] = b"compacted";
    /// Which pair of column families holds the tree and the sessions
    /// (format version 2; absent: generation 0).
    pub(crate) const GENERATION: &[u8] = b"generation";
}

/// Fixed bytes of an encoded log entry besides its data: kind, index, term,
/// data length, checksum.
pub(crate) const ENTRY_OVERHEAD: u64 = 1 + 8 + 8 + 4 + 4;

/// Why bytes did not decode; turned into [`StorageError::Corrupt`] by the
/// caller, who knows which key it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

impl Malformed {
    pub(crate) fn into_error(self, what: impl Into<String>) -> StorageError {
        StorageError::corrupt(what, self.0)
    }
}

type Result<T> = std::result::Result<T, Malformed>;

fn malformed<T>(detail: impl Into<String>) -> Result<T> {
    Err(Malformed(detail.into()))
}

// ---------------------------------------------------------------- checksum

/// Slicing-by-8 tables: `[0]` is the byte-at-a-time table, `[k]` the
/// CRC of a byte followed by `k` zero bytes, so eight bytes are folded in
/// with eight lookups and no dependency between them (about four times
/// the speed of one byte at a time: images are hundreds of megabytes).
const fn crc32c_tables() -> [[u32; 256]; 8] {
    const POLY: u32 = 0x82f6_3b78; // Castagnoli, reflected
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

static CRC32C_TABLES: [[u32; 256]; 8] = crc32c_tables();

/// CRC-32C (Castagnoli), as in iSCSI, ext4 and RocksDB.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = Crc32c::default();
    crc.update(bytes);
    crc.value()
}

/// CRC-32C over bytes that come in pieces (a streamed image).
#[derive(Debug, Clone, Copy)]
pub struct Crc32c(u32);

impl Default for Crc32c {
    fn default() -> Self {
        Crc32c(!0)
    }
}

impl Crc32c {
    pub fn update(&mut self, bytes: &[u8]) {
        let t = &CRC32C_TABLES;
        let mut crc = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            crc = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][c[4] as usize]
                ^ t[2][c[5] as usize]
                ^ t[1][c[6] as usize]
                ^ t[0][c[7] as usize];
        }
        for &b in chunks.remainder() {
            crc = t[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    /// The checksum of everything so far.
    pub fn value(&self) -> u32 {
        !self.0
    }
}

/// Appends the checksum of everything in `out`.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Checks and strips the trailing checksum.
fn unseal(bytes: &[u8]) -> Result<&[u8]> {
    let Some(split) = bytes.len().checked_sub(4) else {
        return malformed(format!(
            "value of {} bytes is too short to hold a checksum",
            bytes.len()
        ));
    };
    let (body, trailer) = bytes.split_at(split);
    let stored = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32c(body);
    if stored != computed {
        return malformed(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    Ok(body)
}

// ---------------------------------------------------------------- writer

fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A length or count. Everything stored came through a request bounded by
/// `jute.maxbuffer` (about 1 MiB), so more than `u32::MAX` is a bug.
fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("stored lengths fit in u32");
    put_u32(out, len);
}

fn put_bytes(out: &mut Vec<u8>, v: &[u8]) {
    put_len(out, v.len());
    out.extend_from_slice(v);
}

fn put_opt_bytes(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => put_u8(out, 0),
        Some(bytes) => {
            put_u8(out, 1);
            put_bytes(out, bytes);
        }
    }
}

fn put_str(out: &mut Vec<u8>, v: &str) {
    put_bytes(out, v.as_bytes());
}

fn put_bool(out: &mut Vec<u8>, v: bool) {
    put_u8(out, u8::from(v));
}

// ---------------------------------------------------------------- reader

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        if self.buf.len() < len {
            return malformed(format!(
                "truncated {what}: needed {len} bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    fn bool(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => malformed(format!("{what}: flag byte {other}, expected 0 or 1")),
        }
    }

    fn bytes(&mut self, what: &str) -> Result<Vec<u8>> {
        let len = self.u32(what)? as usize;
        Ok(self.take(len, what)?.to_vec())
    }

    fn opt_bytes(&mut self, what: &str) -> Result<Option<Vec<u8>>> {
        if self.bool(what)? {
            Ok(Some(self.bytes(what)?))
        } else {
            Ok(None)
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => malformed(format!("{what}: invalid UTF-8 ({e})")),
        }
    }

    /// A list count, checked against the bytes left so that a hostile count
    /// cannot make us reserve memory: every element takes at least
    /// `min_element_len` bytes.
    fn count(&mut self, what: &str, min_element_len: usize) -> Result<usize> {
        let count = self.u32(what)? as usize;
        let needed = count.saturating_mul(min_element_len.max(1));
        if needed > self.buf.len() {
            return malformed(format!(
                "{what}: {count} elements need at least {needed} bytes, {} left",
                self.buf.len()
            ));
        }
        Ok(count)
    }

    fn finish(&self, what: &str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            malformed(format!("{} trailing bytes after {what}", self.buf.len()))
        }
    }
}

// ---------------------------------------------------------------- transactions

const OP_CREATE_SESSION: u8 = 1;
const OP_CLOSE_SESSION: u8 = 2;
const OP_CREATE: u8 = 3;
const OP_DELETE: u8 = 4;
const OP_SET_DATA: u8 = 5;
const OP_SET_ACL: u8 = 6;
const OP_CHECK: u8 = 7;
const OP_MULTI: u8 = 8;
const OP_ERROR: u8 = 9;

/// Encodes a transaction for a log entry: a version byte, the header fields
/// (session id, cxid, zxid, time) and the op.
pub fn encode_txn(txn: &Txn) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_u8(&mut out, TXN_ENCODING_VERSION);
    put_i64(&mut out, txn.session_id);
    put_i32(&mut out, txn.cxid);
    put_i64(&mut out, txn.zxid);
    put_i64(&mut out, txn.time_ms);
    put_op(&mut out, &txn.op);
    out
}

/// Decodes [`encode_txn`]'s bytes; any other bytes are an error, never a
/// panic.
pub fn decode_txn(bytes: &[u8]) -> std::result::Result<Txn, StorageError> {
    decode_txn_inner(bytes).map_err(|e| e.into_error("transaction"))
}

fn decode_txn_inner(bytes: &[u8]) -> Result<Txn> {
    let mut r = Reader::new(bytes);
    let version = r.u8("transaction version")?;
    if version != TXN_ENCODING_VERSION {
        return malformed(format!(
            "transaction encoding version {version}, expected {TXN_ENCODING_VERSION}"
        ));
    }
    let txn = Txn {
        session_id: r.i64("session id")?,
        cxid: r.i32("cxid")?,
        zxid: r.i64("zxid")?,
        time_ms: r.i64("time")?,
        op: read_op(&mut r, 0)?,
    };
    r.finish("transaction")?;
    Ok(txn)
}

fn put_acl(out: &mut Vec<u8>, acl: &[Acl]) {
    put_len(out, acl.len());
    for a in acl {
        put_i32(out, a.perms);
        put_str(out, &a.id.scheme);
        put_str(out, &a.id.id);
    }
}

fn read_acl(r: &mut Reader<'_>) -> Result<Vec<Acl>> {
    let count = r.count("ACL", 4 + 4 + 4)?;
    let mut acl = Vec::with_capacity(count);
    for _ in 0..count {
        let perms = r.i32("ACL perms")?;
        let scheme = r.string("ACL scheme")?;
        let id = r.string("ACL id")?;
        acl.push(Acl {
            perms,
            id: Id { scheme, id },
        });
    }
    Ok(acl)
}

fn put_op(out: &mut Vec<u8>, op: &TxnOp) {
    match op {
        TxnOp::CreateSession {
            timeout_ms,
            password,
        } => {
            put_u8(out, OP_CREATE_SESSION);
            put_i32(out, *timeout_ms);
            put_bytes(out, password);
        }
        TxnOp::CloseSession { paths_to_delete } => {
            put_u8(out, OP_CLOSE_SESSION);
            put_len(out, paths_to_delete.len());
            for p in paths_to_delete {
                put_str(out, p);
            }
        }
        TxnOp::Create(c) => {
            put_u8(out, OP_CREATE);
            put_str(out, &c.path);
            put_opt_bytes(out, c.data.as_deref());
            put_acl(out, &c.acl);
            put_i64(out, c.ephemeral_owner);
            put_i32(out, c.parent_cversion);
            put_bool(out, c.with_stat);
        }
        TxnOp::Delete { path } => {
            put_u8(out, OP_DELETE);
            put_str(out, path);
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            put_u8(out, OP_SET_DATA);
            put_str(out, path);
            put_opt_bytes(out, data.as_deref());
            put_i32(out, *version);
        }
        TxnOp::SetAcl {
            path,
            acl,
            aversion,
        } => {
            put_u8(out, OP_SET_ACL);
            put_str(out, path);
            put_acl(out, acl);
            put_i32(out, *aversion);
        }
        TxnOp::Check { path, version } => {
            put_u8(out, OP_CHECK);
            put_str(out, path);
            put_i32(out, *version);
        }
        TxnOp::Multi(ops) => {
            put_u8(out, OP_MULTI);
            put_len(out, ops.len());
            for op in ops {
                put_op(out, op);
            }
        }
        TxnOp::Error(code) => {
            put_u8(out, OP_ERROR);
            put_i32(out, code.code());
        }
    }
}

fn read_op(r: &mut Reader<'_>, depth: usize) -> Result<TxnOp> {
    let tag = r.u8("op tag")?;
    let op = match tag {
        OP_CREATE_SESSION => TxnOp::CreateSession {
            timeout_ms: r.i32("session timeout")?,
            password: r.bytes("session password")?,
        },
        OP_CLOSE_SESSION => {
            let count = r.count("closeSession paths", 4)?;
            let mut paths_to_delete = Vec::with_capacity(count);
            for _ in 0..count {
                paths_to_delete.push(r.string("closeSession path")?);
            }
            TxnOp::CloseSession { paths_to_delete }
        }
        OP_CREATE => TxnOp::Create(CreateTxn {
            path: r.string("create path")?,
            data: r.opt_bytes("create data")?,
            acl: read_acl(r)?,
            ephemeral_owner: r.i64("ephemeral owner")?,
            parent_cversion: r.i32("parent cversion")?,
            with_stat: r.bool("create with_stat")?,
        }),
        OP_DELETE => TxnOp::Delete {
            path: r.string("delete path")?,
        },
        OP_SET_DATA => TxnOp::SetData {
            path: r.string("setData path")?,
            data: r.opt_bytes("setData data")?,
            version: r.i32("setData version")?,
        },
        OP_SET_ACL => TxnOp::SetAcl {
            path: r.string("setACL path")?,
            acl: read_acl(r)?,
            aversion: r.i32("setACL aversion")?,
        },
        OP_CHECK => TxnOp::Check {
            path: r.string("check path")?,
            version: r.i32("check version")?,
        },
        OP_MULTI => {
            if depth >= MAX_MULTI_DEPTH {
                return malformed(format!("multi nested deeper than {MAX_MULTI_DEPTH} levels"));
            }
            let count = r.count("multi ops", 1)?;
            let mut ops = Vec::with_capacity(count);
            for _ in 0..count {
                ops.push(read_op(r, depth + 1)?);
            }
            TxnOp::Multi(ops)
        }
        OP_ERROR => {
            let code = r.i32("error code")?;
            match ErrorCode::from_code(code) {
                Some(code) => TxnOp::Error(code),
                None => return malformed(format!("unknown error code {code}")),
            }
        }
        other => return malformed(format!("unknown op tag {other}")),
    };
    Ok(op)
}

// ---------------------------------------------------------------- log

const KIND_TXN: u8 = 1;
const KIND_CONFIG: u8 = 2;
const KIND_EMPTY: u8 = 3;

/// The `log` key of an index: big-endian, so key order is log order.
pub(crate) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn decode_log_key(key: &[u8]) -> Result<u64> {
    match <[u8; 8]>::try_from(key) {
        Ok(bytes) => Ok(u64::from_be_bytes(bytes)),
        Err(_) => malformed(format!(
            "log key of {} bytes, expected 8: {}",
            key.len(),
            hex(key)
        )),
    }
}

/// Size of an entry as stored; what `entries_limited` counts.
pub(crate) fn entry_size(entry: &LogEntry) -> u64 {
    ENTRY_OVERHEAD + entry.data.len() as u64
}

pub(crate) fn encode_entry(entry: &LogEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_OVERHEAD as usize + entry.data.len());
    put_u8(
        &mut out,
        match entry.kind {
            EntryKind::Txn => KIND_TXN,
            EntryKind::Config => KIND_CONFIG,
            EntryKind::Empty => KIND_EMPTY,
        },
    );
    put_u64(&mut out, entry.index);
    put_u64(&mut out, entry.term);
    put_bytes(&mut out, &entry.data);
    seal(out)
}

pub(crate) fn decode_entry(bytes: &[u8]) -> Result<LogEntry> {
    let mut r = Reader::new(unseal(bytes)?);
    let kind = match r.u8("entry kind")? {
        KIND_TXN => EntryKind::Txn,
        KIND_CONFIG => EntryKind::Config,
        KIND_EMPTY => EntryKind::Empty,
        other => return malformed(format!("unknown entry kind {other}")),
    };
    let entry = LogEntry {
        kind,
        index: r.u64("entry index")?,
        term: r.u64("entry term")?,
        data: r.bytes("entry data")?,
    };
    r.finish("log entry")?;
    Ok(entry)
}

/// Decodes a log value read under `key` and checks that it is the entry
/// that key names.
pub(crate) fn decode_entry_at(
    key: &[u8],
    value: &[u8],
) -> std::result::Result<LogEntry, StorageError> {
    let index = decode_log_key(key).map_err(|e| e.into_error("log key"))?;
    let entry = decode_entry(value).map_err(|e| e.into_error(format!("log entry {index}")))?;
    if entry.index != index {
        return Err(StorageError::corrupt(
            format!("log entry {index}"),
            format!(
                "the value stored under index {index} is entry {}",
                entry.index
            ),
        ));
    }
    Ok(entry)
}

// ---------------------------------------------------------------- tree

/// The `tree` key of a node: its path's UTF-8 bytes, so key order is path
/// order.
pub(crate) fn node_key(path: &str) -> &[u8] {
    path.as_bytes()
}

pub(crate) fn decode_node_key(key: &[u8]) -> Result<String> {
    match std::str::from_utf8(key) {
        Ok(path) => Ok(path.to_owned()),
        Err(e) => malformed(format!("node path is not UTF-8 ({e}): {}", hex(key))),
    }
}

pub(crate) fn encode_node(node: &NodeRecord) -> Vec<u8> {
    let data_len = node.data.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(64 + data_len);
    let s = &node.stat;
    put_i64(&mut out, s.czxid);
    put_i64(&mut out, s.mzxid);
    put_i64(&mut out, s.ctime);
    put_i64(&mut out, s.mtime);
    put_i32(&mut out, s.version);
    put_i32(&mut out, s.cversion);
    put_i32(&mut out, s.aversion);
    put_i64(&mut out, s.ephemeral_owner);
    put_i64(&mut out, s.pzxid);
    put_opt_bytes(&mut out, node.data.as_deref());
    put_acl(&mut out, &node.acl);
    seal(out)
}

pub(crate) fn decode_node(bytes: &[u8]) -> Result<NodeRecord> {
    decode_node_sharing(bytes, &mut SharedAcl::default())
}

/// The ACL list of the node record decoded last, with its encoding: records
/// read in path order (a store's at start, an image's) mostly carry the
/// list their predecessor did, and then share its copy instead of each
/// allocating its own (a million short-lived lists left the allocator's
/// heap fragmented after a start: 50 MiB more resident at 1,000,000
/// znodes).
#[derive(Debug, Default)]
pub(crate) struct SharedAcl {
    encoded: Vec<u8>,
    acl: std::sync::Arc<Vec<Acl>>,
}

/// [`decode_node`], sharing the ACL list with the record decoded before.
pub(crate) fn decode_node_sharing(bytes: &[u8], shared: &mut SharedAcl) -> Result<NodeRecord> {
    let mut r = Reader::new(unseal(bytes)?);
    let stat = StatPersisted {
        czxid: r.i64("czxid")?,
        mzxid: r.i64("mzxid")?,
        ctime: r.i64("ctime")?,
        mtime: r.i64("mtime")?,
        version: r.i32("version")?,
        cversion: r.i32("cversion")?,
        aversion: r.i32("aversion")?,
        ephemeral_owner: r.i64("ephemeralOwner")?,
        pzxid: r.i64("pzxid")?,
    };
    let data = r.opt_bytes("node data")?;
    // The list is the record's last field: what is left is its encoding.
    let encoded = r.buf;
    let acl = if !shared.encoded.is_empty() && encoded == shared.encoded.as_slice() {
        // The same bytes decoded, without error, to this list before.
        shared.acl.clone()
    } else {
        let acl = std::sync::Arc::new(read_acl(&mut r)?);
        r.finish("node record")?;
        shared.encoded.clear();
        shared.encoded.extend_from_slice(encoded);
        shared.acl = acl.clone();
        acl
    };
    Ok(NodeRecord { data, acl, stat })
}

// ---------------------------------------------------------------- sessions

/// The `sessions` key of a session id: big-endian with the sign bit
/// flipped, so key order is numeric order of the signed id.
pub(crate) fn session_key(id: i64) -> [u8; 8] {
    ((id as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn decode_session_key(key: &[u8]) -> Result<i64> {
    match <[u8; 8]>::try_from(key) {
        Ok(bytes) => Ok((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64),
        Err(_) => malformed(format!(
            "session key of {} bytes, expected 8: {}",
            key.len(),
            hex(key)
        )),
    }
}

pub(crate) fn encode_session(session: &SessionRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + session.password.len());
    put_i32(&mut out, session.timeout_ms);
    put_bytes(&mut out, &session.password);
    seal(out)
}

pub(crate) fn decode_session(bytes: &[u8]) -> Result<SessionRecord> {
    let mut r = Reader::new(unseal(bytes)?);
    let session = SessionRecord {
        timeout_ms: r.i32("session timeout")?,
        password: r.bytes("session password")?,
    };
    r.finish("session record")?;
    Ok(session)
}

// ---------------------------------------------------------------- snapshots

const IMAGE_ENCODING_VERSION: u8 = 1;

/// Encodes a state-machine image (a snapshot sent to a laggard): a version
/// byte, index, term, zxid, the nodes and the sessions, each record in its
/// stored encoding, and a checksum over everything.
pub fn encode_image(image: &Image) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + image.nodes.len() * 96);
    put_u8(&mut out, IMAGE_ENCODING_VERSION);
    put_u64(&mut out, image.index);
    put_u64(&mut out, image.term);
    put_i64(&mut out, image.zxid);
    put_len(&mut out, image.nodes.len());
    for (path, node) in &image.nodes {
        put_str(&mut out, path);
        put_bytes(&mut out, &encode_node(node));
    }
    put_len(&mut out, image.sessions.len());
    for (id, session) in &image.sessions {
        put_i64(&mut out, *id);
        put_bytes(&mut out, &encode_session(session));
    }
    seal(out)
}

/// Decodes [`encode_image`]'s bytes; anything else is an error, never a
/// panic (they come from a peer).
pub fn decode_image(bytes: &[u8]) -> std::result::Result<Image, StorageError> {
    decode_image_inner(bytes).map_err(|e| e.into_error("snapshot image"))
}

fn decode_image_inner(bytes: &[u8]) -> Result<Image> {
    let mut r = Reader::new(unseal(bytes)?);
    let version = r.u8("image version")?;
    if version != IMAGE_ENCODING_VERSION {
        return malformed(format!("unknown image version {version}"));
    }
    let index = r.u64("image index")?;
    let term = r.u64("image term")?;
    let zxid = r.i64("image zxid")?;
    let count = r.count("node count", 8)?;
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        let path = r.string("node path")?;
        let node = decode_node(&r.bytes("node record")?)?;
        nodes.push((path, node));
    }
    let count = r.count("session count", 12)?;
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.i64("session id")?;
        sessions.push((id, decode_session(&r.bytes("session record")?)?));
    }
    r.finish("snapshot image")?;
    Ok(Image {
        index,
        term,
        zxid,
        nodes,
        sessions,
    })
}

// ---------------------------------------------------------------- meta

/// The format version is the one value every future build must be able to
/// read, so it is the simplest: exactly four bytes, big-endian, no checksum.
pub(crate) fn encode_format_version(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

pub(crate) fn decode_format_version(bytes: &[u8]) -> Result<u32> {
    match <[u8; 4]>::try_from(bytes) {
        Ok(b) => Ok(u32::from_be_bytes(b)),
        Err(_) => malformed(format!(
            "format version value of {} bytes, expected 4: {}",
            bytes.len(),
            hex(bytes)
        )),
    }
}

/// `applied`: the applied index and zxid.
pub(crate) fn encode_applied(index: u64, zxid: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    put_u64(&mut out, index);
    put_i64(&mut out, zxid);
    seal(out)
}

pub(crate) fn decode_applied(bytes: &[u8]) -> Result<(u64, i64)> {
    let mut r = Reader::new(unseal(bytes)?);
    let v = (r.u64("applied index")?, r.i64("applied zxid")?);
    r.finish("applied marker")?;
    Ok(v)
}

pub(crate) fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    put_u64(&mut out, hs.term);
    put_u64(&mut out, hs.vote);
    put_u64(&mut out, hs.commit);
    seal(out)
}

pub(crate) fn decode_hard_state(bytes: &[u8]) -> Result<HardState> {
    let mut r = Reader::new(unseal(bytes)?);
    let hs = HardState {
        term: r.u64("hard state term")?,
        vote: r.u64("hard state vote")?,
        commit: r.u64("hard state commit")?,
    };
    r.finish("hard state")?;
    Ok(hs)
}

pub(crate) fn encode_config(config: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + config.len());
    put_bytes(&mut out, config);
    seal(out)
}

pub(crate) fn decode_config(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(unseal(bytes)?);
    let config = r.bytes("configuration")?;
    r.finish("configuration")?;
    Ok(config)
}

/// `generation`: which pair of tree and sessions column families is live.
pub(crate) fn encode_generation(generation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    put_u64(&mut out, generation);
    seal(out)
}

pub(crate) fn decode_generation(bytes: &[u8]) -> Result<u64> {
    let mut r = Reader::new(unseal(bytes)?);
    let v = r.u64("generation")?;
    r.finish("generation")?;
    Ok(v)
}

/// `compacted`: (index, term) of the last entry removed by compaction.
pub(crate) fn encode_compacted(index: u64, term: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    put_u64(&mut out, index);
    put_u64(&mut out, term);
    seal(out)
}

pub(crate) fn decode_compacted(bytes: &[u8]) -> Result<(u64, u64)> {
    let mut r = Reader::new(unseal(bytes)?);
    let v = (r.u64("compacted index")?, r.u64("compacted term")?);
    r.finish("compaction marker")?;
    Ok(v)
}

/// Up to 32 bytes as hex, for error messages about keys.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().take(32).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 32 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn session_keys_sort_like_signed_ids() {
        let ids = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in ids.windows(2) {
            assert!(session_key(pair[0]) < session_key(pair[1]), "{pair:?}");
        }
        for id in ids {
            assert_eq!(decode_session_key(&session_key(id)), Ok(id));
        }
    }

    #[test]
    fn log_keys_sort_like_indexes() {
        assert!(log_key(255) < log_key(256));
        assert!(log_key(1) < log_key(u64::MAX));
    }

    #[test]
    fn a_flipped_bit_in_an_entry_is_a_checksum_error() {
        let entry = LogEntry {
            index: 7,
            term: 2,
            kind: EntryKind::Txn,
            data: b"hello".to_vec(),
        };
        let bytes = encode_entry(&entry);
        assert_eq!(entry_size(&entry), bytes.len() as u64);
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let err = decode_entry(&bad).unwrap_err();
            assert!(err.0.contains("checksum"), "{err:?}");
        }
        for len in 0..bytes.len() {
            assert!(decode_entry(&bytes[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn entry_under_the_wrong_key_is_corrupt() {
        let entry = LogEntry {
            index: 7,
            term: 2,
            kind: EntryKind::Empty,
            data: Vec::new(),
        };
        let err = decode_entry_at(&log_key(8), &encode_entry(&entry)).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn nested_multi_beyond_the_bound_is_refused_without_recursing() {
        // A deep chain of "multi with one op" headers.
        let mut bytes = vec![TXN_ENCODING_VERSION];
        bytes.extend_from_slice(&[0u8; 28]);
        for _ in 0..100_000 {
            bytes.push(OP_MULTI);
            bytes.extend_from_slice(&1u32.to_be_bytes());
        }
        bytes.push(OP_ERROR);
        bytes.extend_from_slice(&0i32.to_be_bytes());
        assert!(decode_txn(&bytes).is_err());
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut bytes = vec![TXN_ENCODING_VERSION];
        bytes.extend_from_slice(&[0u8; 28]);
        bytes.push(OP_CLOSE_SESSION);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_txn(&bytes).is_err());
    }

    // ------------------------------------------------------------ strategies

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..24)
    }

    fn arb_string() -> impl Strategy<Value = String> {
        // Any Unicode, including characters beyond U+FFFF.
        any::<String>().prop_map(|s| s.chars().take(12).collect())
    }

    pub(super) fn arb_acl() -> impl Strategy<Value = Vec<Acl>> {
        proptest::collection::vec(
            (any::<i32>(), arb_string(), arb_string()).prop_map(|(perms, scheme, id)| Acl {
                perms,
                id: Id { scheme, id },
            }),
            0..3,
        )
    }

    fn arb_error() -> impl Strategy<Value = ErrorCode> {
        proptest::sample::select(ErrorCode::ALL.to_vec())
    }

    fn arb_leaf_op() -> impl Strategy<Value = TxnOp> {
        prop_oneof![
            (any::<i32>(), arb_bytes()).prop_map(|(timeout_ms, password)| TxnOp::CreateSession {
                timeout_ms,
                password
            }),
            proptest::collection::vec(arb_string(), 0..4)
                .prop_map(|paths_to_delete| TxnOp::CloseSession { paths_to_delete }),
            (
                arb_string(),
                proptest::option::of(arb_bytes()),
                arb_acl(),
                any::<i64>(),
                any::<i32>(),
                any::<bool>()
            )
                .prop_map(
                    |(path, data, acl, ephemeral_owner, parent_cversion, with_stat)| {
                        TxnOp::Create(CreateTxn {
                            path,
                            data,
                            acl,
                            ephemeral_owner,
                            parent_cversion,
                            with_stat,
                        })
                    }
                ),
            arb_string().prop_map(|path| TxnOp::Delete { path }),
            (
                arb_string(),
                proptest::option::of(arb_bytes()),
                any::<i32>()
            )
                .prop_map(|(path, data, version)| TxnOp::SetData {
                    path,
                    data,
                    version
                }),
            (arb_string(), arb_acl(), any::<i32>()).prop_map(|(path, acl, aversion)| {
                TxnOp::SetAcl {
                    path,
                    acl,
                    aversion,
                }
            }),
            (arb_string(), any::<i32>()).prop_map(|(path, version)| TxnOp::Check { path, version }),
            arb_error().prop_map(TxnOp::Error),
        ]
    }

    fn arb_op() -> impl Strategy<Value = TxnOp> {
        // Nesting up to 3 levels: deeper than anything `prepare` produces.
        arb_leaf_op().prop_recursive(3, 24, 6, |inner| {
            proptest::collection::vec(inner, 0..6).prop_map(TxnOp::Multi)
        })
    }

    fn arb_txn() -> impl Strategy<Value = Txn> {
        (
            any::<i64>(),
            any::<i32>(),
            any::<i64>(),
            any::<i64>(),
            arb_op(),
        )
            .prop_map(|(session_id, cxid, zxid, time_ms, op)| Txn {
                session_id,
                cxid,
                zxid,
                time_ms,
                op,
            })
    }

    fn arb_stat() -> impl Strategy<Value = StatPersisted> {
        (
            any::<(i64, i64, i64, i64)>(),
            any::<(i32, i32, i32)>(),
            any::<(i64, i64)>(),
        )
            .prop_map(
                |((czxid, mzxid, ctime, mtime), (version, cversion, aversion), (owner, pzxid))| {
                    StatPersisted {
                        czxid,
                        mzxid,
                        ctime,
                        mtime,
                        version,
                        cversion,
                        aversion,
                        ephemeral_owner: owner,
                        pzxid,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn txns_round_trip(txn in arb_txn()) {
            let bytes = encode_txn(&txn);
            prop_assert_eq!(decode_txn(&bytes).unwrap(), txn);
        }

        #[test]
        fn truncated_txns_are_errors(txn in arb_txn(), cut in any::<prop::sample::Index>()) {
            let bytes = encode_txn(&txn);
            let cut = cut.index(bytes.len());
            prop_assert!(decode_txn(&bytes[..cut]).is_err());
        }

        #[test]
        fn nodes_round_trip(
            data in proptest::option::of(arb_bytes()),
            acl in arb_acl(),
            stat in arb_stat(),
        ) {
            let node = NodeRecord { data, acl: std::sync::Arc::new(acl), stat };
            prop_assert_eq!(decode_node(&encode_node(&node)).unwrap(), node);
        }

        /// Records decoded one after another share a list only when it is
        /// the one before: each decodes to what was encoded.
        #[test]
        fn nodes_decoded_in_a_row_share_equal_lists_only(
            lists in proptest::collection::vec(arb_acl(), 1..4),
            picks in proptest::collection::vec((0usize..4, arb_stat()), 1..20),
        ) {
            let mut shared = SharedAcl::default();
            let mut previous: Option<NodeRecord> = None;
            for (pick, stat) in picks {
                let acl = std::sync::Arc::new(lists[pick % lists.len()].clone());
                let node = NodeRecord { data: None, acl, stat };
                let decoded = decode_node_sharing(&encode_node(&node), &mut shared).unwrap();
                prop_assert_eq!(&decoded, &node);
                if let Some(previous) = previous.filter(|p| p.acl == node.acl) {
                    prop_assert!(std::sync::Arc::ptr_eq(&previous.acl, &decoded.acl));
                }
                previous = Some(decoded);
            }
        }

        #[test]
        fn sessions_round_trip(timeout_ms in any::<i32>(), password in arb_bytes(), id in any::<i64>()) {
            let s = SessionRecord { timeout_ms, password };
            prop_assert_eq!(decode_session(&encode_session(&s)).unwrap(), s);
            prop_assert_eq!(decode_session_key(&session_key(id)).unwrap(), id);
        }

        #[test]
        fn entries_round_trip(
            index in any::<u64>(),
            term in any::<u64>(),
            kind in proptest::sample::select(vec![EntryKind::Txn, EntryKind::Config, EntryKind::Empty]),
            data in arb_bytes(),
        ) {
            let e = LogEntry { index, term, kind, data };
            let bytes = encode_entry(&e);
            prop_assert_eq!(decode_entry_at(&log_key(index), &bytes).unwrap(), e);
        }

        #[test]
        fn meta_values_round_trip(a in any::<u64>(), b in any::<i64>(), c in any::<u64>(), cfg in arb_bytes(), v in any::<u32>()) {
            prop_assert_eq!(decode_applied(&encode_applied(a, b)).unwrap(), (a, b));
            prop_assert_eq!(decode_compacted(&encode_compacted(a, c)).unwrap(), (a, c));
            let hs = HardState { term: a, vote: c, commit: a ^ c };
            prop_assert_eq!(decode_hard_state(&encode_hard_state(&hs)).unwrap(), hs);
            prop_assert_eq!(decode_config(&encode_config(&cfg)).unwrap(), cfg);
            prop_assert_eq!(decode_format_version(&encode_format_version(v)).unwrap(), v);
            prop_assert_eq!(decode_generation(&encode_generation(a)).unwrap(), a);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_txn(&bytes);
            let _ = decode_entry(&bytes);
            let _ = decode_node(&bytes);
            let _ = decode_session(&bytes);
            let _ = decode_applied(&bytes);
            let _ = decode_hard_state(&bytes);
            let _ = decode_config(&bytes);
            let _ = decode_compacted(&bytes);
            let _ = decode_format_version(&bytes);
            let _ = decode_generation(&bytes);
            let _ = decode_log_key(&bytes);
            let _ = decode_session_key(&bytes);
            let _ = decode_node_key(&bytes);
        }

        /// Arbitrary bytes after a valid version byte and header, and sealed
        /// values with arbitrary bodies (a valid checksum over garbage), get
        /// past the first checks and exercise the op and record decoders.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut txn = vec![TXN_ENCODING_VERSION];
            txn.extend_from_slice(&[0u8; 28]);
            txn.extend_from_slice(&body);
            let _ = decode_txn(&txn);
            let sealed = seal(body);
            let _ = decode_entry(&sealed);
            let _ = decode_node(&sealed);
            let _ = decode_session(&sealed);
            let _ = decode_applied(&sealed);
            let _ = decode_hard_state(&sealed);
            let _ = decode_config(&sealed);
            let _ = decode_compacted(&sealed);
        }
    }
}

#[cfg(test)]
mod crc_tests {
    use super::*;

    /// Slicing-by-8 computes what one byte at a time does, for every length
    /// and split; and the standard check value.
    #[test]
    fn sliced_crc_matches_bytewise() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 7) as u8).collect();
        let bytewise = |data: &[u8]| {
            let mut crc = !0u32;
            for &b in data {
                crc = CRC32C_TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
            }
            !crc
        };
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 999, 1000] {
            assert_eq!(crc32c(&bytes[..len]), bytewise(&bytes[..len]), "len {len}");
            for split in [0, 1, 3, 8, len / 2] {
                let split = split.min(len);
                let mut crc = Crc32c::default();
                crc.update(&bytes[..split]);
                crc.update(&bytes[split..len]);
                assert_eq!(
                    crc.value(),
                    bytewise(&bytes[..len]),
                    "len {len} split {split}"
                );
            }
        }
    }
}
