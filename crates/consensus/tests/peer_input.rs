//! No peer message can crash a server: every message raft-rs would panic
//! on is refused before it reaches raft-rs (`driver::guard`), and
//! arbitrary frames after a valid Hello — decoded by the real peer
//! decoder — go through a follower's and a leader's driver without a panic.
//! The same driver input is fuzzed by `fuzz/fuzz_targets/driver_frames.rs`.

mod support;

use consensus::driver::{Notice, SnapshotId};
use consensus::raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType};
use consensus::wire::{self, Frame};
use proptest::prelude::*;
use support::{Machine, TestDriver, joiner, member, member_compacted, snapshot};

fn message(t: MessageType, from: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = 1;
    m.term = term;
    m
}

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Entry::default()
    }
}

/// The notices the driver sent, decoded.
fn notices(net: &support::Net) -> Vec<(u64, Notice)> {
    net.0
        .borrow()
        .notices
        .iter()
        .filter_map(|(to, bytes)| Notice::decode(bytes).ok().map(|n| (*to, n)))
        .collect()
}

/// A member that lost entries it acknowledged (its disk) gets a heartbeat
/// committing past its log, which raft-rs would panic on
/// ("to_commit 46 is out of range"): refused, and the leader is told its
/// view of this log is stale.
#[test]
fn a_heartbeat_committing_past_the_log_is_refused_and_the_leader_told() {
    let (mut driver, mut sm, net) = member(1, 1);
    let mut m = message(MessageType::MsgHeartbeat, 2, 2);
    m.commit = 46;
    driver.receive(2, m, &mut sm).expect("no failure");
    assert_eq!(driver.node().commit_index(), 2);
    assert!(
        notices(&net).iter().any(|(to, n)| *to == 2
            && matches!(
                n,
                Notice::StaleProgress {
                    term: 2,
                    last_index: 2
                }
            )),
        "{:?}",
        notices(&net)
    );
}

/// raft-rs panics on an append that conflicts with an entry it knows is
/// committed ("entry 2 conflict with committed entry 3").
#[test]
fn an_append_contradicting_committed_entries_is_refused() {
    let (mut driver, mut sm, _net) = member(3, 3);
    let mut m = message(MessageType::MsgAppend, 2, 2);
    m.index = 1;
    m.log_term = 1;
    m.set_entries(vec![entry(2, 2, b"other")].into());
    driver.receive(2, m, &mut sm).expect("no failure");
    assert_eq!(driver.node().last_index(), 4, "the log is unchanged");
}

/// Entries that skip an index would corrupt raft-rs's unstable log (or
/// underflow computing where they start).
#[test]
fn entries_that_do_not_follow_each_other_are_refused() {
    let (mut driver, mut sm, _net) = member(1, 1);
    for entries in [
        vec![entry(3, 2, b"a"), entry(5, 2, b"b")],
        vec![entry(1, 2, b"a")],
        vec![entry(3, 3, b"a")],
        vec![entry(3, 2, b"bad entry")],
    ] {
        let mut m = message(MessageType::MsgAppend, 2, 2);
        m.index = 2;
        m.log_term = 1;
        m.set_entries(entries.into());
        driver.receive(2, m, &mut sm).expect("no failure");
        assert_eq!(driver.node().last_index(), 2);
    }
}

/// raft-rs looks the transferee's progress up with `unwrap`, and starts an
/// election on a MsgTimeoutNow from anyone; a ReadIndex message without
/// its context is indexed at 0.
#[test]
fn local_only_and_malformed_control_messages_are_refused() {
    let (mut driver, mut sm, _net) = member(1, 1);
    let transfer = message(MessageType::MsgTransferLeader, 9, 1);
    driver.receive(9, transfer, &mut sm).expect("no failure");
    let timeout_now = message(MessageType::MsgTimeoutNow, 2, 1);
    driver.receive(2, timeout_now, &mut sm).expect("no failure");
    assert_ne!(driver.node().role(), consensus::Role::Candidate);
    for t in [MessageType::MsgReadIndex, MessageType::MsgReadIndexResp] {
        let m = message(t, 2, 1);
        driver.receive(2, m, &mut sm).expect("no failure");
    }
}

