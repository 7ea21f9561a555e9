//! Snapshots travel as streams, not as one Raft message. raft-rs's
//! `MsgSnapshot` carries only the metadata and a [`SnapshotId`] (index,
//! term, size and checksum of the image the state machine made); the
//! image follows as chunks (`Notice::SnapshotChunk`) before it:
//!
//! - the leader holds raft-rs's `MsgSnapshot` for a follower back and
//!   sends the image in chunks of `snapshot_chunk_bytes`, at most
//!   `snapshot_window_chunks` unacknowledged, within a budget of
//!   `snapshot_bytes_per_tick` shared by every transfer (so a catch-up
//!   cannot take the network or the disk from the log and the clients);
//! - the receiver's state machine writes each chunk where it stages the
//!   image (never the whole image in memory) and acknowledges how much it
//!   holds; once it holds all of it and the checksum matches, the leader
//!   sends the held `MsgSnapshot`, which the guard lets through only if
//!   the image it names is staged whole, and raft-rs installs it;
//! - a chunk that arrives after a gap is answered with what the receiver
//!   holds, and the sender resumes from there; so is a transfer that made
//!   no progress for an election timeout, or whose connection broke. The
//!   receiver keeps a partial image across broken connections and
//!   restarts, so a transfer resumes where it stopped as long as the
//!   leader sends the same image;
//! - a new leader makes its own image: the receiver drops the partial one
//!   of another id when the first chunk of the new one arrives.
//!
//! The log is not compacted past an image being sent, so the receiver can
//! follow from the log once it has installed it.

use raft::eraftpb::Message;

use super::Driver;
use super::io::{LogWriter, Staged, StateMachine, Transport};
use super::notice::Notice;

/// Names one image and what checks it: raft-rs's snapshot data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotId {
    /// The last entry the image reflects.
    pub index: u64,
    pub term: u64,
    /// The image's size in bytes.
    pub bytes: u64,
    /// CRC-32C of the whole image.
    pub checksum: u32,
}

/// What raft-rs's snapshot data starts with when it names a streamed
/// image (an inline image of an earlier release starts with its version
/// byte, 1).
const ID_MAGIC: &[u8; 8] = b"CNCLSNAP";
const ID_VERSION: u8 = 1;
const ID_LEN: usize = 8 + 1 + 8 + 8 + 8 + 4;

impl SnapshotId {
    /// The bytes raft-rs's snapshot message carries.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ID_LEN);
        out.extend_from_slice(ID_MAGIC);
        out.push(ID_VERSION);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.term.to_be_bytes());
        out.extend_from_slice(&self.bytes.to_be_bytes());
        out.extend_from_slice(&self.checksum.to_be_bytes());
        out
    }

    /// [`SnapshotId::encode`]'s bytes; `None` for anything else (an inline
    /// image of an earlier release, or garbage).
    pub fn decode(data: &[u8]) -> Option<SnapshotId> {
        if data.len() != ID_LEN || &data[..8] != ID_MAGIC || data[8] != ID_VERSION {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&data[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&data[33..37]);
        Some(SnapshotId {
            index: u64_at(9),
            term: u64_at(17),
            bytes: u64_at(25),
            checksum: u32::from_be_bytes(crc),
        })
    }
}

impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} ({} bytes, crc {:08x})",
            self.index, self.term, self.bytes, self.checksum
        )
    }
}

/// A snapshot on its way to one follower.
#[derive(Debug)]
pub(super) struct Outgoing {
    id: SnapshotId,
    /// raft-rs's message, sent once the follower holds the image.
    message: Message,
    /// What the follower said it holds.
    acked: u64,
    /// What has been sent (`acked` after a rewind).
    sent: u64,
    /// The tick of the last acknowledgement that moved `acked` (or of the
    /// start, or of the last rewind).
    progress_tick: u64,
    /// Sending went back to `acked` since it last moved.
    rewound: bool,
    /// The follower holds the image and raft-rs's message went out: the
    /// log is kept from the image's index until the follower's log
    /// reaches it, so it goes on from the log once it has installed the
    /// image (however long that takes) instead of needing another.
    delivered: bool,
}

impl Outgoing {
    /// The follower does not hold the whole image yet.
    pub(super) fn is_sending(&self) -> bool {
        !self.delivered
    }
}

