//! Property tests of the wire codec: every record, request, response,
//! handshake and frame round-trips (encode then decode gives the value back);
//! no decoder panics on arbitrary or mutated bytes; every strict prefix of a
//! request is refused; and a string, buffer or vector length that claims more
//! than the bytes present is refused before anything is allocated for it.
//!
//! Strings are generated from the Basic Multilingual Plane: like ZooKeeper,
//! the codec writes a character beyond U+FFFF as two CESU-8 surrogates and
//! reads those back as U+FFFD, which a separate property pins down. Null
//! ustrings and vectors are not generated: they decode as "" and empty.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use proto::frame::{self, FrameError};
use proto::jute::{self, Jute, Reader, from_slice, to_vec};
use proto::*;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Builds a record from one strategy per field:
/// `arb!(DeleteRequest { path: arb_string(), version: any::<i32>() })`.
macro_rules! arb {
    ($ty:ident { $($field:ident : $strategy:expr),* $(,)? }) => {
        ($($strategy,)*).prop_map(|($($field,)*)| $ty { $($field),* })
    };
}

fn bmp_char() -> impl Strategy<Value = char> {
    proptest::char::ranges(Cow::Owned(vec!['\0'..='\u{d7ff}', '\u{e000}'..='\u{ffff}']))
}

/// A non-null ustring: mostly path-like, sometimes any BMP text.
fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(/[a-z0-9._-]{1,6}){0,3}",
        1 => vec(bmp_char(), 0..12).prop_map(String::from_iter),
    ]
}

fn arb_strings() -> impl Strategy<Value = Vec<String>> {
    vec(arb_string(), 0..5)
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..40)
}

/// A nullable buffer (null survives a round trip, unlike a null string).
fn arb_data() -> impl Strategy<Value = Option<Vec<u8>>> {
    option::of(arb_bytes())
}

prop_compose! {
    fn arb_stat()(
        czxid in any::<i64>(),
        mzxid in any::<i64>(),
        ctime in any::<i64>(),
        mtime in any::<i64>(),
        version in any::<i32>(),
        cversion in any::<i32>(),
        aversion in any::<i32>(),
        ephemeral_owner in any::<i64>(),
        data_length in any::<i32>(),
        num_children in any::<i32>(),
        pzxid in any::<i64>(),
    ) -> Stat {
        Stat {
            czxid,
            mzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
            ephemeral_owner,
            data_length,
            num_children,
            pzxid,
        }
    }
}

prop_compose! {
    fn arb_id()(
        scheme in prop_oneof![
            Just("world".to_owned()),
            Just("digest".to_owned()),
            Just("ip".to_owned()),
            arb_string(),
        ],
        id in arb_string(),
    ) -> Id {
        Id { scheme, id }
    }
}

prop_compose! {
    fn arb_acl()(perms in prop_oneof![0..=perms::ALL, any::<i32>()], id in arb_id()) -> Acl {
        Acl { perms, id }
    }
}

fn arb_acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(arb_acl(), 0..4)
}

fn arb_error_code() -> impl Strategy<Value = ErrorCode> {
    select(ErrorCode::ALL)
}

fn arb_create() -> impl Strategy<Value = CreateRequest> {
    arb!(CreateRequest {
        path: arb_string(),
        data: arb_data(),
        acl: arb_acls(),
        flags: any::<i32>()
    })
}

fn arb_create_ttl() -> impl Strategy<Value = CreateTtlRequest> {
    arb!(CreateTtlRequest {
        path: arb_string(),
        data: arb_data(),
        acl: arb_acls(),
        flags: any::<i32>(),
        ttl: any::<i64>(),
    })
}

fn arb_delete() -> impl Strategy<Value = DeleteRequest> {
    arb!(DeleteRequest {
        path: arb_string(),
        version: any::<i32>()
    })
}

fn arb_path_watch() -> impl Strategy<Value = PathWatchRequest> {
    arb!(PathWatchRequest {
        path: arb_string(),
        watch: any::<bool>()
    })
}

fn arb_path() -> impl Strategy<Value = PathRequest> {
    arb_string().prop_map(|path| PathRequest { path })
}

