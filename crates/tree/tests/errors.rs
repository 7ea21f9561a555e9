//! The order in which writes are checked, and the error each check gives
//! (`PrepRequestProcessor.pRequest2Txn` / `pRequest2TxnCreate` /
//! `validateCreateRequest` / `validatePathForCreate` /
//! `getParentPathAndValidate` in ZooKeeper 3.8.4). Each case violates two
//! rules at once where it can, so only the right order passes.
//!
//! Sessions S1 and S2 exist (zxids 1 and 2); writes are by S1 unless a step
//! says otherwise.

mod support;

use proto::{ErrorCode as E, OpCode, perms};
use support::*;
use support::{Expect as X, F::*, Step::*};

const MAX_TTL: i64 = (1 << 40) - 1;

fn create_order() -> Vec<Case> {
    vec![
        Case::new(
            "create: flags before the session",
            vec![
                w(create("/a", b"", 7)).by(NOBODY).err(E::BadArguments),
                Zxid(3),
            ],
        ),
        Case::new(
            "create: flags before the parent lookup and path checks",
            vec![
                w(create("/missing/x", b"", -1)).err(E::BadArguments),
                w(create("noslash", b"", 7)).err(E::BadArguments),
            ],
        ),
        Case::new(
            "create: TTL feature switch before the TTL range and the session",
            vec![
                w(ttl("/t", flags::TTL, 0)).by(NOBODY).err(E::Unimplemented),
                w(ttl("/t", flags::TTL_SEQUENTIAL, 100)).err(E::Unimplemented),
                // TTL flags through create2 (ttl -1): still the switch first.
                w(create_full(
                    OpCode::Create2,
                    "/t",
                    Some(b""),
                    open(),
                    flags::TTL,
                    -1,
                ))
                .err(E::Unimplemented),
                Ttls(vec![]),
            ],
        ),
        Case::new(
            "create: TTL range before the session",
            vec![
                w(ttl("/t", flags::TTL, 0)).by(NOBODY).err(E::BadArguments),
                w(ttl("/t", flags::TTL, -5)).err(E::BadArguments),
                w(ttl("/t", flags::TTL, MAX_TTL + 1)).err(E::BadArguments),
                w(create_full(
                    OpCode::Create,
                    "/t",
                    Some(b""),
                    open(),
                    flags::TTL,
                    -1,
                ))
                .err(E::BadArguments),
                w(ttl("/t1", flags::TTL, 1)).expect(X::WithStat("/t1")),
                w(ttl("/t2", flags::TTL, MAX_TTL)).expect(X::WithStat("/t2")),
                Ttls(vec!["/t1", "/t2"]),
            ],
        )
        .features(extended()),
        Case::new(
            "create: a non-TTL mode must not carry a TTL",
            vec![
                w(ttl("/p", flags::PERSISTENT, 0))
                    .by(NOBODY)
                    .err(E::BadArguments),
                w(ttl("/p", flags::PERSISTENT, 100)).err(E::BadArguments),
                w(ttl("/p", flags::CONTAINER, 100)).err(E::BadArguments),
                w(ttl("/p", flags::PERSISTENT, -1)).expect(X::WithStat("/p")),
            ],
        ),
        Case::new(
            "create: the session before the path",
            vec![
                w(create("noslash", b"", 0))
                    .by(NOBODY)
                    .err(E::SessionExpired),
                w(create("/a", b"", flags::EPHEMERAL))
                    .by(NOBODY)
                    .err(E::SessionExpired),
                w(create_acl("/a", vec![]))
                    .by(NOBODY)
                    .err(E::SessionExpired),
            ],
        ),
        Case::new(
            "create: slash and NUL before the ACL",
            vec![
                w(create_acl("noslash", vec![])).err(E::BadArguments),
                w(create_acl("", vec![])).err(E::BadArguments),
                w(create_acl("/a\0b", vec![])).err(E::BadArguments),
                w(create_acl("/missing/a\0b", vec![])).err(E::BadArguments),
            ],
        ),
        Case::new(
            "create: the ACL before the parent lookup",
            vec![
                w(create_acl("/missing/x", vec![])).err(E::InvalidAcl),
                w(create_acl("/missing/x", vec![acl(31, "world", "someone")])).err(E::InvalidAcl),
                w(create_acl("/missing/x", vec![acl(31, "auth", "")])).err(E::InvalidAcl),
                w(create_acl("/missing/x", vec![acl(31, "super", "")])).err(E::InvalidAcl),
                w(create_acl("/missing/x", vec![acl(31, "digest", "nocolon")])).err(E::InvalidAcl),
                w(create_acl("/missing/x", vec![acl(31, "ip", "1.2.3")])).err(E::InvalidAcl),
                w(create_acl("/missing/x", vec![acl(31, "sasl", "me")])).err(E::InvalidAcl),
                w(create_acl("/missing/x", open())).err(E::NoNode),
            ],
        ),
        Case::new(
            "create: the parent lookup before the full path validation",
            vec![
                w(create("/missing/x/", b"", 0)).err(E::NoNode),
                w(create("/missing/./x", b"", 0)).err(E::NoNode),
                w(create("/a//b", b"", 0)).err(E::NoNode),
            ],
        ),
        Case::new(
            "create: CREATE on the parent before the full path validation",
            vec![
                w(create_acl("/locked", world(perms::ALL & !perms::CREATE))).ok(),
                w(create("/locked/.", b"", 0)).err(E::NoAuth),
                w(create("/locked/\u{1}", b"", 0)).err(E::NoAuth),
                w(create("/locked/x", b"", 0)).err(E::NoAuth),
                w(create("/locked/x", b"", flags::SEQUENTIAL)).err(E::NoAuth),
                stat("/locked", vec![StoredCversion(0)]),
            ],
        ),
        Case::new(
            "create: full path validation after the parent checks",
            vec![
                w(create("/a", b"", 0)).ok(),
                w(create("/a/.", b"", 0)).err(E::BadArguments),
                w(create("/a/..", b"", 0)).err(E::BadArguments),
                w(create("/a/", b"", 0)).err(E::BadArguments),
                w(create("//b", b"", 0)).err(E::BadArguments),
                w(create("/a/\u{1}", b"", 0)).err(E::BadArguments),
                w(create("/a/\u{fffd}", b"", 0)).err(E::BadArguments),
                w(create("/a/\u{1f600}", b"", 0)).err(E::BadArguments),
                w(create("/a/\u{1}-", b"", flags::SEQUENTIAL)).err(E::BadArguments),
                // Fine: "...", ".a", "a.", ordinary Unicode.
                w(create("/a/...", b"", 0)).ok(),
                w(create("/a/.b", b"", 0)).ok(),
                w(create("/a/b.", b"", 0)).ok(),
                w(create("/a/z\u{e9}", b"", 0)).ok(),
                // The sequential suffix is appended before validation.
                w(create("/a/", b"", flags::SEQUENTIAL)).expect(X::Plain("/a/0000000004")),
                stat("/a", vec![NumChildren(5)]),
            ],
        ),
        Case::new(
            "create: NodeExists, including / and the system nodes",
            vec![
                w(create("/", b"", 0)).err(E::NodeExists),
                w(create("/zookeeper", b"", 0)).err(E::NodeExists),
                w(create("/zookeeper/config", b"", 0)).err(E::NodeExists),
                w(create("/a", b"", 0)).ok(),
                w(create("/a", b"", flags::EPHEMERAL)).err(E::NodeExists),
                w(container("/a")).err(E::NodeExists),
                stat("/a", vec![Owner(0), Czxid(6)]),
            ],
        ),
        Case::new(
            "create: NoChildrenForEphemerals last",
            vec![
                w(create("/e", b"", flags::EPHEMERAL)).ok(),
                w(create("/e/x", b"", 0)).err(E::NoChildrenForEphemerals),
                w(create("/e/x", b"", flags::SEQUENTIAL)).err(E::NoChildrenForEphemerals),
                w(create("/e/x", b"", flags::EPHEMERAL))
                    .by(S2)
                    .err(E::NoChildrenForEphemerals),
                w(create("/e/.", b"", 0)).err(E::BadArguments),
                w(create_acl("/e/x", vec![])).err(E::InvalidAcl),
                w(create_eph_acl("/ro", world(perms::READ))).ok(),
                w(create("/ro/x", b"", 0)).err(E::NoAuth),
                stat("/e", vec![StoredCversion(0), NumChildren(0)]),
            ],
        ),
        Case::new(
            "create: ephemeral of an unknown session vs persistent of a known one",
            vec![
                w(create("/a", b"", flags::EPHEMERAL_SEQUENTIAL))
                    .by(NOBODY)
                    .err(E::SessionExpired),
                w(create("/a", b"", flags::EPHEMERAL)).by(S2).ok(),
                stat("/a", vec![Owner(S2)]),
            ],
        ),
    ]
}