/// Misaddressed messages and messages without a term (which raft-rs would
/// take for local ones) change nothing. A server outside this one's
/// membership is heard: it may be a member added while this server was
/// away, leading now.
#[test]
fn misaddressed_and_termless_messages_are_refused_strangers_heard() {
    let (mut driver, mut sm, _net) = member(1, 1);
    let mut append = message(MessageType::MsgAppend, 2, 5);
    append.index = 2;
    append.log_term = 1;
    append.commit = 2;
    driver
        .receive(3, append.clone(), &mut sm)
        .expect("no failure");
    assert_eq!(
        driver.node().term(),
        1,
        "another peer's message on 3's connection"
    );
    let mut termless = append.clone();
    termless.term = 0;
    driver.receive(2, termless, &mut sm).expect("no failure");
    assert_eq!(driver.node().leader(), None);
    append.from = 9;
    driver.receive(9, append, &mut sm).expect("no failure");
    assert_eq!(driver.node().term(), 5, "a newer leader is followed");
    assert_eq!(driver.node().leader(), Some(9));
}

/// A server with no state takes nothing from a leader before discovery
/// shows it a member, not even after a heartbeat with commit 0: a leader
/// elected just now sends that to a member it has not heard from, which
/// may be one that lost its store and must restore (and not vote) until it
/// holds what it acknowledged before. Taken as new, it installed the
/// leader's snapshot and became a voting member at once (found by the e2e
/// when the leader lost its volume just before its successor's election).
#[test]
fn a_joiner_takes_nothing_from_a_leader_before_discovery() {
    use consensus::driver::StandingKind;
    let (mut driver, mut sm, _net) = joiner();
    assert_eq!(driver.standing(), StandingKind::Joining);
    let mut heartbeat = message(MessageType::MsgHeartbeat, 2, 7);
    heartbeat.commit = 0;
    driver.receive(2, heartbeat, &mut sm).expect("no failure");
    let conf = ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    };
    driver
        .receive(2, snapshot(2, 4446, 7, conf, b"image"), &mut sm)
        .expect("no failure");
    let mut append = message(MessageType::MsgAppend, 2, 7);
    append.index = 4446;
    append.log_term = 7;
    append.entries = vec![entry(4447, 7, b"txn")].into();
    driver.receive(2, append, &mut sm).expect("no failure");
    assert_eq!(driver.standing(), StandingKind::Joining);
    assert_eq!(driver.node().commit_index(), 0);
}

/// A snapshot whose configuration leaves this server out, is joint, has no
/// voter, or whose data the state machine cannot install is refused (raft-rs
/// would restore the first kinds, and the last would stop the server when
/// it is installed).
#[test]
fn snapshots_that_cannot_be_restored_here_are_refused() {
    let (mut driver, mut sm, _net) = member(1, 1);
    driver.flush(&mut sm).expect("applies what is committed");
    let applied = driver.applied_index();
    let conf = |voters: Vec<u64>, learners: Vec<u64>| ConfState {
        voters,
        learners,
        ..ConfState::default()
    };
    let mut joint = conf(vec![1, 2, 3], vec![]);
    joint.voters_outgoing = vec![1, 2];
    for (conf, data) in [
        (conf(vec![2, 3], vec![]), &b"image"[..]),
        (conf(vec![], vec![1]), b"image"),
        (conf(vec![1, 2, 3], vec![1]), b"image"),
        (joint, b"image"),
        (conf(vec![1, 2, 3], vec![]), b"garbage"),
    ] {
        let m = snapshot(2, 50, 2, conf, data);
        driver.receive(2, m, &mut sm).expect("no failure");
        assert_eq!(driver.applied_index(), applied, "nothing was installed");
    }
    let good = snapshot(2, 50, 2, conf(vec![1, 2, 3], vec![]), b"image");
    driver.receive(2, good, &mut sm).expect("no failure");
    assert_eq!(driver.applied_index(), 50, "a good one is installed");
}

