//! How servers talk to each other: our own framing and encoding of Raft
//! messages, never protobuf.
//!
//! raft-rs's messages are protobuf types, and the `protobuf` 2.x parser has
//! an advisory for untrusted input (RUSTSEC-2024-0437). Peer bytes
//! therefore never reach it: a connection opens with a [`Hello`] in each
//! direction that names the ensemble and both server ids, and every Raft
//! message after that is encoded field by field here. Decoding checks every
//! length against the bytes present before allocating, refuses message
//! types that never travel between servers, and never panics.
//!
//! A frame is a big-endian `u32` length, then that many bytes: one kind
//! byte and the payload.

use bytes::Bytes;
use raft::eraftpb::{
    ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use thiserror::Error;

/// The first bytes of every [`Hello`]: what this is and which version.
pub const HELLO_MAGIC: &[u8; 8] = b"CONCLAV1";

/// The largest frame accepted by default (a peer's `jute.maxbuffer` for
/// entries plus headroom; snapshots travel in chunks below this).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Longest ensemble name in a [`Hello`].
pub const MAX_ENSEMBLE_NAME: usize = 255;

const KIND_HELLO: u8 = 1;
const KIND_REFUSED: u8 = 2;
const KIND_RAFT: u8 = 3;
const KIND_SERVICE: u8 = 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame of {len} bytes is over the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("frame ends early: {needed} more bytes needed for {what}")]
    Truncated { what: &'static str, needed: usize },
    #[error("{extra} bytes left over after {what}")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("not a Conclave peer (bad magic)")]
    BadMagic,
    #[error("{what} {value} is not valid")]
    BadValue { what: &'static str, value: u64 },
    #[error("message type {0:?} never travels between servers")]
    LocalMessage(MessageType),
    #[error("ensemble name is not UTF-8 or longer than {MAX_ENSEMBLE_NAME} bytes")]
    BadEnsembleName,
}

/// The first frame on a peer connection, sent by both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The ensemble's name; servers of different ensembles never talk.
    pub ensemble: String,
    /// The sender's server id.
    pub from: u64,
    /// The server id the sender believes it is talking to.
    pub to: u64,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Hello(Hello),
    /// The other side refuses the connection, and says why.
    Refused(String),
    Raft(Box<Message>),
    /// A message of the ZooKeeper layer above (a write forwarded to the
    /// leader, session activity): opaque here, decoded by the server.
    Service(Vec<u8>),
}

/// The payload length a 4-byte frame header announces, checked against
/// `max`.
pub fn frame_len(header: [u8; 4], max: usize) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(WireError::FrameTooLarge { len, max });
    }
    if len == 0 {
        return Err(WireError::Truncated {
            what: "frame kind",
            needed: 1,
        });
    }
    Ok(len)
}

