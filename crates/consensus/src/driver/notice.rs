//! What drivers tell each other besides Raft's messages: the payload of
//! `wire::Frame::Service`.
//!
//! - a write forwarded to the leader by the server its client is connected
//!   to (its bytes are the state machine's, opaque here);
//! - a follower's status: how far it has applied, and a report of the
//!   state machine's (the sessions its clients used, for the leader's
//!   expiry);
//! - the leader's notice to a server a committed change removed, its notice
//!   that it hands leadership over, and a leader's notice that it stepped
//!   down (check-quorum) so that followers need not wait out its lease;
//! - a membership change handed to the next leader;
//! - discovery, for a server whose store is empty: is there an ensemble,
//!   and am I in it? (`driver::standing`)
//! - a member that lost its store asking to be taken back, the leader's
//!   answer, and a follower's notice that the leader's view of its log is
//!   ahead of the log (`driver::standing`);
//! - a snapshot's image, in chunks from the leader, and the receiver's
//!   acknowledgements (`driver::image_stream`).
//!
//! The encoding is big-endian `i32` kinds and `i64` fields with `i32`
//! length-prefixed buffers (jute's primitives), the first four kinds laid
//! out exactly as earlier releases laid them out, so that servers of both
//! releases understand each other during a rolling upgrade. Decoding
//! checks every length against the bytes present and never panics: the
//! bytes come from the network.

use thiserror::Error;

use super::image_stream::SnapshotId;
use crate::membership::{Member, Membership, member_line, parse_server};

const FORWARD: i32 = 1;
const STATUS: i32 = 2;
const REMOVED: i32 = 3;
const HANDING_OVER: i32 = 4;
const STEPPED_DOWN: i32 = 5;
const CONTINUE_JOB: i32 = 6;
const DISCOVER: i32 = 7;
const DISCOVER_REPLY: i32 = 8;
const REJOINING: i32 = 9;
const RESTORE_ACCEPTED: i32 = 10;
const STALE_PROGRESS: i32 = 11;
const SNAPSHOT_CHUNK: i32 = 12;
const SNAPSHOT_ACK: i32 = 13;

/// Who a write answers: ZooKeeper's (session, cxid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requester {
    pub session_id: i64,
    pub cxid: i32,
}

/// The servers a zoo.cfg lists, by role: a brand-new ensemble forms only
/// from identical lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Configured {
    pub participants: Vec<u64>,
    pub observers: Vec<u64>,
}

impl Configured {
    /// Sorted, so equal lists compare equal.
    pub fn of(members: &[Member]) -> Configured {
        let mut c = Configured::default();
        for m in members {
            match m.role {
                crate::membership::MemberRole::Participant => c.participants.push(m.id),
                crate::membership::MemberRole::Observer => c.observers.push(m.id),
            }
        }
        c.participants.sort_unstable();
        c.observers.sort_unstable();
        c
    }

    /// `1,2,3` or `1,2,3;4,5` (observers after the `;`).
    fn text(&self) -> String {
        let mut text = ids_text(&self.participants);
        if !self.observers.is_empty() {
            text.push(';');
            text.push_str(&ids_text(&self.observers));
        }
        text
    }

    fn parse(text: &str) -> Result<Configured, NoticeError> {
        let (participants, observers) = text.split_once(';').unwrap_or((text, ""));
        Ok(Configured {
            participants: parse_ids(participants)?,
            observers: parse_ids(observers)?,
        })
    }
}