/// Server 1 as the leader of term 2 of its 3 members.
fn leader() -> (TestDriver, Machine, support::Net) {
    let (mut driver, mut sm, net) = member(1, 1);
    elect(&mut driver, &mut sm);
    (driver, sm, net)
}

/// Server 1 elected with server 2's votes.
fn elect(driver: &mut TestDriver, sm: &mut Machine) {
    for _ in 0..100 {
        driver.tick(0, sm).expect("tick");
        if driver.node().role() == consensus::Role::PreCandidate {
            break;
        }
    }
    let term = driver.node().term();
    let mut grant = message(MessageType::MsgRequestPreVoteResponse, 2, term + 1);
    grant.reject = false;
    driver.receive(2, grant, sm).expect("pre-vote");
    let mut vote = message(MessageType::MsgRequestVoteResponse, 2, term + 1);
    vote.reject = false;
    driver.receive(2, vote, sm).expect("vote");
    assert!(driver.is_leader(), "{:?}", driver.node().role());
}

/// The index of the last append the leader sent to `to`.
fn last_append_to(net: &support::Net, to: u64) -> u64 {
    net.0
        .borrow()
        .raft
        .iter()
        .rev()
        .find(|m| m.to == to && m.get_msg_type() == MessageType::MsgAppend)
        .map(|m| m.index)
        .unwrap_or_else(|| panic!("an append to server {to}"))
}

/// Server `from`'s rejection of the last append sent to it: its log ends
/// at `hint`, of `log_term`.
fn rejection(net: &support::Net, from: u64, term: u64, hint: u64, log_term: u64) -> Message {
    let mut reject = message(MessageType::MsgAppendResponse, from, term);
    reject.reject = true;
    reject.index = last_append_to(net, from);
    reject.reject_hint = hint;
    reject.log_term = log_term;
    reject
}

/// The image whose first chunk went to `to`.
fn image_sent_to(net: &support::Net, to: u64) -> SnapshotId {
    notices(net)
        .into_iter()
        .find_map(|(t, n)| match n {
            Notice::SnapshotChunk { id, .. } if t == to => Some(id),
            _ => None,
        })
        .unwrap_or_else(|| panic!("an image on its way to server {to}"))
}

/// Server 1 leads and its log is compacted through 20; server 2's ends at
/// index 1, behind it: server 2 rejects the probe, and an image is made
/// (`sm.image_bytes` of it) and sent to it.
fn leader_sending_an_image_to_server_2() -> (TestDriver, Machine, support::Net, SnapshotId) {
    let (mut driver, mut sm, net) = member_compacted(20, 22, 22);
    sm.image_bytes = 100;
    elect(&mut driver, &mut sm);
    let term = driver.node().term();
    let reject = rejection(&net, 2, term, 1, 1);
    driver.receive(2, reject, &mut sm).expect("no failure");
    for _ in 0..3 {
        driver.tick(0, &mut sm).expect("tick");
    }
    let id = image_sent_to(&net, 2);
    (driver, sm, net, id)
}

