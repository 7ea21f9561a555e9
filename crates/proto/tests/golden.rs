//! Golden bytes from Apache ZooKeeper 3.8: every case in
//! `tests/golden/zookeeper-3.8.txt` (written by `tests/golden/GoldenBytes.java`
//! with ZooKeeper's own jute classes) is rebuilt from the Rust types and must
//! encode to exactly ZooKeeper's bytes, and ZooKeeper's bytes must decode back
//! to the Rust value. The `decode.*` cases feed odd input (invalid UTF-8,
//! negative counts, truncation) to both decoders and require the same outcome.
//! Java is not needed at test time: the file is checked in.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use proto::jute::{self, Jute, Reader};
use proto::*;

const GOLDEN: &str = include_str!("golden/zookeeper-3.8.txt");

/// `name -> hex` (or `error`), comments skipped.
fn golden() -> BTreeMap<&'static str, &'static str> {
    let mut cases = BTreeMap::new();
    for line in GOLDEN.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, hex) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(cases.insert(name, hex).is_none(), "duplicate case {name}");
    }
    cases
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts what Rust decodes a case's golden bytes into.
type DecodeCheck = Box<dyn Fn(&[u8])>;

/// One golden case: what Rust encodes, and a check of what Rust decodes
/// ZooKeeper's bytes into.
struct Case {
    name: &'static str,
    /// `None` when Rust cannot express ZooKeeper's value (a null ustring);
    /// then only decoding is compared.
    encoded: Option<Vec<u8>>,
    decodes: DecodeCheck,
}

fn record<T: Jute + PartialEq + Debug + 'static>(name: &'static str, value: T) -> Case {
    Case {
        name,
        encoded: Some(jute::to_vec(&value)),
        decodes: Box::new(move |bytes| {
            assert_eq!(jute::from_slice::<T>(bytes).unwrap(), value, "{name}");
        }),
    }
}

fn request(name: &'static str, xid: i32, request: Request) -> Case {
    let mut encoded = Vec::new();
    request.encode(xid, &mut encoded);
    Case {
        name,
        encoded: Some(encoded),
        decodes: request_decodes(name, xid, request),
    }
}

fn request_decodes(name: &'static str, xid: i32, request: Request) -> DecodeCheck {
    Box::new(move |bytes| {
        let (header, decoded) = Request::decode(bytes).unwrap();
        assert_eq!(
            header,
            RequestHeader {
                xid,
                op: request.op().code()
            },
            "{name}"
        );
        assert_eq!(decoded, request, "{name}");
    })
}

fn response(name: &'static str, op: OpCode, response: Response) -> Case {
    response_lossy(name, op, response.clone(), response)
}

/// A response whose strings do not survive ZooKeeper's own encoding (a
/// character beyond the BMP is written as CESU-8 and read back as U+FFFD).
fn response_lossy(name: &'static str, op: OpCode, sent: Response, read: Response) -> Case {
    let mut encoded = Vec::new();
    sent.encode(&mut encoded);
    Case {
        name,
        encoded: Some(encoded),
        decodes: Box::new(move |bytes| {
            assert_eq!(Response::decode(op, bytes).unwrap(), read, "{name}");
        }),
    }
}

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0002,
        mzxid: 0x1_0000_0003,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_001_234,
        version: 3,
        cversion: -2,
        aversion: 1,
        ephemeral_owner: 0x1234_5678_90ab_cdef,
        data_length: 5,
        num_children: 7,
        pzxid: 0x1_0000_0004,
    }
}

fn stat2() -> Stat {
    Stat {
        czxid: 10,
        mzxid: 11,
        ctime: 12,
        mtime: 13,
        pzxid: 10,
        ..Stat::default()
    }
}

fn acls() -> Vec<Acl> {
    vec![
        Acl::new(perms::ALL, "world", "anyone"),
        Acl::new(
            perms::READ | perms::DELETE,
            "digest",
            "user:pbd4Yz2BIx1SUl1DzRvgzX3gQqQ=",
        ),
    ]
}

