//! The ZooKeeper layer's part of what servers tell each other (inside the
//! driver's notices, `consensus::driver::Notice`, which carry the
//! requester and the positions):
//!
//! - a write forwarded to the leader by the server its client is connected
//!   to (as ZooKeeper's followers forward requests): the identities of the
//!   client's connection and the write, as the client sent it; the leader
//!   prepares it against its tree and proposes the transaction; every
//!   server applies it once committed, and the forwarding server answers
//!   its client then;
//! - a follower's report to its leader: which sessions its clients used
//!   since the last report, because the leader alone expires sessions
//!   (ZooKeeper's followers do the same in their pings).
//!
//! Encoded with jute's primitives, laid out as earlier releases laid them
//! out after the notice's own fields; decoding checks every length, because
//! the bytes come from the network (from a peer whose Hello checked out,
//! but a bug or a corrupted stream must not crash the leader).

use proto::jute::{self, Reader};
use proto::{DecodeError, Id, Request};

const WRITE_REQUEST: i32 = 1;
const WRITE_CREATE_SESSION: i32 = 2;
const WRITE_ERROR: i32 = 3;

/// Most identities one connection may carry in a forwarded write.
const MAX_AUTH: usize = 64;

/// Why a forwarded write or a report did not decode.
#[derive(Debug, thiserror::Error)]
pub enum ServiceDecodeError {
    #[error(transparent)]
    Jute(#[from] DecodeError),
    #[error("invalid service message: {0}")]
    Invalid(&'static str),
}

/// A write for the leader to prepare.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedWrite {
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

impl ForwardedWrite {
    /// The bytes; `cxid` goes into the request's header, as the client
    /// sent it.
    pub fn encode(&self, cxid: i32) -> Vec<u8> {
        let mut out = Vec::new();
        jute::write_i32(&mut out, self.auth.len() as i32);
        for id in &self.auth {
            jute::write_ustring(&mut out, Some(&id.scheme));
            jute::write_ustring(&mut out, Some(&id.id));
        }
        match &self.write {
            Forwarded::Request(request) => {
                jute::write_i32(&mut out, WRITE_REQUEST);
                let mut frame = Vec::new();
                request.encode(cxid, &mut frame);
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
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ForwardedWrite, ServiceDecodeError> {
        let mut r = Reader::new(bytes);
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
        r.finish()?;
        Ok(ForwardedWrite { auth, write })
    }
}

/// The sessions a follower's clients used since its last report.
pub fn encode_report(sessions: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    jute::write_i32(&mut out, sessions.len() as i32);
    for id in sessions {
        jute::write_i64(&mut out, *id);
    }
    out
}

pub fn decode_report(bytes: &[u8]) -> Result<Vec<i64>, ServiceDecodeError> {
    let mut r = Reader::new(bytes);
    let count = r.read_vec_len(8)?.unwrap_or(0);
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        sessions.push(r.read_i64()?);
    }
    r.finish()?;
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(w: &ForwardedWrite) {
        assert_eq!(&ForwardedWrite::decode(&w.encode(7)).expect("decodes"), w);
    }

    #[test]
    fn writes_and_reports_round_trip() {
        round_trip(&ForwardedWrite {
            auth: vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:x")],
            write: Forwarded::Request(Request::SetData(proto::SetDataRequest {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                version: -1,
            })),
        });
        round_trip(&ForwardedWrite {
            auth: Vec::new(),
            write: Forwarded::CreateSession {
                timeout_ms: 30_000,
                password: vec![9; 16],
            },
        });
        round_trip(&ForwardedWrite {
            auth: Vec::new(),
            write: Forwarded::Error(-1),
        });
        for sessions in [vec![1, -5, i64::MAX], Vec::new()] {
            assert_eq!(
                decode_report(&encode_report(&sessions)).expect("decodes"),
                sessions
            );
        }
    }

    #[test]
    fn garbage_and_truncations_fail_cleanly() {
        let bytes = ForwardedWrite {
            auth: vec![Id::new("ip", "10.0.0.1")],
            write: Forwarded::Request(Request::Delete(proto::DeleteRequest {
                path: "/x".into(),
                version: 3,
            })),
        }
        .encode(2);
        for cut in 0..bytes.len() {
            assert!(
                ForwardedWrite::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(ForwardedWrite::decode(&[0, 0, 0, 0, 0, 0, 0, 9]).is_err());
        assert!(decode_report(&[0x7f, 0xff, 0xff, 0xff]).is_err());
    }
}