/// The image the state machine is making for raft-rs (`snapshot.rs`).
#[derive(Debug)]
pub(super) struct Making {
    pub(super) index: u64,
    pub(super) term: u64,
    pub(super) conf: raft::eraftpb::ConfState,
}

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// raft-rs sends `message` (a `MsgSnapshot`): its image goes first.
    pub(super) fn send_image(&mut self, message: Message) {
        let to = message.to;
        let Some(id) = SnapshotId::decode(&message.get_snapshot().data) else {
            // Not an image of ours (cannot happen: this leader makes
            // them); sent as it is.
            self.send_now(message);
            return;
        };
        match self.images_out.get_mut(&to) {
            // raft-rs asked again for an image the follower holds.
            Some(out) if out.id == id && out.delivered => self.send_now(message),
            // raft-rs asked again for the same image: the transfer goes on.
            Some(out) if out.id == id => out.message = message,
            _ => {
                tracing::info!(peer = to, image = %id, "sending a snapshot");
                self.images_out.insert(
                    to,
                    Outgoing {
                        id,
                        message,
                        acked: 0,
                        sent: 0,
                        progress_tick: self.ticks,
                        rewound: false,
                        delivered: false,
                    },
                );
            }
        }
    }

    /// Sends what the window and the budget allow, transfer by transfer.
    pub(super) fn pump_images(&mut self, sm: &mut dyn StateMachine<W>) {
        let chunk = self.config.snapshot_chunk_bytes.max(1) as u64;
        let window = chunk * self.config.snapshot_window_chunks.max(1) as u64;
        let peers: Vec<u64> = self.images_out.keys().copied().collect();
        for peer in peers {
            loop {
                if self.send_budget == 0 {
                    return;
                }
                let Some(out) = self.images_out.get_mut(&peer) else {
                    break;
                };
                if out.sent >= out.id.bytes || out.sent - out.acked.min(out.sent) >= window {
                    break;
                }
                let (id, offset) = (out.id, out.sent);
                let len = chunk.min(id.bytes - offset).min(self.send_budget);
                let bytes = match sm.read_snapshot(&id, offset, len as usize) {
                    Ok(bytes) if bytes.len() as u64 == len => bytes,
                    Ok(bytes) => {
                        self.abandon_image(
                            peer,
                            &format!("read {} bytes of {len} at {offset}", bytes.len()),
                        );
                        break;
                    }
                    Err(why) => {
                        self.abandon_image(peer, &why);
                        break;
                    }
                };
                let sent = self.notify(peer, &Notice::SnapshotChunk { id, offset, bytes });
                let Some(out) = self.images_out.get_mut(&peer) else {
                    break;
                };
                if !sent {
                    // The connection's queue is full or gone: resume from
                    // what the follower holds at the next tick.
                    out.sent = out.acked;
                    out.rewound = true;
                    break;
                }
                out.sent += len;
                self.send_budget = self.send_budget.saturating_sub(len);
            }
        }
    }

    /// The follower said how much of image `id` it holds.
    pub(super) fn snapshot_acked(
        &mut self,
        from: u64,
        id: SnapshotId,
        received: u64,
        refused: bool,
    ) {
        let Some(out) = self.images_out.get_mut(&from) else {
            return;
        };
        if out.id != id {
            return;
        }
        if refused {
            self.abandon_image(from, "the follower refused the image");
            // Raft asks for a new image at its next contact with the
            // follower; whatever made it refuse this one (a full disk, a
            // damaged transfer) may still be there, so the next is made
            // after an election timeout, not at once and in a loop.
            self.make_after_tick = self
                .make_after_tick
                .max(self.ticks + self.config.election_ticks as u64);
            return;
        }
        if out.delivered && received < id.bytes {
            // It no longer holds the image raft-rs's message named (it
            // lost it, or restarted before staging it whole): sent again.
            out.delivered = false;
            out.acked = received;
            out.sent = received;
            out.rewound = true;
            out.progress_tick = self.ticks;
            return;
        }
        if received >= id.bytes {
            if out.delivered {
                return;
            }
            out.delivered = true;
            out.acked = id.bytes;
            out.sent = id.bytes;
            let message = out.message.clone();
            tracing::info!(peer = from, image = %id, "the follower holds the snapshot's image");
            self.send_now(message);
            return;
        }
        if received > out.acked {
            out.acked = received;
            out.progress_tick = self.ticks;
            out.sent = out.sent.max(received);
            out.rewound = false;
        } else if received < out.acked || !out.rewound {
            // No progress: a chunk was lost (the follower answers a gap,
            // or a copy, with what it holds) or the follower lost its
            // partial image. Resumed from there once; the answers to
            // chunks sent before are ignored until the follower moves on
            // (unless it holds less than it said).
            out.acked = received;
            out.sent = received;
            out.rewound = true;
        }
    }

    /// A chunk of image `id` from `from`.
    pub(super) fn snapshot_chunk(
        &mut self,
        from: u64,
        id: SnapshotId,
        offset: u64,
        bytes: &[u8],
        sm: &mut dyn StateMachine<W>,
    ) {
        let fits = offset
            .checked_add(bytes.len() as u64)
            .is_some_and(|end| end <= id.bytes);
        if bytes.is_empty() || !fits || id.index == 0 || id.term == 0 {
            self.refuse(
                from,
                "snapshot chunk outside its image",
                &format!("{} bytes at {offset} of {id}", bytes.len()),
            );
            return;
        }
        let staged = sm.receive_snapshot(&id, offset, bytes);
        tracing::debug!(peer = from, image = %id, offset, len = bytes.len(), ?staged, "snapshot chunk");
        let ack = match staged {
            Ok(Staged::Complete) => {
                tracing::info!(peer = from, image = %id, "received a snapshot's image whole");
                Notice::SnapshotAck {
                    id,
                    received: id.bytes,
                    refused: false,
                }
            }
            Ok(Staged::At(held)) => Notice::SnapshotAck {
                id,
                received: held,
                refused: false,
            },
            Err(why) => {
                self.refuse(from, "snapshot image refused", &why);
                Notice::SnapshotAck {
                    id,
                    received: 0,
                    refused: true,
                }
            }
        };
        self.notify(from, &ack);
    }

    /// Once a tick: a new budget; transfers that made no progress for an
    /// election timeout resume from what the follower last said it held;
    /// none outlives this server's leadership or the follower's place in
    /// the configuration.
    pub(super) fn image_streams_tick(&mut self) {
        self.send_budget = self.config.snapshot_bytes_per_tick.max(1);
        if !self.is_leader() {
            self.images_out.clear();
            return;
        }
        let conf = self.node.conf_state();
        let node = &self.node;
        self.images_out.retain(|peer, out| {
            (conf.voters.contains(peer) || conf.learners.contains(peer))
                && !(out.delivered && node.matched(*peer).is_some_and(|m| m >= out.id.index))
        });
        let stall = self.config.election_ticks as u64;
        for out in self.images_out.values_mut() {
            if out.sent > out.acked && self.ticks.saturating_sub(out.progress_tick) >= stall {
                out.sent = out.acked;
                out.progress_tick = self.ticks;
                out.rewound = true;
            }
        }
    }

    /// The connection to `peer` broke: its transfer resumes from what it
    /// last said it held.
    pub(super) fn image_stream_interrupted(&mut self, peer: u64) {
        if let Some(out) = self.images_out.get_mut(&peer) {
            out.sent = out.acked;
            out.rewound = true;
        }
    }

    /// The images being sent.
    pub(super) fn images_in_use(&self) -> Vec<SnapshotId> {
        let mut ids: Vec<SnapshotId> = self.images_out.values().map(|out| out.id).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The lowest index an image being made or sent reflects: the log is
    /// kept from there, so the follower can go on from the log.
    pub(super) fn oldest_image_in_use(&self) -> Option<u64> {
        self.images_out
            .values()
            .map(|out| out.id.index)
            .chain(self.making.as_ref().map(|m| m.index))
            .min()
    }

    fn abandon_image(&mut self, peer: u64, why: &str) {
        if let Some(out) = self.images_out.remove(&peer) {
            tracing::warn!(peer, image = %out.id, why, "gave up sending a snapshot");
            // Raft probes the follower again and asks for a snapshot: a new
            // image, not this one.
            self.log.core().withdraw_offered(out.id.index);
            self.node.report_snapshot_failed(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_and_nothing_else_decodes() {
        let id = SnapshotId {
            index: 12,
            term: 3,
            bytes: 1 << 33,
            checksum: 0xfeed_f00d,
        };
        assert_eq!(SnapshotId::decode(&id.encode()), Some(id));
        assert_eq!(SnapshotId::decode(&[1, 0, 0]), None);
        let mut other = id.encode();
        other[8] = 2;
        assert_eq!(SnapshotId::decode(&other), None);
        other = id.encode();
        other.push(0);
        assert_eq!(SnapshotId::decode(&other), None);
    }
}