fn data(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn passwd() -> Vec<u8> {
    (0xf0..=0xff).collect()
}

fn primitive_cases() -> Vec<Case> {
    let string = |name, s: &str| record(name, s.to_owned());
    vec![
        string("string.ascii", "/zookeeper/quota"),
        string("string.empty", ""),
        string("string.bmp", "/caf\u{e9}/\u{20ac}/\u{4e2d}"),
        string("string.nul", "a\0b"),
        Case {
            name: "string.null",
            encoded: Some({
                let mut out = Vec::new();
                jute::write_ustring(&mut out, None);
                out
            }),
            decodes: Box::new(|bytes| {
                assert_eq!(Reader::new(bytes).read_ustring().unwrap(), None);
            }),
        },
        // ZooKeeper writes each UTF-16 unit on its own (CESU-8) and reads
        // the surrogates back as malformed UTF-8.
        Case {
            name: "string.supplementary",
            encoded: Some(jute::to_vec(&"/x\u{1f600}y".to_owned())),
            decodes: Box::new(|bytes| {
                assert_eq!(
                    jute::from_slice::<String>(bytes).unwrap(),
                    "/x\u{fffd}\u{fffd}y"
                );
            }),
        },
        record("buffer.null", None::<Vec<u8>>),
        record("buffer.empty", Some(Vec::<u8>::new())),
        record("buffer.bytes", Some(vec![0u8, 1, 0xfe, 0xff])),
    ]
}

fn data_record_cases() -> Vec<Case> {
    vec![
        record("stat", stat()),
        record("id", Id::new("ip", "10.0.0.0/8")),
        record("acl", Acl::new(perms::ALL, "world", "anyone")),
        record(
            "client_info",
            ClientInfo {
                auth_scheme: "digest".into(),
                user: "bob".into(),
            },
        ),
        record(
            "request_header",
            RequestHeader {
                xid: 42,
                op: OpCode::GetData.code(),
            },
        ),
        record(
            "reply_header",
            ReplyHeader {
                xid: 42,
                zxid: 0x1_0000_0005,
                err: -101,
            },
        ),
        record(
            "watcher_event",
            WatcherEvent {
                event_type: EventType::NodeDataChanged.code(),
                state: KeeperState::SyncConnected.code(),
                path: "/app/config".into(),
            },
        ),
        record(
            "multi_header",
            MultiHeader {
                op: OpCode::SetData.code(),
                done: false,
                err: -1,
            },
        ),
        record("multi_header.end", MultiHeader::END),
    ]
}

fn connect_cases() -> Vec<Case> {
    let connect_request = |name, read_only| {
        let value = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0x1_0000_0009,
            timeout_ms: 30_000,
            session_id: 0x0100_0000_0000_0abc,
            password: passwd(),
            read_only,
        };
        let mut encoded = Vec::new();
        value.encode(&mut encoded);
        Case {
            name,
            encoded: Some(encoded),
            decodes: Box::new(move |bytes| {
                assert_eq!(ConnectRequest::decode(bytes).unwrap(), value, "{name}");
            }),
        }
    };
    let connect_response = |name, value: ConnectResponse| {
        let mut encoded = Vec::new();
        value.encode(&mut encoded);
        Case {
            name,
            encoded: Some(encoded),
            decodes: Box::new(move |bytes| {
                assert_eq!(ConnectResponse::decode(bytes).unwrap(), value, "{name}");
            }),
        }
    };
    let response = |read_only| ConnectResponse {
        protocol_version: 0,
        timeout_ms: 20_000,
        session_id: 0x0100_0000_0000_0abc,
        password: passwd(),
        read_only,
    };
    vec![
        connect_request("connect_request.old", None),
        connect_request("connect_request.read_only", Some(true)),
        connect_response("connect_response.old", response(None)),
        connect_response("connect_response.read_only", response(Some(false))),
        connect_response("connect_response.expired", ConnectResponse::expired(None)),
    ]
}