fn arb_set_data() -> impl Strategy<Value = SetDataRequest> {
    arb!(SetDataRequest {
        path: arb_string(),
        data: arb_data(),
        version: any::<i32>()
    })
}

fn arb_set_acl() -> impl Strategy<Value = SetAclRequest> {
    arb!(SetAclRequest {
        path: arb_string(),
        acl: arb_acls(),
        version: any::<i32>()
    })
}

fn arb_check() -> impl Strategy<Value = CheckVersionRequest> {
    arb!(CheckVersionRequest {
        path: arb_string(),
        version: any::<i32>()
    })
}

fn arb_reconfig() -> impl Strategy<Value = ReconfigRequest> {
    arb!(ReconfigRequest {
        joining_servers: arb_string(),
        leaving_servers: arb_string(),
        new_members: arb_string(),
        cur_config_id: any::<i64>(),
    })
}

fn arb_watches() -> impl Strategy<Value = WatchesRequest> {
    arb!(WatchesRequest {
        path: arb_string(),
        watcher_type: any::<i32>()
    })
}

fn arb_delete_container() -> impl Strategy<Value = DeleteContainerRequest> {
    arb_data().prop_map(|path| DeleteContainerRequest { path })
}

fn arb_auth() -> impl Strategy<Value = AuthPacket> {
    arb!(AuthPacket {
        auth_type: any::<i32>(),
        scheme: arb_string(),
        auth: arb_data()
    })
}

fn arb_set_watches() -> impl Strategy<Value = SetWatches> {
    arb!(SetWatches {
        relative_zxid: any::<i64>(),
        data_watches: arb_strings(),
        exist_watches: arb_strings(),
        child_watches: arb_strings(),
    })
}

fn arb_set_watches2() -> impl Strategy<Value = SetWatches2> {
    arb!(SetWatches2 {
        relative_zxid: any::<i64>(),
        data_watches: arb_strings(),
        exist_watches: arb_strings(),
        child_watches: arb_strings(),
        persistent_watches: arb_strings(),
        persistent_recursive_watches: arb_strings(),
    })
}

fn arb_sasl_request() -> impl Strategy<Value = SaslRequest> {
    arb_data().prop_map(|token| SaslRequest { token })
}

fn arb_add_watch() -> impl Strategy<Value = AddWatchRequest> {
    arb!(AddWatchRequest {
        path: arb_string(),
        mode: any::<i32>()
    })
}

fn arb_client_info() -> impl Strategy<Value = ClientInfo> {
    arb!(ClientInfo {
        auth_scheme: arb_string(),
        user: arb_string()
    })
}

fn arb_multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (
            select(&[OpCode::Create, OpCode::Create2, OpCode::CreateContainer][..]),
            arb_create()
        )
            .prop_map(|(op, request)| MultiOp::Create { op, request }),
        arb_create_ttl().prop_map(MultiOp::CreateTtl),
        arb_delete().prop_map(MultiOp::Delete),
        arb_set_data().prop_map(MultiOp::SetData),
        arb_check().prop_map(MultiOp::Check),
    ]
}

fn arb_multi_read_op() -> impl Strategy<Value = MultiReadOp> {
    prop_oneof![
        arb_path_watch().prop_map(MultiReadOp::GetChildren),
        arb_path_watch().prop_map(MultiReadOp::GetData),
    ]
}

