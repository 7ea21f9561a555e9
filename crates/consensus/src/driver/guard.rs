//! Everything a peer sends is checked here before it reaches raft-rs or
//! changes anything, and refused with a log line (once per peer and
//! reason) rather than a panic.
//!
//! raft-rs trusts its peers: it panics on a heartbeat that commits past
//! the end of its log (what a member that lost its disk receives from a
//! leader that remembers its old progress), on an append that conflicts
//! with committed entries, on entries that do not follow each other, on a
//! leadership transfer to a server it does not know, on a ReadIndex
//! message without its context, and it restores any snapshot whose
//! configuration names it. A server must survive all of these: a peer may
//! be confused (a stale or wiped store, a wrong zoo.cfg) or broken.
//!
//! What is admitted also depends on what this server is (`standing.rs`):
//! a server without its state votes for nobody, and takes messages only
//! from a leader that knows it as such.

use raft::eraftpb::{EntryType, Message, MessageType};

use super::Driver;
use super::image_stream::SnapshotId;
use super::io::{LogWriter, StateMachine, Transport};
use super::notice::Notice;
use super::standing::Standing;

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// Whether raft-rs may take `m` from `from`.
    pub(super) fn admit(&mut self, from: u64, m: &Message, sm: &mut dyn StateMachine<W>) -> bool {
        match self.check(from, m, sm) {
            Ok(()) => true,
            Err((reason, detail)) => {
                self.refuse(from, reason, &detail);
                false
            }
        }
    }

    fn check(
        &mut self,
        from: u64,
        m: &Message,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), (&'static str, String)> {
        use MessageType::*;
        let t = m.get_msg_type();
        if m.from != from || m.to != self.my_id || from == self.my_id {
            return Err((
                "misaddressed message",
                format!("{t:?} from {} to {} on {from}'s connection", m.from, m.to),
            ));
        }
        // raft-rs takes a message of term 0 as a local one: from a peer it
        // would pass for its leader. Only a forwarded ReadIndex travels
        // without a term.
        if m.term == 0 && t != MsgReadIndex {
            return Err(("message without a term", format!("{t:?}")));
        }
        // And one with a term a follower would fail to pass on (raft-rs
        // refuses to send it: it is fatal there).
        if m.term != 0 && t == MsgReadIndex {
            return Err(("ReadIndex request with a term", format!("term {}", m.term)));
        }
        self.admitted_by_standing(from, m)?;
        // raft-rs answers a message of an older term with its own term and
        // takes nothing from it: the checks below are for what it takes.
        if m.term != 0 && m.term < self.node.term() {
            return Ok(());
        }
        match t {
            // Only ever local: a peer cannot make this leader hand over.
            MsgTransferLeader => return Err(("leadership transfer from a peer", String::new())),
            // Starts an election at once: only our leader may ask.
            MsgTimeoutNow if self.node.leader() != Some(from) => {
                return Err((
                    "election request from a server that does not lead",
                    format!("leader is {:?}", self.node.leader()),
                ));
            }
            MsgReadIndex | MsgReadIndexResp if m.entries.len() != 1 => {
                return Err((
                    "ReadIndex message without one context",
                    format!("{} entries", m.entries.len()),
                ));
            }
            // raft-rs's follower-side `request_snapshot`, which Conclave
            // never calls: a request for a snapshot newer than this
            // leader's applied state would have an image made, found too
            // old and made again, every tick while the request stands.
            MsgAppendResponse if m.request_snapshot != 0 => {
                return Err((
                    "snapshot request",
                    format!("for index {}", m.request_snapshot),
                ));
            }
            MsgHeartbeat => self.check_heartbeat(from, m)?,
            MsgAppend => self.check_append(m, sm)?,
            MsgSnapshot => self.check_snapshot(m, sm)?,
            _ => {}
        }
        Ok(())
    }

    /// Members take messages from members; a server without its state only
    /// from a leader that knows it as such.
    fn admitted_by_standing(
        &mut self,
        from: u64,
        m: &Message,
    ) -> Result<(), (&'static str, String)> {
        use MessageType::*;
        let vote = matches!(m.get_msg_type(), MsgRequestVote | MsgRequestPreVote);
        let mut ask_to_rejoin = None;
        let outcome = match &mut self.standing {
            Standing::Discovering(_) => Err((
                "Raft message before discovery ended",
                "this server has not found out yet whether its ensemble exists".into(),
            )),
            // A removed server still votes and takes appends: members that
            // have not applied its removal yet (the leader that committed
            // it may have stepped down before they heard) count it as a
            // voter, and without it may have no majority to elect the
            // leader that tells them. raft-rs never makes it campaign: it
            // is not in its own configuration.
            Standing::Removed => Ok(()),
            Standing::Joining(joining) if self.config.faults.join_on_empty_heartbeat => {
                // The broken join of `DriverFaults::join_on_empty_heartbeat`.
                if vote {
                    return Err(("vote request to a server with no state", String::new()));
                }
                match m.get_msg_type() {
                    MsgHeartbeat if m.commit == 0 => {
                        joining.taken_as_new = true;
                        Ok(())
                    }
                    MsgHeartbeat => {
                        joining.taken_as_new = false;
                        Err((
                            "a leader counts on a log this server does not have",
                            String::new(),
                        ))
                    }
                    _ if joining.taken_as_new => Ok(()),
                    _ => Err((
                        "Raft message before the leader knows this server",
                        String::new(),
                    )),
                }
            }
            Standing::Joining(_) => {
                // A joiner takes no Raft message: it votes for nobody (a
                // server with no state must not help elect a leader that may
                // lack what it once acknowledged), and it takes no append
                // or snapshot until discovery shows it a member, when it
                // restores. A heartbeat cannot tell it whether it is new: it
                // carries min(what the leader believes this server's log
                // holds, commit), 0 both for a server added just now and for
                // a member that lost its store, to a leader elected just now
                // that has not heard from it. Taken as new, such a member
                // would vote again before it held what it had acknowledged
                // (found by the e2e: a leader that lost its volume came back
                // just after its successor's election). Restoring also
                // catches a new server up from nothing, and it votes once it
                // holds everything committed before.
                if vote {
                    return Err(("vote request to a server with no state", String::new()));
                }
                Err((
                    "Raft message before discovery shows this server a member",
                    "this server has no state: it takes the state from the leader once \
                     discovery shows it a member (restoring)"
                        .into(),
                ))
            }
            Standing::Restoring(restore) => {
                if vote && self.config.faults.vote_while_restoring {
                    // The broken rejoin of `DriverFaults::vote_while_restoring`.
                    return Ok(());
                }
                if vote {
                    return Err((
                        "vote request to a member taking its state back",
                        "it votes again once it holds everything committed before it came back"
                            .into(),
                    ));
                }
                if restore.accepted.contains(&(from, m.term)) {
                    Ok(())
                } else {
                    // The members this server knew when it came back may all
                    // be gone since (it applies nothing meanwhile): a leader
                    // that reaches it is asked directly, once per status
                    // period.
                    let leads = matches!(m.get_msg_type(), MsgAppend | MsgHeartbeat | MsgSnapshot);
                    let every = self.config.status_every_ticks.max(1);
                    let due = restore
                        .asked
                        .get(&from)
                        .is_none_or(|&at| self.ticks.saturating_sub(at) >= every);
                    if leads && due {
                        restore.asked.insert(from, self.ticks);
                        ask_to_rejoin = Some(restore.nonce);
                    }
                    Err((
                        "Raft message from a leader that has not taken this server back",
                        format!("term {}", m.term),
                    ))
                }
            }
            // A member takes Raft messages from any server of its ensemble,
            // in its membership or not (Raft's rule: requests are handled
            // without consulting the configuration). One it does not know
            // may be a member added while this server was away, whose log
            // it has not caught up with: refusing it could leave a
            // majority unable to elect anyone. A removed server that does
            // not know it is removed cannot win: the majority that
            // committed its removal holds a longer log than it does.
            Standing::Member => Ok(()),
        };
        if let Some(nonce) = ask_to_rejoin {
            self.notify(from, &Notice::Rejoining { nonce });
        }
        outcome
    }

    /// A heartbeat that commits past the end of this log comes from a
    /// leader that remembers this server's log as longer than it is (it was
    /// lost): raft-rs would panic. Refused, and the leader is told.
    fn check_heartbeat(&mut self, from: u64, m: &Message) -> Result<(), (&'static str, String)> {
        let last = self.node.last_index();
        if m.commit <= last {
            return Ok(());
        }
        self.notify(
            from,
            &Notice::StaleProgress {
                term: m.term,
                last_index: last,
            },
        );
        Err((
            "heartbeat committing past the end of this log",
            format!("commit {} > last index {last}", m.commit),
        ))
    }

    /// Entries must follow the message's index one by one, with terms that
    /// never go back and never pass the message's; none may contradict an
    /// entry this server knows committed; each must be one the state
    /// machine can apply.
    fn check_append(
        &mut self,
        m: &Message,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), (&'static str, String)> {
        // raft-rs takes any index past its log to have term 0: an append
        // "after" such an index with term 0 would match and commit past the
        // end of the log.
        if m.index > self.node.last_index() && m.log_term == 0 {
            return Err((
                "append after an entry of term 0 past the end of the log",
                format!("index {}", m.index),
            ));
        }
        let mut prev_term = m.log_term;
        let committed = self.node.commit_index();
        let core = self.log.core();
        for (i, e) in m.entries.iter().enumerate() {
            let expected = m.index.saturating_add(1 + i as u64);
            if e.index != expected || e.term < prev_term || e.term > m.term {
                return Err((
                    "malformed append",
                    format!(
                        "entry {i} is {}/{} after {}/{prev_term} (message {}/{} term {})",
                        e.index, e.term, expected, m.index, m.log_term, m.term
                    ),
                ));
            }
            prev_term = e.term;
            if e.index <= committed
                && let Some(ours) = core.term(e.index)
                && ours != e.term
            {
                return Err((
                    "append contradicting committed entries",
                    format!(
                        "entry {} of term {} where the committed one has term {ours}",
                        e.index, e.term
                    ),
                ));
            }
        }
        drop(core);
        for e in m.entries.iter() {
            match e.get_entry_type() {
                EntryType::EntryNormal if !e.data.is_empty() => {
                    sm.check_entry(&e.data)
                        .map_err(|why| ("entry the state machine cannot apply", why))?;
                }
                EntryType::EntryNormal | EntryType::EntryConfChangeV2 => {}
                // This ensemble proposes single-step changes in the second
                // encoding only.
                EntryType::EntryConfChange => {
                    return Err(("membership entry in the old encoding", String::new()));
                }
            }
        }
        Ok(())
    }

    /// A snapshot must name a configuration raft-rs can restore, with this
    /// server in it, and data the state machine can install.
    fn check_snapshot(
        &mut self,
        m: &Message,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), (&'static str, String)> {
        let snapshot = m.get_snapshot();
        let meta = snapshot.get_metadata();
        let conf = meta.get_conf_state();
        let mut ids: Vec<u64> = conf.voters.iter().chain(&conf.learners).copied().collect();
        ids.sort_unstable();
        let distinct = ids.windows(2).all(|w| w[0] != w[1]);
        if meta.index == 0
            || meta.term == 0
            || meta.term > m.term
            || conf.voters.is_empty()
            || !conf.voters_outgoing.is_empty()
            || !conf.learners_next.is_empty()
            || !distinct
            || ids.contains(&raft::INVALID_ID)
            || !ids.contains(&self.my_id)
        {
            return Err((
                "snapshot with a configuration that cannot be restored here",
                format!("index {} term {} conf {conf:?}", meta.index, meta.term),
            ));
        }
        sm.check_snapshot(meta.index, meta.term, &snapshot.data)
            .map_err(|why| {
                // The image it names is not here whole, or does not make
                // a tree: the leader gives it up, and Raft has a new one
                // made and sent.
                if let Some(id) = SnapshotId::decode(&snapshot.data) {
                    let ack = Notice::SnapshotAck {
                        id,
                        received: 0,
                        refused: true,
                    };
                    self.notify(m.from, &ack);
                }
                ("snapshot the state machine cannot install", why)
            })
    }

    /// A notice from `from`, dispatched.
    pub(super) fn on_notice(&mut self, from: u64, notice: Notice, sm: &mut dyn StateMachine<W>) {
        let member =
            self.membership.contains(from) || self.node.conf_state().voters.contains(&from);
        match notice {
            // Discovery is open to anyone that names this ensemble: a
            // joiner is not a member yet.
            Notice::Discover { me, configured } => self.discovered_by(from, me, configured),
            Notice::DiscoverReply(standing) => self.discovery_reply(from, standing, sm),
            // A member taking its state back may not know the leader of
            // the moment as a member (it applies nothing meanwhile); the
            // answer carries the nonce only the servers it asked know.
            Notice::RestoreAccepted {
                term,
                target,
                nonce,
                membership,
            } => self.restore_accepted(from, term, target, nonce, membership, sm),
            // A snapshot comes from a leader this server may not know as a
            // member yet (its own membership is what it is catching up
            // on), as Raft's messages do; acknowledgements matter only to
            // a leader sending to that server.
            Notice::SnapshotChunk { id, offset, bytes } => {
                self.snapshot_chunk(from, id, offset, &bytes, sm);
            }
            Notice::SnapshotAck {
                id,
                received,
                refused,
            } => self.snapshot_acked(from, id, received, refused),
            _ if !member => self.refuse(from, "notice from a server that is not a member", ""),
            Notice::Forward {
                requester,
                submission,
            } => self.forwarded(from, requester, &submission, sm),
            Notice::Status {
                applied_index,
                applied_zxid,
                report,
            } => self.status_heard(from, applied_index, applied_zxid, &report, sm),
            Notice::Removed { version } => self.told_removed(from, version, sm),
            Notice::HandingOver { to } => self.handing_over(from, to),
            Notice::SteppedDown { term } => self.stepped_down(from, term),
            Notice::ContinueJob { requester, target } => {
                self.continue_job(from, requester, target, sm);
            }
            Notice::Rejoining { nonce } => self.rejoining(from, nonce),
            Notice::StaleProgress { term, last_index } => {
                self.stale_progress(from, term, last_index);
            }
        }
    }
}