fn request_cases() -> Vec<Case> {
    let create = |path: &str, data, acl, flags| CreateRequest {
        path: path.into(),
        data,
        acl,
        flags,
    };
    let path_watch = |path: &str, watch| PathWatchRequest {
        path: path.into(),
        watch,
    };
    let path = |path: &str| PathRequest { path: path.into() };
    vec![
        request(
            "request.create",
            1,
            Request::Create(create("/app/node", data("hello"), acls(), 3)),
        ),
        request(
            "request.create2_null_data",
            2,
            Request::Create2(create("/app/seq-", None, Acl::open_unsafe(), 2)),
        ),
        request(
            "request.create_container",
            3,
            Request::CreateContainer(create("/app/container", Some(vec![]), acls(), 4)),
        ),
        request(
            "request.create_ttl",
            4,
            Request::CreateTtl(CreateTtlRequest {
                path: "/app/ttl".into(),
                data: data("t"),
                acl: acls(),
                flags: 5,
                ttl: 60_000,
            }),
        ),
        request(
            "request.delete",
            5,
            Request::Delete(DeleteRequest {
                path: "/app/node".into(),
                version: -1,
            }),
        ),
        request(
            "request.exists",
            6,
            Request::Exists(path_watch("/app/node", true)),
        ),
        request(
            "request.get_data",
            7,
            Request::GetData(path_watch("/app/node", false)),
        ),
        request(
            "request.set_data",
            8,
            Request::SetData(SetDataRequest {
                path: "/app/node".into(),
                data: data("world"),
                version: 3,
            }),
        ),
        request("request.get_acl", 9, Request::GetAcl(path("/app/node"))),
        request(
            "request.set_acl",
            10,
            Request::SetAcl(SetAclRequest {
                path: "/app/node".into(),
                acl: acls(),
                version: 0,
            }),
        ),
        request(
            "request.get_children",
            11,
            Request::GetChildren(path_watch("/app", true)),
        ),
        request("request.sync", 12, Request::Sync(path("/app"))),
        request("request.ping", xid::PING, Request::Ping),
        request(
            "request.get_children2",
            13,
            Request::GetChildren2(path_watch("/app", false)),
        ),
        request(
            "request.check",
            14,
            Request::Check(CheckVersionRequest {
                path: "/app/node".into(),
                version: 7,
            }),
        ),
        request(
            "request.multi",
            15,
            Request::Multi(vec![
                MultiOp::Create {
                    op: OpCode::Create,
                    request: create("/m/a", data("a"), acls(), 0),
                },
                MultiOp::Create {
                    op: OpCode::CreateContainer,
                    request: create("/m/c", Some(vec![]), acls(), 4),
                },
                MultiOp::CreateTtl(CreateTtlRequest {
                    path: "/m/t".into(),
                    data: None,
                    acl: acls(),
                    flags: 5,
                    ttl: 5000,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/m/b".into(),
                    version: 2,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/m/a".into(),
                    data: data("b"),
                    version: -1,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 4,
                }),
            ]),
        ),
        request("request.multi_empty", 16, Request::Multi(vec![])),
        request(
            "request.multi_read",
            17,
            Request::MultiRead(vec![
                MultiReadOp::GetChildren(path_watch("/m", false)),
                MultiReadOp::GetData(path_watch("/m/a", false)),
            ]),
        ),
        // An incremental reconfig sends newMembers as a null ustring, which
        // Rust models as "": only decoding can be compared.
        Case {
            name: "request.reconfig",
            encoded: None,
            decodes: request_decodes(
                "request.reconfig",
                18,
                Request::Reconfig(ReconfigRequest {
                    joining_servers: "server.4=h4:2888:3888;2181".into(),
                    leaving_servers: "3".into(),
                    new_members: String::new(),
                    cur_config_id: -1,
                }),
            ),
        },
        request(
            "request.check_watches",
            19,
            Request::CheckWatches(WatchesRequest {
                path: "/app".into(),
                watcher_type: WatcherType::Children.code(),
            }),
        ),
        request(
            "request.remove_watches",
            20,
            Request::RemoveWatches(WatchesRequest {
                path: "/app".into(),
                watcher_type: WatcherType::Any.code(),
            }),
        ),
        request(
            "request.delete_container",
            21,
            Request::DeleteContainer(DeleteContainerRequest {
                path: data("/app/container"),
            }),
        ),
        request(
            "request.auth",
            xid::AUTH,
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: data("user:secret"),
            }),
        ),
        request(
            "request.set_watches",
            xid::SET_WATCHES,
            Request::SetWatches(SetWatches {
                relative_zxid: 0x1_0000_0007,
                data_watches: strings(&["/a", "/b"]),
                exist_watches: strings(&["/c"]),
                child_watches: vec![],
            }),
        ),
        request(
            "request.sasl",
            22,
            Request::Sasl(SaslRequest {
                token: Some(vec![1, 2, 3]),
            }),
        ),
        request(
            "request.get_ephemerals",
            23,
            Request::GetEphemerals(path("/app")),
        ),
        request(
            "request.get_all_children_number",
            24,
            Request::GetAllChildrenNumber(path("/app")),
        ),
        request(
            "request.set_watches2",
            xid::SET_WATCHES,
            Request::SetWatches2(SetWatches2 {
                relative_zxid: 0x1_0000_0007,
                data_watches: strings(&["/a"]),
                exist_watches: strings(&["/b"]),
                child_watches: strings(&["/c"]),
                persistent_watches: strings(&["/d"]),
                persistent_recursive_watches: strings(&["/e", "/f"]),
            }),
        ),
        request(
            "request.add_watch",
            25,
            Request::AddWatch(AddWatchRequest {
                path: "/app".into(),
                mode: AddWatchMode::PersistentRecursive.code(),
            }),
        ),
        request("request.whoami", 26, Request::WhoAmI),
        request("request.close_session", 27, Request::CloseSession),
    ]
}