/// A follower that refuses an image (its disk is full, the transfer was
/// damaged) is not sent one made at once, again and again: raft-rs asks
/// for a new image at its next contact with the follower, and the next is
/// made an election timeout later.
#[test]
fn a_refused_image_is_made_again_only_after_an_election_timeout() {
    let (mut driver, mut sm, _net, id) = leader_sending_an_image_to_server_2();
    let term = driver.node().term();
    assert_eq!(sm.makes, vec![driver.applied_index()], "one image made");
    let refusal = Notice::SnapshotAck {
        id,
        received: 0,
        refused: true,
    };
    driver
        .notice(2, &refusal.encode(), &mut sm)
        .expect("no failure");
    let heard = |driver: &mut TestDriver, sm: &mut Machine| {
        let m = message(MessageType::MsgHeartbeatResponse, 2, term);
        driver.receive(2, m, sm).expect("no failure");
        driver.tick(0, sm).expect("tick");
    };
    // Raft probes server 2 at once and wants an image for it: none yet.
    for _ in 0..9 {
        heard(&mut driver, &mut sm);
    }
    assert_eq!(sm.makes.len(), 1, "no image made right after a refusal");
    for _ in 0..3 {
        heard(&mut driver, &mut sm);
    }
    assert_eq!(sm.makes.len(), 2, "a new image after an election timeout");
}

/// A member added while an image is on its way to another follower needs
/// a newer image (one whose membership names it): the one being sent is
/// said to be in use when the new one is made, so the state machine keeps
/// it and its transfer goes on instead of starting over.
#[test]
fn an_image_being_sent_is_in_use_when_a_newer_one_is_made() {
    use consensus::driver::MembershipOp;
    use consensus::membership::{Member, MemberRole};
    let (mut driver, mut sm, net, sent) = leader_sending_an_image_to_server_2();
    let term = driver.node().term();
    assert_eq!(sm.in_use, vec![Vec::new()]);

    // Server 4 is added (committed with server 3's acknowledgement), and
    // is behind everything.
    let version = driver.membership().version;
    let add = MembershipOp::Add {
        member: Member {
            id: 4,
            host: "s4".into(),
            quorum_port: 2888,
            election_port: 3888,
            role: MemberRole::Participant,
            client: None,
        },
        expected_version: version,
    };
    driver.membership_request(add, 1, &mut sm);
    for _ in 0..20 {
        driver.tick(0, &mut sm).expect("tick");
        let persisted = driver.log_writer().last_persist;
        driver.persisted(persisted, &mut sm).expect("persisted");
        let last = net
            .0
            .borrow()
            .raft
            .iter()
            .filter(|m| m.to == 3 && m.get_msg_type() == MessageType::MsgAppend)
            .map(|m| m.index + m.entries.len() as u64)
            .max()
            .unwrap_or(0);
        let mut ack = message(MessageType::MsgAppendResponse, 3, term);
        ack.index = last;
        driver.receive(3, ack, &mut sm).expect("no failure");
        if driver.membership().contains(4) {
            break;
        }
    }
    assert!(driver.membership().contains(4), "server 4 added");
    let reject = rejection(&net, 4, term, 0, 0);
    driver.receive(4, reject, &mut sm).expect("no failure");
    for _ in 0..3 {
        driver.tick(0, &mut sm).expect("tick");
    }
    assert_eq!(
        sm.makes.len(),
        2,
        "a newer image for server 4: {:?}",
        sm.makes
    );
    assert_eq!(sm.in_use[1], vec![sent], "made while server 2's is in use");
}

/// Conclave never asks for a snapshot (raft-rs's `request_snapshot`): a
/// peer's request for one newer than the leader's applied state would have
/// images made, found too old and made again, every tick.
#[test]
fn a_peers_snapshot_request_is_refused() {
    let (mut driver, mut sm, net) = member_compacted(20, 22, 22);
    sm.image_bytes = 100;
    elect(&mut driver, &mut sm);
    let term = driver.node().term();
    let probe = last_append_to(&net, 3);
    let mut request = rejection(&net, 3, term, probe, 0);
    request.request_snapshot = driver.applied_index() + 5;
    driver.receive(3, request, &mut sm).expect("no failure");
    for _ in 0..30 {
        let m = message(MessageType::MsgHeartbeatResponse, 3, term);
        driver.receive(3, m, &mut sm).expect("no failure");
        driver.tick(0, &mut sm).expect("tick");
    }
    assert_eq!(sm.makes, Vec::<u64>::new(), "no image made");
}