/// Every `Request` variant.
fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        arb_create().prop_map(Request::Create),
        arb_create().prop_map(Request::Create2),
        arb_create().prop_map(Request::CreateContainer),
        arb_create_ttl().prop_map(Request::CreateTtl),
        arb_delete().prop_map(Request::Delete),
        arb_path_watch().prop_map(Request::Exists),
        arb_path_watch().prop_map(Request::GetData),
        arb_set_data().prop_map(Request::SetData),
        arb_path().prop_map(Request::GetAcl),
        arb_set_acl().prop_map(Request::SetAcl),
        arb_path_watch().prop_map(Request::GetChildren),
        arb_path_watch().prop_map(Request::GetChildren2),
        arb_path().prop_map(Request::Sync),
        Just(Request::Ping),
        arb_check().prop_map(Request::Check),
        vec(arb_multi_op(), 0..5).prop_map(Request::Multi),
        vec(arb_multi_read_op(), 0..5).prop_map(Request::MultiRead),
        arb_reconfig().prop_map(Request::Reconfig),
        arb_watches().prop_map(Request::CheckWatches),
        arb_watches().prop_map(Request::RemoveWatches),
        // Its body is the raw rest of the frame: never null once decoded.
        arb_bytes()
            .prop_map(|path| Request::DeleteContainer(DeleteContainerRequest { path: Some(path) })),
        arb_auth().prop_map(Request::Auth),
        arb_set_watches().prop_map(Request::SetWatches),
        arb_set_watches2().prop_map(Request::SetWatches2),
        arb_sasl_request().prop_map(Request::Sasl),
        arb_path().prop_map(Request::GetEphemerals),
        arb_path().prop_map(Request::GetAllChildrenNumber),
        arb_add_watch().prop_map(Request::AddWatch),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
    ]
}

fn arb_multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        arb_string().prop_map(|path| MultiResult::Create { path }),
        (arb_string(), arb_stat()).prop_map(|(path, stat)| MultiResult::Create2 { path, stat }),
        Just(MultiResult::Delete),
        arb_stat().prop_map(|stat| MultiResult::SetData { stat }),
        Just(MultiResult::Check),
        arb_strings().prop_map(|children| MultiResult::GetChildren { children }),
        (arb_data(), arb_stat()).prop_map(|(data, stat)| MultiResult::GetData { data, stat }),
        arb_error_code().prop_map(MultiResult::Error),
    ]
}

/// A response body with an op code whose reply it can be.
fn arb_response() -> impl Strategy<Value = (OpCode, Response)> {
    let ops = |ops: &'static [OpCode]| select(ops);
    prop_oneof![
        ops(&[
            OpCode::Delete,
            OpCode::Ping,
            OpCode::Check,
            OpCode::SetWatches,
            OpCode::SetWatches2,
            OpCode::CheckWatches,
            OpCode::RemoveWatches,
            OpCode::Auth,
            OpCode::CloseSession,
        ])
        .prop_map(|op| (op, Response::Empty)),
        arb_string().prop_map(|path| (OpCode::Create, Response::Create(CreateResponse { path }))),
        (
            ops(&[OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl]),
            arb_string(),
            arb_stat()
        )
            .prop_map(|(op, path, stat)| (op, Response::Create2(Create2Response { path, stat }))),
        (
            ops(&[OpCode::Exists, OpCode::SetData, OpCode::SetAcl]),
            arb_stat()
        )
            .prop_map(|(op, stat)| (op, Response::Stat(StatResponse { stat }))),
        (
            ops(&[OpCode::GetData, OpCode::Reconfig]),
            arb_data(),
            arb_stat()
        )
            .prop_map(|(op, data, stat)| (op, Response::GetData(GetDataResponse { data, stat }))),
        (arb_acls(), arb_stat()).prop_map(|(acl, stat)| (
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse { acl, stat })
        )),
        arb_strings().prop_map(|children| {
            (
                OpCode::GetChildren,
                Response::GetChildren(GetChildrenResponse { children }),
            )
        }),
        (arb_strings(), arb_stat()).prop_map(|(children, stat)| {
            (
                OpCode::GetChildren2,
                Response::GetChildren2(GetChildren2Response { children, stat }),
            )
        }),
        arb_string().prop_map(|path| (OpCode::Sync, Response::Sync(PathResponse { path }))),
        (
            ops(&[OpCode::Multi, OpCode::MultiRead]),
            vec(arb_multi_result(), 0..6)
        )
            .prop_map(|(op, results)| (op, Response::Multi(results))),
        arb_strings().prop_map(|ephemerals| {
            (
                OpCode::GetEphemerals,
                Response::GetEphemerals(GetEphemeralsResponse { ephemerals }),
            )
        }),
        any::<i32>().prop_map(|total_number| {
            (
                OpCode::GetAllChildrenNumber,
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
            )
        }),
        any::<i32>().prop_map(|err| (OpCode::AddWatch, Response::AddWatch(ErrorResponse { err }))),
        vec(arb_client_info(), 0..4).prop_map(|client_info| {
            (
                OpCode::WhoAmI,
                Response::WhoAmI(WhoAmIResponse { client_info }),
            )
        }),
        arb_data().prop_map(|token| (OpCode::Sasl, Response::Sasl(SaslResponse { token }))),
    ]
}