fn delete_order() -> Vec<Case> {
    let setup = || {
        vec![
            w(create("/a", b"", 0)).ok(),
            w(create("/a/b", b"", 0)).ok(),
            w(create_acl("/nodel", world(ALL_BUT_DELETE))).ok(),
            w(create("/nodel/c", b"", 0)).ok(),
        ]
    };
    let with = |mut steps: Vec<Step>| {
        let mut all = setup();
        all.append(&mut steps);
        all
    };
    vec![
        Case::new(
            "delete: the session first",
            with(vec![
                w(delete("/", -1)).by(NOBODY).err(E::SessionExpired),
                w(delete("noslash", -1)).by(NOBODY).err(E::SessionExpired),
            ]),
        ),
        Case::new(
            "delete: special paths, no slash and NUL are BadArguments",
            with(vec![
                w(delete("/", -1)).err(E::BadArguments),
                w(delete("/zookeeper", -1)).err(E::BadArguments),
                w(delete("/zookeeper/quota", -1)).err(E::BadArguments),
                w(delete("/zookeeper/config", -1)).err(E::BadArguments),
                w(delete("", -1)).err(E::BadArguments),
                w(delete("a", -1)).err(E::BadArguments),
                w(delete("/a\0", -1)).err(E::BadArguments),
                w(delete("/missing/x\0", -1)).err(E::BadArguments),
                NodeCount(9),
            ]),
        ),
        Case::new(
            "delete: no full path validation, just lookups",
            with(vec![
                w(delete("/a/", -1)).err(E::NoNode),
                w(delete("/a/.", -1)).err(E::NoNode),
                w(delete("/zookeeper/", -1)).err(E::NoNode),
                w(delete("/missing/x", -1)).err(E::NoNode),
                w(delete("/missing", -1)).err(E::NoNode),
            ]),
        ),
        Case::new(
            "delete: DELETE on the parent before the node lookup",
            with(vec![
                w(delete("/nodel/missing", -1)).err(E::NoAuth),
                w(delete("/nodel/c", 7)).err(E::NoAuth),
                w(delete("/nodel/c", -1)).err(E::NoAuth),
                Exists("/nodel/c"),
                w(delete("/nodel", 0)).err(E::NotEmpty),
            ]),
        ),
        Case::new(
            "delete: the node's own ACL does not matter",
            vec![
                w(create_acl("/ro", world(perms::READ))).ok(),
                w(delete("/ro", 0)).expect(X::Deleted),
                Gone("/ro"),
            ],
        ),
        Case::new(
            "delete: BadVersion before NotEmpty",
            with(vec![
                w(delete("/a", 5)).err(E::BadVersion),
                w(delete("/a", -1)).err(E::NotEmpty),
                w(delete("/a", 0)).err(E::NotEmpty),
                w(set_data("/a/b", b"x", 0)).ok(),
                w(delete("/a/b", 0)).err(E::BadVersion),
                w(delete("/a/b", 1)).expect(X::Deleted),
                w(delete("/a", 0)).expect(X::Deleted),
            ]),
        ),
        Case::new(
            "delete: any session may delete another session's ephemeral",
            vec![
                w(create("/e", b"", flags::EPHEMERAL)).ok(),
                w(delete("/e", -1)).by(S2).expect(X::Deleted),
                Ephemerals(S1, vec![]),
            ],
        ),
    ]
}