fn message_type() -> impl Strategy<Value = MessageType> {
    use MessageType::*;
    prop::sample::select(vec![
        MsgAppend,
        MsgAppendResponse,
        MsgRequestVote,
        MsgRequestVoteResponse,
        MsgSnapshot,
        MsgHeartbeat,
        MsgHeartbeatResponse,
        MsgTransferLeader,
        MsgTimeoutNow,
        MsgReadIndex,
        MsgReadIndexResp,
        MsgRequestPreVote,
        MsgRequestPreVoteResponse,
    ])
}

prop_compose! {
    /// A Raft message as a confused or broken peer might send it: any
    /// type, small numbers so that they collide with the log's.
    fn any_message()(
        t in message_type(),
        from in 0u64..5,
        to in 0u64..3,
        term in 0u64..6,
        log_term in 0u64..6,
        index in 0u64..8,
        commit in 0u64..60,
        reject in any::<bool>(),
        reject_hint in 0u64..8,
        entries in prop::collection::vec((0u64..8, 0u64..6, 0u8..3, prop::collection::vec(any::<u8>(), 0..4)), 0..4),
        snap in prop::option::of((0u64..60, 0u64..6, prop::collection::vec(0u64..5, 0..4), prop::collection::vec(0u64..5, 0..2), any::<bool>())),
    ) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = from;
        m.to = to;
        m.term = term;
        m.log_term = log_term;
        m.index = index;
        m.commit = commit;
        m.reject = reject;
        m.reject_hint = reject_hint;
        m.set_entries(entries.into_iter().map(|(index, term, kind, data)| {
            let mut e = entry(index, term, &data);
            e.set_entry_type(match kind { 0 => EntryType::EntryNormal, 1 => EntryType::EntryConfChange, _ => EntryType::EntryConfChangeV2 });
            e
        }).collect::<Vec<_>>().into());
        if let Some((index, term, voters, learners, image)) = snap {
            let conf = ConfState { voters, learners, ..ConfState::default() };
            let data: &[u8] = if image { b"image" } else { b"junk" };
            m.set_snapshot(snapshot(from, index, term, conf, data).take_snapshot());
        }
        m
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever a peer sends a follower, it does not panic.
    #[test]
    fn no_message_crashes_a_follower(messages in prop::collection::vec(any_message(), 1..20)) {
        let (mut driver, mut sm, _net) = member(3, 2);
        for m in messages {
            let from = m.from;
            let _ = driver.receive(from, m, &mut sm);
            let _ = driver.tick(0, &mut sm);
        }
    }

    /// Nor a leader.
    #[test]
    fn no_message_crashes_a_leader(messages in prop::collection::vec(any_message(), 1..20)) {
        let (mut driver, mut sm, _net) = leader();
        for m in messages {
            let from = m.from;
            let _ = driver.receive(from, m, &mut sm);
            let _ = driver.tick(0, &mut sm);
        }
    }

    /// Arbitrary bytes after a valid Hello: whatever decodes as a frame
    /// (the real peer decoder) goes to the driver as it would from a
    /// connection, and nothing panics.
    #[test]
    fn no_frame_crashes_a_server(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..10)) {
        let (mut driver, mut sm, _net) = member(3, 2);
        for bytes in frames {
            match wire::decode_frame(&bytes) {
                Ok(Frame::Raft(m)) => {
                    let _ = driver.receive(2, *m, &mut sm);
                }
                Ok(Frame::Service(payload)) => {
                    let _ = driver.notice(2, &payload, &mut sm);
                }
                _ => {}
            }
        }
    }

    /// Arbitrary notices decode or are refused.
    #[test]
    fn no_notice_crashes_a_leader(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..10)) {
        let (mut driver, mut sm, _net) = leader();
        for payload in payloads {
            let _ = driver.notice(2, &payload, &mut sm);
            let _ = driver.notice(9, &payload, &mut sm);
        }
    }
}