fn response_cases() -> Vec<Case> {
    let stat_response = |stat| Response::Stat(StatResponse { stat });
    let children = |items: &[&str]| GetChildrenResponse {
        children: strings(items),
    };
    let client = |scheme: &str, user: &str| ClientInfo {
        auth_scheme: scheme.into(),
        user: user.into(),
    };
    vec![
        response(
            "response.create",
            OpCode::Create,
            Response::Create(CreateResponse {
                path: "/app/seq-0000000001".into(),
            }),
        ),
        response(
            "response.create2",
            OpCode::Create2,
            Response::Create2(Create2Response {
                path: "/app/node".into(),
                stat: stat(),
            }),
        ),
        response("response.exists", OpCode::Exists, stat_response(stat())),
        response("response.set_data", OpCode::SetData, stat_response(stat2())),
        response("response.set_acl", OpCode::SetAcl, stat_response(stat())),
        response(
            "response.get_data",
            OpCode::GetData,
            Response::GetData(GetDataResponse {
                data: data("hello"),
                stat: stat(),
            }),
        ),
        response(
            "response.get_data_null",
            OpCode::GetData,
            Response::GetData(GetDataResponse {
                data: None,
                stat: stat2(),
            }),
        ),
        response(
            "response.get_acl",
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse {
                acl: acls(),
                stat: stat(),
            }),
        ),
        response(
            "response.get_children",
            OpCode::GetChildren,
            Response::GetChildren(children(&["a", "b", "zookeeper"])),
        ),
        response(
            "response.get_children_empty",
            OpCode::GetChildren,
            Response::GetChildren(children(&[])),
        ),
        response(
            "response.get_children2",
            OpCode::GetChildren2,
            Response::GetChildren2(GetChildren2Response {
                children: strings(&["x"]),
                stat: stat(),
            }),
        ),
        response(
            "response.sync",
            OpCode::Sync,
            Response::Sync(PathResponse {
                path: "/app".into(),
            }),
        ),
        response(
            "response.reconfig",
            OpCode::Reconfig,
            Response::GetData(GetDataResponse {
                data: data("server.1=h1:2888:3888;2181\nversion=100000000"),
                stat: stat2(),
            }),
        ),
        response(
            "response.get_ephemerals",
            OpCode::GetEphemerals,
            Response::GetEphemerals(GetEphemeralsResponse {
                ephemerals: strings(&["/e1", "/app/e2"]),
            }),
        ),
        response(
            "response.get_all_children_number",
            OpCode::GetAllChildrenNumber,
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 12 }),
        ),
        response(
            "response.add_watch",
            OpCode::AddWatch,
            Response::AddWatch(ErrorResponse { err: 0 }),
        ),
        response(
            "response.whoami",
            OpCode::WhoAmI,
            Response::WhoAmI(WhoAmIResponse {
                client_info: vec![client("ip", "127.0.0.1"), client("digest", "bob")],
            }),
        ),
        response_lossy(
            "response.whoami_supplementary",
            OpCode::WhoAmI,
            Response::WhoAmI(WhoAmIResponse {
                client_info: vec![client("digest", "\u{fc}\u{1f600}")],
            }),
            Response::WhoAmI(WhoAmIResponse {
                client_info: vec![client("digest", "\u{fc}\u{fffd}\u{fffd}")],
            }),
        ),
        response(
            "response.sasl",
            OpCode::Sasl,
            Response::Sasl(SaslResponse {
                token: Some(vec![9, 8, 7]),
            }),
        ),
        response(
            "response.multi",
            OpCode::Multi,
            Response::Multi(vec![
                MultiResult::Create {
                    path: "/m/a".into(),
                },
                MultiResult::Create2 {
                    path: "/m/c".into(),
                    stat: stat2(),
                },
                MultiResult::Delete,
                MultiResult::SetData { stat: stat() },
                MultiResult::Check,
                MultiResult::Error(ErrorCode::NoNode),
            ]),
        ),
        response(
            "response.multi_failed",
            OpCode::Multi,
            Response::Multi(vec![
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::BadVersion),
                MultiResult::Error(ErrorCode::RuntimeInconsistency),
            ]),
        ),
        response(
            "response.multi_empty",
            OpCode::Multi,
            Response::Multi(vec![]),
        ),
        response(
            "response.multi_read",
            OpCode::MultiRead,
            Response::Multi(vec![
                MultiResult::GetChildren {
                    children: strings(&["a", "b"]),
                },
                MultiResult::GetData {
                    data: data("v"),
                    stat: stat(),
                },
                MultiResult::GetData {
                    data: None,
                    stat: stat2(),
                },
                MultiResult::Error(ErrorCode::NoNode),
            ]),
        ),
    ]
}