fn arb_connect_request() -> impl Strategy<Value = ConnectRequest> {
    arb!(ConnectRequest {
        protocol_version: any::<i32>(),
        last_zxid_seen: any::<i64>(),
        timeout_ms: any::<i32>(),
        session_id: any::<i64>(),
        password: prop_oneof![vec(any::<u8>(), PASSWORD_LEN), arb_bytes()],
        read_only: option::of(any::<bool>()),
    })
}

fn arb_connect_response() -> impl Strategy<Value = ConnectResponse> {
    arb!(ConnectResponse {
        protocol_version: any::<i32>(),
        timeout_ms: any::<i32>(),
        session_id: any::<i64>(),
        password: prop_oneof![vec(any::<u8>(), PASSWORD_LEN), arb_bytes()],
        read_only: option::of(any::<bool>()),
    })
}

fn encode_request(xid: i32, request: &Request) -> Vec<u8> {
    let mut buf = Vec::new();
    request.encode(xid, &mut buf);
    buf
}

/// Runs every decoder of the crate over `bytes`; none may panic.
fn decode_everything(bytes: &[u8]) {
    let _ = Request::decode(bytes);
    let _ = ConnectRequest::decode(bytes);
    let _ = ConnectResponse::decode(bytes);
    for op in OpCode::ALL {
        let _ = Response::decode(*op, bytes);
    }
    let _ = frame::decode_frame(bytes, DEFAULT_MAX_BUFFER);
    let _ = frame::decode_frame(bytes, 0);
    let _ = frame::decode_frame(bytes, usize::MAX);
    let _ = from_slice::<ReplyHeader>(bytes);
    let _ = from_slice::<WatcherEvent>(bytes);
    let _ = from_slice::<MultiHeader>(bytes);
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/// One round-trip property per record type of records.rs.
macro_rules! record_round_trips {
    ($($test:ident: $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $test(value in $strategy) {
                    let bytes = to_vec(&value);
                    prop_assert!(bytes.len() >= min_len_of(&value));
                    prop_assert_eq!(decode_like(&value, &bytes)?, value);
                }
            )*
        }
    };
}

/// `Jute::MIN_LEN` of a value's type: the bound used to refuse vector counts
/// must never exceed a real encoding, or valid vectors would be refused.
fn min_len_of<T: Jute>(_: &T) -> usize {
    T::MIN_LEN
}

/// Decodes `bytes` as the type of `like`, requiring every byte be used.
fn decode_like<T: Jute>(_like: &T, bytes: &[u8]) -> Result<T, DecodeError> {
    from_slice(bytes)
}