/// Appends one framed [`Frame`] to `out`.
pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    match frame {
        Frame::Hello(hello) => {
            out.push(KIND_HELLO);
            out.extend_from_slice(HELLO_MAGIC);
            put_bytes(out, hello.ensemble.as_bytes());
            put_u64(out, hello.from);
            put_u64(out, hello.to);
        }
        Frame::Refused(reason) => {
            out.push(KIND_REFUSED);
            put_bytes(out, reason.as_bytes());
        }
        Frame::Raft(m) => {
            out.push(KIND_RAFT);
            put_message(out, m);
        }
        Frame::Service(payload) => {
            out.push(KIND_SERVICE);
            out.extend_from_slice(payload);
        }
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Decodes a frame's payload (the bytes after the length).
pub fn decode_frame(payload: &[u8]) -> Result<Frame, WireError> {
    let mut r = Reader(payload);
    let frame = match r.u8("frame kind")? {
        KIND_HELLO => {
            if r.take(HELLO_MAGIC.len(), "magic")? != HELLO_MAGIC {
                return Err(WireError::BadMagic);
            }
            let name = r.bytes("ensemble name")?;
            if name.len() > MAX_ENSEMBLE_NAME {
                return Err(WireError::BadEnsembleName);
            }
            let ensemble =
                String::from_utf8(name.to_vec()).map_err(|_| WireError::BadEnsembleName)?;
            Frame::Hello(Hello {
                ensemble,
                from: r.u64("from")?,
                to: r.u64("to")?,
            })
        }
        KIND_REFUSED => Frame::Refused(String::from_utf8_lossy(r.bytes("reason")?).into_owned()),
        KIND_RAFT => Frame::Raft(Box::new(get_message(&mut r)?)),
        KIND_SERVICE => Frame::Service(r.take(r.0.len(), "service payload")?.to_vec()),
        other => return Err(WireError::UnknownKind(other)),
    };
    r.finish("frame")?;
    Ok(frame)
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_u64s(out: &mut Vec<u8>, values: &[u64]) {
    out.extend_from_slice(&(values.len() as u32).to_be_bytes());
    for v in values {
        put_u64(out, *v);
    }
}

fn put_message(out: &mut Vec<u8>, m: &Message) {
    out.push(m.get_msg_type() as u8);
    for v in [
        m.to,
        m.from,
        m.term,
        m.log_term,
        m.index,
        m.commit,
        m.commit_term,
        m.request_snapshot,
        m.reject_hint,
    ] {
        put_u64(out, v);
    }
    out.push(u8::from(m.reject));
    put_u64(out, m.priority as u64);
    put_bytes(out, &m.context);
    out.extend_from_slice(&(m.entries.len() as u32).to_be_bytes());
    for e in m.entries.iter() {
        out.push(e.get_entry_type() as u8);
        put_u64(out, e.term);
        put_u64(out, e.index);
        put_bytes(out, &e.data);
        put_bytes(out, &e.context);
    }
    match m.snapshot.as_ref() {
        Some(s) if *s != Snapshot::default() => {
            out.push(1);
            let meta = s.get_metadata();
            put_u64(out, meta.index);
            put_u64(out, meta.term);
            let cs = meta.get_conf_state();
            put_u64s(out, &cs.voters);
            put_u64s(out, &cs.learners);
            put_u64s(out, &cs.voters_outgoing);
            put_u64s(out, &cs.learners_next);
            out.push(u8::from(cs.auto_leave));
            put_bytes(out, &s.data);
        }
        _ => out.push(0),
    }
}

fn get_message(r: &mut Reader<'_>) -> Result<Message, WireError> {
    let msg_type = message_type(r.u8("message type")?)?;
    let mut m = Message::default();
    m.set_msg_type(msg_type);
    m.to = r.u64("to")?;
    m.from = r.u64("from")?;
    m.term = r.u64("term")?;
    m.log_term = r.u64("log term")?;
    m.index = r.u64("index")?;
    m.commit = r.u64("commit")?;
    m.commit_term = r.u64("commit term")?;
    m.request_snapshot = r.u64("request snapshot")?;
    m.reject_hint = r.u64("reject hint")?;
    m.reject = r.bool("reject")?;
    m.priority = r.u64("priority")? as i64;
    m.context = Bytes::copy_from_slice(r.bytes("context")?);
    // Each entry takes at least 1 + 8 + 8 + 4 + 4 bytes.
    let count = r.count("entries", 25)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let mut e = Entry::default();
        e.set_entry_type(entry_type(r.u8("entry type")?)?);
        e.term = r.u64("entry term")?;
        e.index = r.u64("entry index")?;
        e.data = Bytes::copy_from_slice(r.bytes("entry data")?);
        e.context = Bytes::copy_from_slice(r.bytes("entry context")?);
        entries.push(e);
    }
    m.set_entries(entries.into());
    match r.u8("snapshot flag")? {
        0 => {}
        1 => {
            let mut meta = SnapshotMetadata {
                index: r.u64("snapshot index")?,
                term: r.u64("snapshot term")?,
                ..SnapshotMetadata::default()
            };
            let cs = ConfState {
                voters: r.u64s("voters")?,
                learners: r.u64s("learners")?,
                voters_outgoing: r.u64s("outgoing voters")?,
                learners_next: r.u64s("next learners")?,
                auto_leave: r.bool("auto leave")?,
                ..ConfState::default()
            };
            meta.set_conf_state(cs);
            let mut s = Snapshot::default();
            s.set_metadata(meta);
            s.data = Bytes::copy_from_slice(r.bytes("snapshot data")?);
            m.set_snapshot(s);
        }
        other => {
            return Err(WireError::BadValue {
                what: "snapshot flag",
                value: u64::from(other),
            });
        }
    }
    Ok(m)
}

/// Message types a peer may send. The others are a server's local inputs
/// (MsgHup, MsgBeat, MsgUnreachable, MsgSnapStatus, MsgCheckQuorum) or
/// proposals, which travel as ZooKeeper requests to the leader instead.
fn message_type(v: u8) -> Result<MessageType, WireError> {
    use MessageType::*;
    let t = match v {
        0 => MsgHup,
        1 => MsgBeat,
        2 => MsgPropose,
        3 => MsgAppend,
        4 => MsgAppendResponse,
        5 => MsgRequestVote,
        6 => MsgRequestVoteResponse,
        7 => MsgSnapshot,
        8 => MsgHeartbeat,
        9 => MsgHeartbeatResponse,
        10 => MsgUnreachable,
        11 => MsgSnapStatus,
        12 => MsgCheckQuorum,
        13 => MsgTransferLeader,
        14 => MsgTimeoutNow,
        15 => MsgReadIndex,
        16 => MsgReadIndexResp,
        17 => MsgRequestPreVote,
        18 => MsgRequestPreVoteResponse,
        other => {
            return Err(WireError::BadValue {
                what: "message type",
                value: u64::from(other),
            });
        }
    };
    match t {
        MsgHup | MsgBeat | MsgPropose | MsgUnreachable | MsgSnapStatus | MsgCheckQuorum => {
            Err(WireError::LocalMessage(t))
        }
        _ => Ok(t),
    }
}

fn entry_type(v: u8) -> Result<EntryType, WireError> {
    match v {
        0 => Ok(EntryType::EntryNormal),
        1 => Ok(EntryType::EntryConfChange),
        2 => Ok(EntryType::EntryConfChangeV2),
        other => Err(WireError::BadValue {
            what: "entry type",
            value: u64::from(other),
        }),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated {
                what,
                needed: n - self.0.len(),
            });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(WireError::BadValue {
                what,
                value: u64::from(other),
            }),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, what)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// A count of items of at least `min_size` bytes each, checked against
    /// what is left before anything is allocated for them.
    fn count(&mut self, what: &'static str, min_size: usize) -> Result<usize, WireError> {
        let count = self.u32(what)? as usize;
        let needed = count.saturating_mul(min_size);
        if needed > self.0.len() {
            return Err(WireError::Truncated {
                what,
                needed: needed - self.0.len(),
            });
        }
        Ok(count)
    }

    fn u64s(&mut self, what: &'static str) -> Result<Vec<u64>, WireError> {
        let count = self.count(what, 8)?;
        (0..count).map(|_| self.u64(what)).collect()
    }

    fn finish(&self, what: &'static str) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes {
                what,
                extra: self.0.len(),
            })
        }
    }
}