/// Splits a whole frame into its reply header and body.
fn reply_frame(bytes: &[u8]) -> (ReplyHeader, &[u8]) {
    let total = frame::decode_frame(bytes, DEFAULT_MAX_BUFFER)
        .unwrap()
        .unwrap();
    assert_eq!(total, bytes.len());
    let mut r = Reader::new(&bytes[frame::LENGTH_PREFIX..]);
    let header = ReplyHeader::decode(&mut r).unwrap();
    (header, r.take_rest())
}

fn frame_cases() -> Vec<Case> {
    let get_data = Response::GetData(GetDataResponse {
        data: data("hello"),
        stat: stat(),
    });
    let mut reply = Vec::new();
    encode_reply(&mut reply, 7, 0x1_0000_0005, ErrorCode::Ok, &get_data);
    let mut error = Vec::new();
    encode_reply(&mut error, 8, 0x1_0000_0005, ErrorCode::NoNode, &get_data);
    let mut notification = Vec::new();
    encode_notification(&mut notification, EventType::NodeChildrenChanged, "/app");
    vec![
        Case {
            name: "frame.reply_get_data",
            encoded: Some(reply),
            decodes: Box::new(move |bytes| {
                let (header, body) = reply_frame(bytes);
                assert_eq!(
                    header,
                    ReplyHeader {
                        xid: 7,
                        zxid: 0x1_0000_0005,
                        err: 0
                    }
                );
                assert_eq!(Response::decode(OpCode::GetData, body).unwrap(), get_data);
            }),
        },
        Case {
            name: "frame.reply_error",
            encoded: Some(error),
            decodes: Box::new(|bytes| {
                let (header, body) = reply_frame(bytes);
                assert_eq!(
                    header,
                    ReplyHeader {
                        xid: 8,
                        zxid: 0x1_0000_0005,
                        err: -101
                    }
                );
                assert!(body.is_empty());
            }),
        },
        Case {
            name: "frame.notification",
            encoded: Some(notification),
            decodes: Box::new(|bytes| {
                let (header, body) = reply_frame(bytes);
                assert_eq!(
                    header,
                    ReplyHeader {
                        xid: xid::NOTIFICATION,
                        zxid: -1,
                        err: 0
                    }
                );
                let event = jute::from_slice::<WatcherEvent>(body).unwrap();
                assert_eq!(event.event_type, EventType::NodeChildrenChanged.code());
                assert_eq!(event.state, KeeperState::SyncConnected.code());
                assert_eq!(event.path, "/app");
            }),
        },
    ]
}

fn all_cases() -> Vec<Case> {
    let mut cases = primitive_cases();
    cases.extend(data_record_cases());
    cases.extend(connect_cases());
    cases.extend(request_cases());
    cases.extend(response_cases());
    cases.extend(frame_cases());
    cases
}