record_round_trips! {
    stat_round_trips: arb_stat();
    id_round_trips: arb_id();
    acl_round_trips: arb_acl();
    request_header_round_trips: arb!(RequestHeader { xid: any::<i32>(), op: any::<i32>() });
    reply_header_round_trips:
        arb!(ReplyHeader { xid: any::<i32>(), zxid: any::<i64>(), err: any::<i32>() });
    watcher_event_round_trips:
        arb!(WatcherEvent { event_type: any::<i32>(), state: any::<i32>(), path: arb_string() });
    create_request_round_trips: arb_create();
    create_ttl_request_round_trips: arb_create_ttl();
    delete_request_round_trips: arb_delete();
    path_watch_request_round_trips: arb_path_watch();
    path_request_round_trips: arb_path();
    set_data_request_round_trips: arb_set_data();
    set_acl_request_round_trips: arb_set_acl();
    check_version_request_round_trips: arb_check();
    reconfig_request_round_trips: arb_reconfig();
    watches_request_round_trips: arb_watches();
    delete_container_request_round_trips: arb_delete_container();
    auth_packet_round_trips: arb_auth();
    set_watches_round_trips: arb_set_watches();
    set_watches2_round_trips: arb_set_watches2();
    sasl_request_round_trips: arb_sasl_request();
    add_watch_request_round_trips: arb_add_watch();
    create_response_round_trips: arb_string().prop_map(|path| CreateResponse { path });
    create2_response_round_trips: arb!(Create2Response { path: arb_string(), stat: arb_stat() });
    stat_response_round_trips: arb_stat().prop_map(|stat| StatResponse { stat });
    get_data_response_round_trips: arb!(GetDataResponse { data: arb_data(), stat: arb_stat() });
    get_acl_response_round_trips: arb!(GetAclResponse { acl: arb_acls(), stat: arb_stat() });
    get_children_response_round_trips:
        arb_strings().prop_map(|children| GetChildrenResponse { children });
    get_children2_response_round_trips:
        arb!(GetChildren2Response { children: arb_strings(), stat: arb_stat() });
    path_response_round_trips: arb_string().prop_map(|path| PathResponse { path });
    get_ephemerals_response_round_trips:
        arb_strings().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals });
    get_all_children_number_response_round_trips:
        any::<i32>().prop_map(|total_number| GetAllChildrenNumberResponse { total_number });
    error_response_round_trips: any::<i32>().prop_map(|err| ErrorResponse { err });
    client_info_round_trips: arb_client_info();
    who_am_i_response_round_trips:
        vec(arb_client_info(), 0..4).prop_map(|client_info| WhoAmIResponse { client_info });
    sasl_response_round_trips: arb_data().prop_map(|token| SaslResponse { token });
    multi_header_round_trips:
        arb!(MultiHeader { op: any::<i32>(), done: any::<bool>(), err: any::<i32>() });
    string_vector_round_trips: arb_strings();
    acl_vector_round_trips: arb_acls();
    buffer_round_trips: arb_data();
}

proptest! {
    /// Any Rust string: BMP text is plain UTF-8; a character beyond U+FFFF
    /// is written as two 3-byte surrogates (as ZooKeeper's
    /// `BinaryOutputArchive` does) and read back as two U+FFFD (as
    /// ZooKeeper's `BinaryInputArchive` does).
    #[test]
    fn strings_encode_as_zookeeper_and_read_back_as_zookeeper(s in ".{0,16}") {
        let bytes = to_vec(&s);
        let supplementary = s.chars().filter(|c| u32::from(*c) > 0xffff).count();
        prop_assert_eq!(bytes.len(), 4 + s.len() + 2 * supplementary);
        if supplementary == 0 {
            prop_assert_eq!(&bytes[4..], s.as_bytes());
        }
        let expected: String = s
            .chars()
            .flat_map(|c| {
                if u32::from(c) > 0xffff { vec!['\u{fffd}'; 2] } else { vec![c] }
            })
            .collect();
        prop_assert_eq!(from_slice::<String>(&bytes)?, expected);
    }

    /// Arbitrary bytes as a ustring never fail once the length is right:
    /// invalid UTF-8 becomes U+FFFD, and valid UTF-8 is kept as it is.
    #[test]
    fn any_ustring_bytes_decode_leniently(body in vec(any::<u8>(), 0..32)) {
        let mut bytes = Vec::new();
        jute::write_buffer(&mut bytes, Some(&body));
        let s = from_slice::<String>(&bytes)?;
        match std::str::from_utf8(&body) {
            Ok(valid) => prop_assert_eq!(s, valid),
            Err(_) => prop_assert!(s.contains(char::REPLACEMENT_CHARACTER)),
        }
    }
}

