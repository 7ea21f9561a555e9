//! What servers of an ensemble tell each other besides raft's messages
//! (the payload of `consensus::wire::Frame::Service`):
//!
//! - a write forwarded to the leader by the server its client is connected
//!   to (as ZooKeeper's followers forward requests): the leader prepares it
//!   against its tree and proposes the transaction; every server applies it
//!   once committed, and the forwarding server answers its client then;
//! - a follower's status, every raft tick: how far it has applied (for the
//!   leader's report of each member's last zxid) and which sessions its
//!   clients used since the last report, because the leader alone expires
//!   sessions (ZooKeeper's followers do the same in their pings).
//!
//! Encoded with jute's primitives; decoding checks every length, because
//! the bytes come from the network (from a peer whose Hello checked out,
//! but a bug or a corrupted stream must not crash the leader).

use proto::jute::{self, Reader};
use proto::{DecodeError, Id, Request};

const KIND_FORWARD: i32 = 1;
const KIND_STATUS: i32 = 2;
const KIND_REMOVED: i32 = 3;
const KIND_HANDING_OVER: i32 = 4;

const WRITE_REQUEST: i32 = 1;
const WRITE_CREATE_SESSION: i32 = 2;
const WRITE_ERROR: i32 = 3;

/// Most identities one connection may carry in a forwarded write.
const MAX_AUTH: usize = 64;

/// Why a service message did not decode.
#[derive(Debug, thiserror::Error)]
pub enum ServiceDecodeError {
    #[error(transparent)]
    Jute(#[from] DecodeError),
    #[error("invalid service message: {0}")]
    Invalid(&'static str),
}

/// A message between servers of the ZooKeeper layer.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceMessage {
    Forward(ForwardedWrite),
    Status(FollowerStatus),
    /// From the leader to a server a committed membership change removed
    /// (which may never see that entry committed: the leader stops
    /// replicating to it), with the new membership's version.
    Removed {
        version: i64,
    },
    /// From a leader handing leadership to `to`: the leaderless moment
    /// that follows is planned, and clients without writes in flight keep
    /// their connections through it.
    HandingOver {
        to: u64,
    },
}

/// What a follower or observer tells its leader every raft tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    /// The last log index it applied, and that entry's zxid.
    pub applied_index: u64,
    pub applied_zxid: i64,
    /// Sessions with client activity since the last report.
    pub sessions: Vec<i64>,
}

/// A write for the leader to prepare.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedWrite {
    pub session_id: i64,
    pub cxid: i32,
    /// The identities of the client's connection, for ACL checks.
    pub auth: Vec<Id>,
    pub write: Forwarded,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Forwarded {
    /// A client's write request, as the client sent it.
    Request(Request),
    /// A new session, whose id the forwarding server chose.
    CreateSession { timeout_ms: i32, password: Vec<u8> },
    /// A write whose body did not parse: committed as an error.
    Error(i32),
}