fn set_data_order() -> Vec<Case> {
    vec![
        Case::new(
            "setData: session, then path validation",
            vec![
                w(set_data("/a/", b"", -1))
                    .by(NOBODY)
                    .err(E::SessionExpired),
                w(set_data("/missing/", b"", -1)).err(E::BadArguments),
                w(set_data("noslash", b"", -1)).err(E::BadArguments),
                w(set_data("", b"", -1)).err(E::BadArguments),
                w(set_data("/a\0", b"", -1)).err(E::BadArguments),
            ],
        ),
        Case::new(
            "setData: NoNode, then WRITE, then the version",
            vec![
                w(set_data("/missing", b"", 3)).err(E::NoNode),
                w(create_acl("/ro", world(perms::ALL & !perms::WRITE))).ok(),
                w(set_data("/ro", b"", 3)).err(E::NoAuth),
                w(set_data("/ro", b"", -1)).err(E::NoAuth),
                w(create("/a", b"", 0)).ok(),
                w(set_data("/a", b"", 3)).err(E::BadVersion),
                w(set_data("/a", b"", 0)).expect(X::DataSet),
                w(set_data("/a", b"", 0)).err(E::BadVersion),
                w(set_data("/a", b"", 1)).expect(X::DataSet),
                stat("/a", vec![Version(2)]),
            ],
        ),
        Case::new(
            "setData: the root and the config node",
            vec![
                w(set_data("/", b"root", 0)).expect(X::DataSet),
                stat("/", vec![Version(1), Mzxid(3), DataLength(4), Cversion(-1)]),
                w(set_data("/zookeeper/config", b"x", -1)).err(E::NoAuth),
                Auth(S2, super_id()),
                w(set_data("/zookeeper/config", b"x", 0))
                    .by(S2)
                    .expect(X::DataSet),
                stat("/zookeeper/config", vec![Version(1), Aversion(-1)]),
            ],
        ),
    ]
}