// ---------------------------------------------------------------------------
// Requests, responses, handshake, frames
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn requests_round_trip(xid in any::<i32>(), request in arb_request()) {
        let bytes = encode_request(xid, &request);
        let (header, decoded) = Request::decode(&bytes).unwrap();
        prop_assert_eq!(header, RequestHeader { xid, op: request.op().code() });
        prop_assert_eq!(decoded, request);
    }

    /// Every field is self-delimiting, so a request cut short anywhere is
    /// refused (deleteContainer excepted: its body is "the rest").
    #[test]
    fn truncated_requests_are_refused(
        request in arb_request().prop_filter("raw body", |r| r.op() != OpCode::DeleteContainer),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode_request(1, &request);
        let cut = cut.index(bytes.len());
        prop_assert!(Request::decode(&bytes[..cut]).is_err(), "{request:?} cut at {cut}");
    }

    #[test]
    fn responses_round_trip((op, response) in arb_response()) {
        let mut bytes = Vec::new();
        response.encode(&mut bytes);
        prop_assert_eq!(Response::decode(op, &bytes)?, response);
    }

    #[test]
    fn connect_requests_round_trip(request in arb_connect_request()) {
        let mut bytes = Vec::new();
        request.encode(&mut bytes);
        let expected_len = 4 + 8 + 4 + 8 + 4 + request.password.len()
            + usize::from(request.read_only.is_some());
        prop_assert_eq!(bytes.len(), expected_len);
        prop_assert_eq!(ConnectRequest::decode(&bytes)?, request);
    }

    #[test]
    fn connect_responses_round_trip(response in arb_connect_response()) {
        let mut bytes = Vec::new();
        response.encode(&mut bytes);
        let expected_len = 4 + 4 + 8 + 4 + response.password.len()
            + usize::from(response.read_only.is_some());
        prop_assert_eq!(bytes.len(), expected_len);
        prop_assert_eq!(ConnectResponse::decode(&bytes)?, response);
    }

    /// Frames written back to back are found again one by one, and a buffer
    /// holding only part of the next frame asks for more bytes.
    #[test]
    fn frames_round_trip(payloads in vec(vec(any::<u8>(), 0..64), 1..5)) {
        let mut stream = Vec::new();
        for payload in &payloads {
            frame::encode_frame(&mut stream, |out| out.extend_from_slice(payload));
        }
        let mut rest = &stream[..];
        for payload in &payloads {
            for cut in 0..frame::LENGTH_PREFIX + payload.len() {
                prop_assert_eq!(frame::decode_frame(&rest[..cut], 64), Ok(None));
            }
            let total = frame::decode_frame(rest, 64)?.unwrap();
            prop_assert_eq!(total, frame::LENGTH_PREFIX + payload.len());
            prop_assert_eq!(&rest[frame::LENGTH_PREFIX..total], &payload[..]);
            rest = &rest[total..];
        }
        prop_assert!(rest.is_empty());
    }

    /// The announced length alone decides: too large or negative is an
    /// error as soon as the prefix is there, whatever follows.
    #[test]
    fn frame_lengths_are_judged_from_the_prefix(
        len in any::<i32>(),
        max in 0..2 * DEFAULT_MAX_BUFFER,
        tail in vec(any::<u8>(), 0..16),
    ) {
        let mut buf = len.to_be_bytes().to_vec();
        buf.extend_from_slice(&tail);
        let got = frame::decode_frame(&buf, max);
        match usize::try_from(len) {
            Err(_) => prop_assert_eq!(got, Err(FrameError::NegativeLength(len))),
            Ok(len) if len > max => prop_assert_eq!(got, Err(FrameError::TooLarge { len, max })),
            Ok(len) if tail.len() >= len => prop_assert_eq!(got, Ok(Some(4 + len))),
            Ok(_) => prop_assert_eq!(got, Ok(None)),
        }
    }

    /// Whole reply frames: the header, then the body only on success.
    #[test]
    fn reply_frames_round_trip(
        xid in any::<i32>(),
        zxid in any::<i64>(),
        err in arb_error_code(),
        (op, body) in arb_response(),
    ) {
        let mut buf = Vec::new();
        encode_reply(&mut buf, xid, zxid, err, &body);
        prop_assert_eq!(frame::decode_frame(&buf, usize::MAX)?, Some(buf.len()));
        let mut r = Reader::new(&buf[frame::LENGTH_PREFIX..]);
        prop_assert_eq!(ReplyHeader::decode(&mut r)?, ReplyHeader { xid, zxid, err: err.code() });
        let rest = r.take_rest();
        if err == ErrorCode::Ok {
            prop_assert_eq!(Response::decode(op, rest)?, body);
        } else {
            prop_assert!(rest.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    /// A valid header in front of garbage reaches every body decoder.
    #[test]
    fn garbage_bodies_never_panic(
        xid in any::<i32>(),
        op in select(OpCode::ALL),
        body in vec(any::<u8>(), 0..128),
    ) {
        let mut bytes = to_vec(&RequestHeader { xid, op: op.code() });
        bytes.extend_from_slice(&body);
        decode_everything(&bytes);
        decode_everything(&body);
    }

    /// Valid encodings with a few bytes overwritten, and cut anywhere, get
    /// deep into the decoders (multi headers, vectors, nested records).
    #[test]
    fn mutated_encodings_never_panic(
        request in arb_request(),
        (_, response) in arb_response(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut response_bytes = Vec::new();
        response.encode(&mut response_bytes);
        for mut bytes in [encode_request(3, &request), response_bytes] {
            if bytes.is_empty() {
                continue;
            }
            for (at, byte) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            decode_everything(&bytes);
            decode_everything(&bytes[..cut.index(bytes.len())]);
        }
    }

    /// A length or count larger than what is left of the frame is refused
    /// up front with `Truncated` (never read element by element, never
    /// allocated): strings, buffers, vectors of every element size.
    #[test]
    fn lengths_beyond_the_frame_are_refused_before_allocating(
        tail in vec(any::<u8>(), 0..64),
        excess in 1..=i32::MAX as usize,
    ) {
        let claimed = i32::try_from((tail.len() + excess).min(i32::MAX as usize)).unwrap();
        let mut bytes = claimed.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tail);

        fn refused<T: Jute + std::fmt::Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
            match from_slice::<T>(bytes) {
                Err(DecodeError::Truncated { needed, available, .. }) => {
                    prop_assert!(needed > available);
                    Ok(())
                }
                other => Err(TestCaseError::fail(format!("{other:?}"))),
            }
        }
        refused::<String>(&bytes)?;
        refused::<Option<Vec<u8>>>(&bytes)?;
        refused::<Vec<i32>>(&bytes)?;
        refused::<Vec<i64>>(&bytes)?;
        refused::<Vec<String>>(&bytes)?;
        refused::<Vec<Acl>>(&bytes)?;
        refused::<Vec<ClientInfo>>(&bytes)?;
        refused::<GetChildrenResponse>(&bytes)?;
        refused::<GetAclResponse>(&bytes)?;
        refused::<CreateResponse>(&bytes)?;
        refused::<SaslResponse>(&bytes)?;

        // The same claim inside a request (the create path) and a response
        // (getChildren's list).
        let mut request = to_vec(&RequestHeader { xid: 5, op: OpCode::Create.code() });
        request.extend_from_slice(&bytes);
        let refused_request = matches!(
            Request::decode(&request),
            Err((Some(_), RequestError::Malformed { source: DecodeError::Truncated { .. }, .. }))
        );
        prop_assert!(refused_request);
        let refused_response = matches!(
            Response::decode(OpCode::GetChildren, &bytes),
            Err(DecodeError::Truncated { .. })
        );
        prop_assert!(refused_response);
    }

    /// A vector count that fits the bytes by the element's minimum size but
    /// not by the real elements still fails cleanly.
    #[test]
    fn vector_counts_that_lie_about_their_elements_fail(
        count in 1..64i32,
        filler in vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = count.to_be_bytes().to_vec();
        bytes.extend_from_slice(&filler);
        let _ = from_slice::<Vec<Acl>>(&bytes);
        let _ = from_slice::<Vec<String>>(&bytes);
        let _ = Response::decode(OpCode::WhoAmI, &bytes);
    }
}

/// Like ZooKeeper (`BinaryIndex.done()` is `nelems <= 0`), a negative
/// vector count other than -1 is an empty vector, not an error; negative
/// string and buffer lengths other than -1 are errors.
#[test]
fn negative_lengths_follow_zookeeper() {
    for count in [-1i32, -2, i32::MIN] {
        let bytes = count.to_be_bytes();
        assert_eq!(
            from_slice::<Vec<String>>(&bytes).unwrap(),
            Vec::<String>::new(),
            "{count}"
        );
    }
    for len in [-2i32, i32::MIN] {
        let bytes = len.to_be_bytes();
        assert!(from_slice::<String>(&bytes).is_err(), "{len}");
        assert!(from_slice::<Option<Vec<u8>>>(&bytes).is_err(), "{len}");
    }
}