impl ServiceMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            ServiceMessage::Forward(f) => {
                jute::write_i32(&mut out, KIND_FORWARD);
                jute::write_i64(&mut out, f.session_id);
                jute::write_i32(&mut out, f.cxid);
                jute::write_i32(&mut out, f.auth.len() as i32);
                for id in &f.auth {
                    jute::write_ustring(&mut out, Some(&id.scheme));
                    jute::write_ustring(&mut out, Some(&id.id));
                }
                match &f.write {
                    Forwarded::Request(request) => {
                        jute::write_i32(&mut out, WRITE_REQUEST);
                        let mut frame = Vec::new();
                        request.encode(f.cxid, &mut frame);
                        jute::write_buffer(&mut out, Some(&frame));
                    }
                    Forwarded::CreateSession {
                        timeout_ms,
                        password,
                    } => {
                        jute::write_i32(&mut out, WRITE_CREATE_SESSION);
                        jute::write_i32(&mut out, *timeout_ms);
                        jute::write_buffer(&mut out, Some(password));
                    }
                    Forwarded::Error(code) => {
                        jute::write_i32(&mut out, WRITE_ERROR);
                        jute::write_i32(&mut out, *code);
                    }
                }
            }
            ServiceMessage::Status(status) => {
                jute::write_i32(&mut out, KIND_STATUS);
                jute::write_i64(&mut out, status.applied_index as i64);
                jute::write_i64(&mut out, status.applied_zxid);
                jute::write_i32(&mut out, status.sessions.len() as i32);
                for id in &status.sessions {
                    jute::write_i64(&mut out, *id);
                }
            }
            ServiceMessage::Removed { version } => {
                jute::write_i32(&mut out, KIND_REMOVED);
                jute::write_i64(&mut out, *version);
            }
            ServiceMessage::HandingOver { to } => {
                jute::write_i32(&mut out, KIND_HANDING_OVER);
                jute::write_i64(&mut out, *to as i64);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ServiceMessage, ServiceDecodeError> {
        let mut r = Reader::new(bytes);
        let message = match r.read_i32()? {
            KIND_FORWARD => {
                let session_id = r.read_i64()?;
                let cxid = r.read_i32()?;
                let count = r.read_vec_len(8)?.unwrap_or(0);
                if count > MAX_AUTH {
                    return Err(ServiceDecodeError::Invalid("too many identities"));
                }
                let mut auth = Vec::with_capacity(count);
                for _ in 0..count {
                    let scheme = r.read_ustring()?.unwrap_or_default();
                    let id = r.read_ustring()?.unwrap_or_default();
                    auth.push(Id::new(scheme, id));
                }
                let write = match r.read_i32()? {
                    WRITE_REQUEST => {
                        let frame = r.read_buffer()?.unwrap_or_default();
                        let (_, request) = Request::decode(&frame).map_err(|_| {
                            ServiceDecodeError::Invalid("a forwarded request that does not decode")
                        })?;
                        Forwarded::Request(request)
                    }
                    WRITE_CREATE_SESSION => Forwarded::CreateSession {
                        timeout_ms: r.read_i32()?,
                        password: r.read_buffer()?.unwrap_or_default(),
                    },
                    WRITE_ERROR => Forwarded::Error(r.read_i32()?),
                    _ => return Err(ServiceDecodeError::Invalid("an unknown forwarded write")),
                };
                ServiceMessage::Forward(ForwardedWrite {
                    session_id,
                    cxid,
                    auth,
                    write,
                })
            }
            KIND_STATUS => {
                let applied_index = r.read_i64()? as u64;
                let applied_zxid = r.read_i64()?;
                let count = r.read_vec_len(8)?.unwrap_or(0);
                let mut sessions = Vec::with_capacity(count);
                for _ in 0..count {
                    sessions.push(r.read_i64()?);
                }
                ServiceMessage::Status(FollowerStatus {
                    applied_index,
                    applied_zxid,
                    sessions,
                })
            }
            KIND_REMOVED => ServiceMessage::Removed {
                version: r.read_i64()?,
            },
            KIND_HANDING_OVER => ServiceMessage::HandingOver {
                to: r.read_i64()? as u64,
            },
            _ => return Err(ServiceDecodeError::Invalid("an unknown service message")),
        };
        r.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: &ServiceMessage) {
        assert_eq!(&ServiceMessage::decode(&m.encode()).expect("decodes"), m);
    }

    #[test]
    fn messages_round_trip() {
        round_trip(&ServiceMessage::Removed {
            version: 0x2_0000_000b,
        });
        round_trip(&ServiceMessage::HandingOver { to: 4 });
        round_trip(&ServiceMessage::Status(FollowerStatus {
            applied_index: 42,
            applied_zxid: 0x1_0000_0007,
            sessions: vec![1, -5, i64::MAX],
        }));
        round_trip(&ServiceMessage::Status(FollowerStatus {
            applied_index: 0,
            applied_zxid: 0,
            sessions: Vec::new(),
        }));
        round_trip(&ServiceMessage::Forward(ForwardedWrite {
            session_id: 0x100,
            cxid: 7,
            auth: vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:x")],
            write: Forwarded::Request(Request::SetData(proto::SetDataRequest {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                version: -1,
            })),
        }));
        round_trip(&ServiceMessage::Forward(ForwardedWrite {
            session_id: 0x200,
            cxid: 0,
            auth: Vec::new(),
            write: Forwarded::CreateSession {
                timeout_ms: 30_000,
                password: vec![9; 16],
            },
        }));
        round_trip(&ServiceMessage::Forward(ForwardedWrite {
            session_id: 0x200,
            cxid: 3,
            auth: Vec::new(),
            write: Forwarded::Error(-1),
        }));
    }

    #[test]
    fn garbage_and_truncations_fail_cleanly() {
        let bytes = ServiceMessage::Forward(ForwardedWrite {
            session_id: 1,
            cxid: 2,
            auth: vec![Id::new("ip", "10.0.0.1")],
            write: Forwarded::Request(Request::Delete(proto::DeleteRequest {
                path: "/x".into(),
                version: 3,
            })),
        })
        .encode();
        for cut in 0..bytes.len() {
            assert!(
                ServiceMessage::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(ServiceMessage::decode(&[0, 0, 0, 9]).is_err());
        assert!(ServiceMessage::decode(&[0, 0, 0, 2, 0x7f, 0xff, 0xff, 0xff]).is_err());
    }
}