fn set_acl_order() -> Vec<Case> {
    vec![
        Case::new(
            "setACL: session, then path validation, then the ACL",
            vec![
                w(set_acl("/a/", vec![], -1))
                    .by(NOBODY)
                    .err(E::SessionExpired),
                w(set_acl("/missing/", vec![], -1)).err(E::BadArguments),
                w(set_acl("/missing", vec![], -1)).err(E::InvalidAcl),
                w(set_acl("/missing", vec![acl(31, "auth", "")], -1)).err(E::InvalidAcl),
                w(set_acl("/missing", open(), -1)).err(E::NoNode),
            ],
        ),
        Case::new(
            "setACL: ADMIN before the version, and the version is the aversion",
            vec![
                w(create_acl("/na", world(ALL_BUT_ADMIN))).ok(),
                w(set_acl("/na", open(), 9)).err(E::NoAuth),
                w(set_acl("/na", open(), -1)).err(E::NoAuth),
                w(create("/a", b"", 0)).ok(),
                w(set_data("/a", b"", -1)).ok(),
                w(set_data("/a", b"", -1)).ok(),
                stat("/a", vec![Version(2), Aversion(0)]),
                w(set_acl("/a", open(), 2)).err(E::BadVersion),
                w(set_acl("/a", world(perms::READ | perms::ADMIN), 0)).expect(X::AclSet),
                stat("/a", vec![Version(2), Aversion(1), Mzxid(8)]),
                w(set_acl("/a", open(), 0)).err(E::BadVersion),
                // Losing WRITE does not stop ADMIN.
                w(set_data("/a", b"", -1)).err(E::NoAuth),
                w(set_acl("/a", open(), 1)).expect(X::AclSet),
                w(set_data("/a", b"", -1)).expect(X::DataSet),
            ],
        ),
        Case::new(
            "setACL on the config node: aversion -1 matches -1, then counts from 0",
            vec![
                w(set_acl("/zookeeper/config", open(), -1)).err(E::NoAuth),
                Auth(S1, super_id()),
                w(set_acl("/zookeeper/config", open(), 0)).err(E::BadVersion),
                w(set_acl("/zookeeper/config", open(), -1)).expect(X::AclSet),
                stat("/zookeeper/config", vec![Aversion(0)]),
                w(set_acl("/zookeeper/config", world(perms::READ), 0)).expect(X::AclSet),
                stat("/zookeeper/config", vec![Aversion(1)]),
            ],
        ),
    ]
}