/// Compares every case of one group, reporting all mismatches at once.
fn check(cases: Vec<Case>) {
    let golden = golden();
    let mut mismatches = Vec::new();
    for case in &cases {
        let expected = golden
            .get(case.name)
            .unwrap_or_else(|| panic!("{} not in golden file", case.name));
        if let Some(encoded) = &case.encoded
            && hex(encoded) != *expected
        {
            mismatches.push(format!(
                "{}:\n  zookeeper {expected}\n  rust      {}",
                case.name,
                hex(encoded)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "encodings differ from ZooKeeper's:\n{}",
        mismatches.join("\n")
    );
    for case in &cases {
        (case.decodes)(&unhex(golden[case.name]));
    }
}

#[test]
fn strings_and_buffers_match_zookeeper() {
    check(primitive_cases());
}

#[test]
fn data_records_and_headers_match_zookeeper() {
    check(data_record_cases());
}

#[test]
fn connect_handshake_matches_zookeeper_with_and_without_read_only() {
    check(connect_cases());
}

#[test]
fn every_request_matches_zookeeper() {
    check(request_cases());
}

#[test]
fn every_response_matches_zookeeper() {
    check(response_cases());
}

#[test]
fn reply_and_notification_frames_match_zookeeper() {
    check(frame_cases());
}

/// Decodes `bytes` as the record a `decode.*` case names and re-encodes it,
/// as GoldenBytes.java does with ZooKeeper's classes.
fn decode_and_reencode(case: &str, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    fn again<T: Jute>(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        jute::from_slice::<T>(bytes).map(|value| jute::to_vec(&value))
    }
    match case {
        c if c.starts_with("string_") => again::<CreateResponse>(bytes),
        c if c.starts_with("buffer_") => again::<SaslResponse>(bytes),
        c if c.starts_with("vector_count_") => again::<GetChildrenResponse>(bytes),
        "vector_acl_count_minus_two" => again::<CreateRequest>(bytes),
        "bool_nonzero" => again::<PathWatchRequest>(bytes),
        "truncated_stat" => again::<Stat>(bytes),
        other => panic!("no Rust type for decode case {other}"),
    }
}

fn decode_case_names() -> BTreeSet<&'static str> {
    golden()
        .keys()
        .filter_map(|name| name.strip_prefix("decode.")?.strip_suffix(".in"))
        .collect()
}

#[test]
fn odd_input_decodes_as_zookeeper_decodes_it() {
    let golden = golden();
    let names = decode_case_names();
    assert!(names.len() >= 20, "only {} decode cases", names.len());
    let mut mismatches = Vec::new();
    for name in names {
        let input = unhex(golden[format!("decode.{name}.in").as_str()]);
        let expected = golden[format!("decode.{name}.out").as_str()];
        let got = match decode_and_reencode(name, &input) {
            Ok(bytes) => hex(&bytes),
            Err(_) => "error".to_owned(),
        };
        if got != expected {
            mismatches.push(format!("{name}: zookeeper {expected}, rust {got}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "decoding differs from ZooKeeper's:\n{}",
        mismatches.join("\n")
    );
}

/// The byte values at which UTF-8's well-formedness changes; must equal
/// `SWEEP_ALPHABET` in GoldenBytes.java.
const SWEEP_ALPHABET: [u8; 27] = [
    0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec,
    0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xff,
];

/// Every ustring of 1 to 4 bytes over [`SWEEP_ALPHABET`] read by the Rust
/// decoder, hashed exactly as GoldenBytes.java hashes what ZooKeeper reads.
#[test]
fn short_byte_strings_decode_exactly_as_zookeeper_reads_them() {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut count: u32 = 0;
    let mut frame = Vec::new();
    for len in 1..=4usize {
        let mut digits = vec![0usize; len];
        loop {
            frame.clear();
            let bytes: Vec<u8> = digits.iter().map(|&d| SWEEP_ALPHABET[d]).collect();
            jute::write_buffer(&mut frame, Some(&bytes));
            let s = Reader::new(&frame).read_ustring().unwrap().unwrap();
            for v in s.chars().map(u32::from).chain([u32::MAX]) {
                for byte in v.to_be_bytes() {
                    hash ^= u64::from(byte);
                    hash = hash.wrapping_mul(0x0100_0000_01b3);
                }
            }
            count += 1;
            let Some(k) = (0..len)
                .rev()
                .find(|&k| digits[k] + 1 < SWEEP_ALPHABET.len())
            else {
                break;
            };
            digits[k] += 1;
            digits[k + 1..].fill(0);
        }
    }
    let golden = golden();
    assert_eq!(format!("{count:08x}"), golden["utf8_sweep.count"]);
    assert_eq!(format!("{hash:016x}"), golden["utf8_sweep.fnv1a64"]);
}

#[test]
fn every_golden_case_is_checked() {
    let mut checked: BTreeSet<String> = all_cases().iter().map(|c| c.name.to_owned()).collect();
    checked.insert("utf8_sweep.count".to_owned());
    checked.insert("utf8_sweep.fnv1a64".to_owned());
    for name in decode_case_names() {
        checked.insert(format!("decode.{name}.in"));
        checked.insert(format!("decode.{name}.out"));
    }
    let in_file: BTreeSet<String> = golden().keys().map(|k| (*k).to_owned()).collect();
    assert_eq!(checked, in_file);
    assert!(in_file.len() > 100, "golden file looks truncated");
}
