//! The peer encoding: every message a peer may send survives a round trip;
//! no input makes the decoder panic or allocate beyond what it was given.

use consensus::raft::eraftpb::{
    ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use consensus::wire::{Frame, Hello, WireError, decode_frame, encode_frame, frame_len};
use proptest::prelude::*;

const PEER_TYPES: [MessageType; 13] = [
    MessageType::MsgAppend,
    MessageType::MsgAppendResponse,
    MessageType::MsgRequestVote,
    MessageType::MsgRequestVoteResponse,
    MessageType::MsgSnapshot,
    MessageType::MsgHeartbeat,
    MessageType::MsgHeartbeatResponse,
    MessageType::MsgTransferLeader,
    MessageType::MsgTimeoutNow,
    MessageType::MsgReadIndex,
    MessageType::MsgReadIndexResp,
    MessageType::MsgRequestPreVote,
    MessageType::MsgRequestPreVoteResponse,
];

fn entry() -> impl Strategy<Value = Entry> {
    (
        0..3u8,
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(t, term, index, data, context)| {
            let mut e = Entry::default();
            e.set_entry_type(match t {
                0 => EntryType::EntryNormal,
                1 => EntryType::EntryConfChange,
                _ => EntryType::EntryConfChangeV2,
            });
            e.term = term;
            e.index = index;
            e.data = data.into();
            e.context = context.into();
            e
        })
}

fn snapshot() -> impl Strategy<Value = Option<Snapshot>> {
    proptest::option::of(
        (
            any::<u64>(),
            1..u64::MAX,
            proptest::collection::vec(any::<u64>(), 0..5),
            proptest::collection::vec(any::<u64>(), 0..3),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(index, term, voters, learners, auto_leave, data)| {
                let cs = ConfState {
                    voters,
                    learners,
                    auto_leave,
                    ..ConfState::default()
                };
                let mut meta = SnapshotMetadata {
                    index,
                    term,
                    ..SnapshotMetadata::default()
                };
                meta.set_conf_state(cs);
                let mut s = Snapshot::default();
                s.set_metadata(meta);
                s.data = data.into();
                s
            }),
    )
}

fn message() -> impl Strategy<Value = Message> {
    (
        0..PEER_TYPES.len(),
        proptest::collection::vec(any::<u64>(), 9),
        any::<bool>(),
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..16),
        proptest::collection::vec(entry(), 0..4),
        snapshot(),
    )
        .prop_map(|(t, n, reject, priority, context, entries, snapshot)| {
            let mut m = Message::default();
            m.set_msg_type(PEER_TYPES[t]);
            m.to = n[0];
            m.from = n[1];
            m.term = n[2];
            m.log_term = n[3];
            m.index = n[4];
            m.commit = n[5];
            m.commit_term = n[6];
            m.request_snapshot = n[7];
            m.reject_hint = n[8];
            m.reject = reject;
            m.priority = priority;
            m.context = context.into();
            m.set_entries(entries.into());
            if let Some(s) = snapshot {
                m.set_snapshot(s);
            }
            m
        })
}

fn framed(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(frame, &mut out);
    let len = frame_len([out[0], out[1], out[2], out[3]], usize::MAX).expect("a length");
    assert_eq!(len, out.len() - 4);
    out.split_off(4)
}

proptest! {
    #[test]
    fn messages_round_trip(m in message()) {
        let frame = Frame::Raft(Box::new(m));
        prop_assert_eq!(decode_frame(&framed(&frame)), Ok(frame));
    }

    #[test]
    fn hellos_round_trip(ensemble in "[a-z0-9.-]{0,64}", from in any::<u64>(), to in any::<u64>()) {
        let frame = Frame::Hello(Hello { ensemble, from, to });
        prop_assert_eq!(decode_frame(&framed(&frame)), Ok(frame));
    }

    #[test]
    fn service_payloads_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..256)) {
        let frame = Frame::Service(payload);
        prop_assert_eq!(decode_frame(&framed(&frame)), Ok(frame));
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_frame(&bytes);
    }

    #[test]
    fn every_truncation_of_a_message_fails_cleanly(m in message(), cut in any::<prop::sample::Index>()) {
        let payload = framed(&Frame::Raft(Box::new(m)));
        let cut = cut.index(payload.len());
        prop_assert!(decode_frame(&payload[..cut]).is_err());
    }
}

#[test]
fn local_message_types_are_refused() {
    for t in [
        MessageType::MsgHup,
        MessageType::MsgBeat,
        MessageType::MsgPropose,
        MessageType::MsgUnreachable,
        MessageType::MsgSnapStatus,
        MessageType::MsgCheckQuorum,
    ] {
        let mut m = Message::default();
        m.set_msg_type(t);
        let payload = framed(&Frame::Raft(Box::new(m)));
        assert_eq!(decode_frame(&payload), Err(WireError::LocalMessage(t)));
    }
}

#[test]
fn a_huge_entry_count_is_refused_before_allocating() {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgAppend);
    let mut payload = framed(&Frame::Raft(Box::new(m)));
    // The entry count sits right after the fixed fields and the context.
    let at = 1 + 1 + 9 * 8 + 1 + 8 + 4;
    payload[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode_frame(&payload),
        Err(WireError::Truncated {
            what: "entries",
            ..
        })
    ));
}

#[test]
fn oversized_and_empty_frames_are_refused() {
    assert_eq!(
        frame_len(1000u32.to_be_bytes(), 999),
        Err(WireError::FrameTooLarge {
            len: 1000,
            max: 999
        })
    );
    assert!(frame_len([0; 4], 10).is_err());
}

#[test]
fn a_hello_from_something_else_is_refused() {
    let mut payload = framed(&Frame::Hello(Hello {
        ensemble: "e".into(),
        from: 1,
        to: 2,
    }));
    payload[1] = b'X';
    assert_eq!(decode_frame(&payload), Err(WireError::BadMagic));
}