fn check_order() -> Vec<Case> {
    vec![Case::new(
        "check: session, path, NoNode, READ, version",
        vec![
            w(check("/a/", 0)).by(NOBODY).err(E::SessionExpired),
            w(check("/missing/", 0)).err(E::BadArguments),
            w(check("/missing", 0)).err(E::NoNode),
            w(create_acl("/w", world(perms::WRITE))).ok(),
            w(check("/w", 5)).err(E::NoAuth),
            w(check("/w", -1)).err(E::NoAuth),
            w(create("/a", b"", 0)).ok(),
            w(check("/a", 1)).err(E::BadVersion),
            w(check("/a", 0)).expect(X::Checked),
            w(check("/a", -1)).expect(X::Checked),
            stat("/a", vec![Version(0), Mzxid(9)]),
        ],
    )]
}

fn delete_container_rules() -> Vec<Case> {
    vec![
        Case::new(
            "deleteContainer: no session check",
            vec![
                w(container("/c")).ok(),
                w(delete_container("/c")).by(NOBODY).expect(X::Deleted),
                w(container("/c")).ok(),
                w(delete_container("/c")).by(0).expect(X::Deleted),
                Containers(vec![]),
            ],
        ),
        Case::new(
            "deleteContainer: no ACL check",
            vec![
                w(create("/p", b"", 0)).ok(),
                w(container("/p/c")).ok(),
                w(set_acl("/p", world(perms::READ), -1)).ok(),
                w(delete("/p/c", -1)).err(E::NoAuth),
                w(delete_container("/p/c")).by(0).expect(X::Deleted),
                Gone("/p/c"),
            ],
        ),
        Case::new(
            "deleteContainer: refuses real ephemerals with BadVersion, non-empty with NotEmpty",
            vec![
                w(create("/e", b"", flags::EPHEMERAL)).ok(),
                w(delete_container("/e")).by(0).err(E::BadVersion),
                w(container("/c")).ok(),
                w(create("/c/x", b"", 0)).ok(),
                w(delete_container("/c")).by(0).err(E::NotEmpty),
                Exists("/e"),
                Exists("/c"),
            ],
        ),
        Case::new(
            "deleteContainer: any empty non-ephemeral node, whatever its version",
            vec![
                w(create("/p", b"", 0)).ok(),
                w(set_data("/p", b"", -1)).ok(),
                w(delete_container("/p"))
                    .by(0)
                    .expect(X::Deleted)
                    .changes(vec![support::Ch::Deleted("/p", "/")]),
                stat("/", vec![Pzxid(5), NumChildren(1), Cversion(1)]),
            ],
        ),
        Case::new(
            "deleteContainer: TTL nodes",
            vec![
                w(ttl("/t", flags::TTL, 10)).ok(),
                w(delete_container("/t")).by(0).expect(X::Deleted),
                Ttls(vec![]),
            ],
        )
        .features(extended()),
        Case::new(
            "deleteContainer: path rules as for delete",
            vec![
                w(delete_container("/")).by(0).err(E::BadArguments),
                w(delete_container("/zookeeper")).by(0).err(E::BadArguments),
                w(delete_container("/zookeeper/quota"))
                    .by(0)
                    .err(E::BadArguments),
                w(delete_container("/zookeeper/config"))
                    .by(0)
                    .err(E::BadArguments),
                w(delete_container("noslash")).by(0).err(E::BadArguments),
                w(delete_container("/x\0")).by(0).err(E::BadArguments),
                w(delete_container("/missing")).by(0).err(E::NoNode),
                w(delete_container("/missing/x")).by(0).err(E::NoNode),
            ],
        ),
    ]
}

#[test]
fn create_order_table() {
    run_table(&create_order());
}

#[test]
fn delete_order_table() {
    run_table(&delete_order());
}

#[test]
fn set_data_order_table() {
    run_table(&set_data_order());
}

#[test]
fn set_acl_order_table() {
    run_table(&set_acl_order());
}

#[test]
fn check_order_table() {
    run_table(&check_order());
}

#[test]
fn delete_container_table() {
    run_table(&delete_container_rules());
}