/// What a server says about itself to a server that asks (discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// A leader has committed in this ensemble (or this server has seen an
    /// election past its bootstrap): the ensemble exists.
    pub formed: bool,
    /// This server's term.
    pub term: u64,
    /// The last index of this server's log.
    pub last_index: u64,
    /// The membership this server knows as committed, if it is formed.
    pub membership: Option<Membership>,
    /// The participants of this server's zoo.cfg: a brand-new ensemble
    /// forms only from identical configurations.
    pub configured: Configured,
    /// Set when the asker is not who it says (another server's id at
    /// another address): it must not take part.
    pub conflict: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A write for the leader to prepare: the state machine's bytes.
    Forward {
        requester: Requester,
        submission: Vec<u8>,
    },
    /// A follower's or observer's status, every few ticks.
    Status {
        applied_index: u64,
        applied_zxid: i64,
        /// The state machine's report (opaque here).
        report: Vec<u8>,
    },
    /// From the leader to a server a committed change removed.
    Removed {
        version: i64,
    },
    /// From a leader handing leadership to `to`: the leaderless moment
    /// that follows is planned.
    HandingOver {
        to: u64,
    },
    /// From a leader that stepped down in `term` (it heard from no
    /// quorum): its followers end its lease and elect a successor at once.
    SteppedDown {
        term: u64,
    },
    /// A client's membership change the sender started and hands over
    /// (it leaves the ensemble): the new leader carries it on.
    ContinueJob {
        requester: Requester,
        target: Vec<Member>,
    },
    /// From a server with an empty store: what are you?
    Discover {
        /// The asker's own `server.N` line, as its zoo.cfg gives it.
        me: Option<Member>,
        /// The participants of the asker's zoo.cfg.
        configured: Configured,
    },
    DiscoverReply(Standing),
    /// From a member that lost its store (restarted empty), to every
    /// member: the leader must forget what it knew of its log before
    /// counting it again. `nonce` names this restore attempt.
    Rejoining {
        nonce: u64,
    },
    /// The leader of `term` forgot what it knew of the sender's log; the
    /// restoring member is whole again once it has applied `target`.
    RestoreAccepted {
        term: u64,
        target: u64,
        nonce: u64,
        /// The leader's committed membership: the restoring server's own
        /// may be older than the leader (it applies nothing meanwhile),
        /// and it must reach the leader to answer it.
        membership: Membership,
    },
    /// From a follower: the heartbeat of the leader of `term` said more of
    /// its log is committed than it holds (`last_index`): the leader's view
    /// of it is stale.
    StaleProgress {
        term: u64,
        last_index: u64,
    },
    /// A piece of a snapshot's image, from the leader sending it.
    SnapshotChunk {
        id: SnapshotId,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// From the server receiving a snapshot: how much of image `id` it
    /// holds (`received`), or that it holds all of it and checked it
    /// (`received == id.bytes`), or that it refused it (`refused`: the
    /// sender gives up and Raft makes a new one).
    SnapshotAck {
        id: SnapshotId,
        received: u64,
        refused: bool,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NoticeError {
    #[error("the notice ends early: {0} needs more bytes")]
    Truncated(&'static str),
    #[error("{0} bytes left over after the notice")]
    TrailingBytes(usize),
    #[error("unknown notice kind {0}")]
    UnknownKind(i32),
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
}

impl Notice {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let w = &mut out;
        match self {
            Notice::Forward {
                requester,
                submission,
            } => {
                put_i32(w, FORWARD);
                put_i64(w, requester.session_id);
                put_i32(w, requester.cxid);
                w.extend_from_slice(submission);
            }
            Notice::Status {
                applied_index,
                applied_zxid,
                report,
            } => {
                put_i32(w, STATUS);
                put_u64(w, *applied_index);
                put_i64(w, *applied_zxid);
                w.extend_from_slice(report);
            }
            Notice::Removed { version } => {
                put_i32(w, REMOVED);
                put_i64(w, *version);
            }
            Notice::HandingOver { to } => {
                put_i32(w, HANDING_OVER);
                put_u64(w, *to);
            }
            Notice::SteppedDown { term } => {
                put_i32(w, STEPPED_DOWN);
                put_u64(w, *term);
            }
            Notice::ContinueJob { requester, target } => {
                put_i32(w, CONTINUE_JOB);
                put_i64(w, requester.session_id);
                put_i32(w, requester.cxid);
                put_text(w, &members_text(target));
            }
            Notice::Discover { me, configured } => {
                put_i32(w, DISCOVER);
                put_text(w, &me.as_ref().map(member_line).unwrap_or_default());
                put_text(w, &configured.text());
            }
            Notice::DiscoverReply(standing) => {
                put_i32(w, DISCOVER_REPLY);
                put_i32(w, i32::from(standing.formed));
                put_u64(w, standing.term);
                put_u64(w, standing.last_index);
                put_text(
                    w,
                    &standing
                        .membership
                        .as_ref()
                        .map(Membership::render)
                        .unwrap_or_default(),
                );
                put_text(w, &standing.configured.text());
                put_text(w, standing.conflict.as_deref().unwrap_or_default());
            }
            Notice::Rejoining { nonce } => {
                put_i32(w, REJOINING);
                put_u64(w, *nonce);
            }
            Notice::RestoreAccepted {
                term,
                target,
                nonce,
                membership,
            } => {
                put_i32(w, RESTORE_ACCEPTED);
                put_u64(w, *term);
                put_u64(w, *target);
                put_u64(w, *nonce);
                put_text(w, &membership.render());
            }
            Notice::StaleProgress { term, last_index } => {
                put_i32(w, STALE_PROGRESS);
                put_u64(w, *term);
                put_u64(w, *last_index);
            }
            Notice::SnapshotChunk { id, offset, bytes } => {
                put_i32(w, SNAPSHOT_CHUNK);
                put_id(w, id);
                put_u64(w, *offset);
                w.extend_from_slice(bytes);
            }
            Notice::SnapshotAck {
                id,
                received,
                refused,
            } => {
                put_i32(w, SNAPSHOT_ACK);
                put_id(w, id);
                put_u64(w, *received);
                put_i32(w, i32::from(*refused));
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Notice, NoticeError> {
        let mut r = Reader(bytes);
        let notice = match r.i32("kind")? {
            FORWARD => Notice::Forward {
                requester: Requester {
                    session_id: r.i64("session")?,
                    cxid: r.i32("cxid")?,
                },
                submission: r.rest().to_vec(),
            },
            STATUS => Notice::Status {
                applied_index: r.u64("applied index")?,
                applied_zxid: r.i64("applied zxid")?,
                report: r.rest().to_vec(),
            },
            REMOVED => Notice::Removed {
                version: r.i64("version")?,
            },
            HANDING_OVER => Notice::HandingOver { to: r.u64("to")? },
            STEPPED_DOWN => Notice::SteppedDown {
                term: r.u64("term")?,
            },
            CONTINUE_JOB => Notice::ContinueJob {
                requester: Requester {
                    session_id: r.i64("session")?,
                    cxid: r.i32("cxid")?,
                },
                target: parse_members(r.text("target")?)?,
            },
            DISCOVER => {
                let me = r.text("member")?;
                let me = if me.is_empty() {
                    None
                } else {
                    Some(parse_server(me).map_err(|why| invalid("member", why))?)
                };
                Notice::Discover {
                    me,
                    configured: Configured::parse(r.text("configured")?)?,
                }
            }
            DISCOVER_REPLY => {
                let formed = match r.i32("formed")? {
                    0 => false,
                    1 => true,
                    other => return Err(invalid("formed", other.to_string())),
                };
                let term = r.u64("term")?;
                let last_index = r.u64("last index")?;
                let membership = match r.text("membership")? {
                    "" => None,
                    text => {
                        Some(Membership::parse(text).map_err(|why| invalid("membership", why))?)
                    }
                };
                let configured = Configured::parse(r.text("configured")?)?;
                let conflict = match r.text("conflict")? {
                    "" => None,
                    text => Some(text.to_owned()),
                };
                Notice::DiscoverReply(Standing {
                    formed,
                    term,
                    last_index,
                    membership,
                    configured,
                    conflict,
                })
            }
            REJOINING => Notice::Rejoining {
                nonce: r.u64("nonce")?,
            },
            RESTORE_ACCEPTED => Notice::RestoreAccepted {
                term: r.u64("term")?,
                target: r.u64("target")?,
                nonce: r.u64("nonce")?,
                membership: Membership::parse(r.text("membership")?)
                    .map_err(|why| invalid("membership", why))?,
            },
            STALE_PROGRESS => Notice::StaleProgress {
                term: r.u64("term")?,
                last_index: r.u64("last index")?,
            },
            SNAPSHOT_CHUNK => Notice::SnapshotChunk {
                id: r.id()?,
                offset: r.u64("chunk offset")?,
                bytes: r.rest().to_vec(),
            },
            SNAPSHOT_ACK => Notice::SnapshotAck {
                id: r.id()?,
                received: r.u64("bytes received")?,
                refused: match r.i32("refused")? {
                    0 => false,
                    1 => true,
                    other => return Err(invalid("refused", other.to_string())),
                },
            },
            other => return Err(NoticeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(notice)
    }
}

fn invalid(what: &'static str, why: impl Into<String>) -> NoticeError {
    NoticeError::Invalid {
        what,
        why: why.into(),
    }
}

fn members_text(members: &[Member]) -> String {
    members
        .iter()
        .map(member_line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_members(text: &str) -> Result<Vec<Member>, NoticeError> {
    let mut members: Vec<Member> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_server(l.trim()).map_err(|why| invalid("member", why)))
        .collect::<Result<_, _>>()?;
    members.sort_by_key(|m| m.id);
    Ok(members)
}

fn ids_text(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn parse_ids(text: &str) -> Result<Vec<u64>, NoticeError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| invalid("server id", s)))
        .collect()
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_id(out: &mut Vec<u8>, id: &SnapshotId) {
    put_u64(out, id.index);
    put_u64(out, id.term);
    put_u64(out, id.bytes);
    put_i64(out, i64::from(id.checksum));
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_i32(out, i32::try_from(text.len()).unwrap_or(i32::MAX));
    out.extend_from_slice(text.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], NoticeError> {
        if self.0.len() < n {
            return Err(NoticeError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, NoticeError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, NoticeError> {
        let b = self.take(8, what)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, NoticeError> {
        Ok(self.i64(what)? as u64)
    }

    fn text(&mut self, what: &'static str) -> Result<&'a str, NoticeError> {
        let len = self.i32(what)?;
        let len = usize::try_from(len).map_err(|_| invalid(what, "a negative length"))?;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map_err(|_| invalid(what, "not UTF-8"))
    }

    fn id(&mut self) -> Result<SnapshotId, NoticeError> {
        Ok(SnapshotId {
            index: self.u64("snapshot index")?,
            term: self.u64("snapshot term")?,
            bytes: self.u64("snapshot size")?,
            checksum: u32::try_from(self.i64("snapshot checksum")?)
                .map_err(|_| invalid("snapshot checksum", "out of range"))?,
        })
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn finish(&self) -> Result<(), NoticeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(NoticeError::TrailingBytes(self.0.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::MemberRole;

    fn member(id: u64) -> Member {
        Member {
            id,
            host: format!("zk-{id}.zk"),
            quorum_port: 2888,
            election_port: 3888,
            role: MemberRole::Participant,
            client: Some(("0.0.0.0".into(), 2181)),
        }
    }

    fn all() -> Vec<Notice> {
        let requester = Requester {
            session_id: 0x1234_5678,
            cxid: 7,
        };
        vec![
            Notice::Forward {
                requester,
                submission: vec![1, 2, 3],
            },
            Notice::Status {
                applied_index: 42,
                applied_zxid: 0x1_0000_0007,
                report: vec![0, 0, 0, 0],
            },
            Notice::Removed {
                version: 0x2_0000_000b,
            },
            Notice::HandingOver { to: 4 },
            Notice::SteppedDown { term: 9 },
            Notice::ContinueJob {
                requester,
                target: vec![member(1), member(2)],
            },
            Notice::Discover {
                me: Some(member(4)),
                configured: Configured {
                    participants: vec![1, 2, 3],
                    observers: vec![4],
                },
            },
            Notice::Discover {
                me: None,
                configured: Configured::default(),
            },
            Notice::DiscoverReply(Standing {
                formed: true,
                term: 3,
                last_index: 17,
                membership: Some(Membership::new(0x3_0000_0001, vec![member(1), member(2)])),
                configured: Configured {
                    participants: vec![1, 2, 3],
                    observers: Vec::new(),
                },
                conflict: None,
            }),
            Notice::DiscoverReply(Standing {
                formed: false,
                term: 1,
                last_index: 1,
                membership: None,
                configured: Configured {
                    participants: vec![1, 2, 3],
                    observers: Vec::new(),
                },
                conflict: Some("server 2 is zk-2.zk:2888".into()),
            }),
            Notice::Rejoining { nonce: 99 },
            Notice::RestoreAccepted {
                term: 5,
                target: 1000,
                nonce: 99,
                membership: Membership::new(0x5_0000_0002, vec![member(1), member(2)]),
            },
            Notice::StaleProgress {
                term: 5,
                last_index: 1,
            },
            Notice::SnapshotChunk {
                id: SnapshotId {
                    index: 700,
                    term: 4,
                    bytes: 3 << 20,
                    checksum: 0xdead_beef,
                },
                offset: 1 << 20,
                bytes: vec![9; 16],
            },
            Notice::SnapshotAck {
                id: SnapshotId {
                    index: 700,
                    term: 4,
                    bytes: 3 << 20,
                    checksum: 7,
                },
                received: 2 << 20,
                refused: true,
            },
        ]
    }

    #[test]
    fn every_notice_round_trips() {
        for notice in all() {
            assert_eq!(Notice::decode(&notice.encode()), Ok(notice));
        }
    }

    /// The first four kinds are laid out as earlier releases laid out their
    /// service messages (jute: i32 kind, i64 fields).
    #[test]
    fn the_earlier_layout_is_kept() {
        let bytes = Notice::Removed { version: 5 }.encode();
        assert_eq!(bytes, [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5]);
        let bytes = Notice::HandingOver { to: 2 }.encode();
        assert_eq!(bytes, [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn truncations_and_garbage_fail_cleanly() {
        for notice in all() {
            let bytes = notice.encode();
            let fixed_tail = matches!(
                notice,
                Notice::Forward { .. } | Notice::Status { .. } | Notice::SnapshotChunk { .. }
            );
            for cut in 0..bytes.len() {
                let decoded = Notice::decode(&bytes[..cut]);
                if !fixed_tail {
                    assert!(decoded.is_err(), "{notice:?} cut at {cut}");
                }
            }
        }
        assert!(Notice::decode(&[0, 0, 0, 99]).is_err());
        assert!(Notice::decode(&[0, 0, 0, 8, 0, 0, 0, 2]).is_err());
        assert!(Notice::decode(&[0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
