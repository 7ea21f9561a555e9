//! Table-driven semantics tests: Stat rules, the fresh tree, sequential
//! names, multi, sessions, containers and TTL nodes, all checked against
//! Apache ZooKeeper 3.8.4 (`DataTree`, `DataNode`, `PrepRequestProcessor`,
//! `FinalRequestProcessor`, `ContainerManager`).
//!
//! Unless a case says otherwise, sessions S1 and S2 were created at zxids 1
//! and 2, so the first write of a case has zxid 3; writes are by S1.

mod support;

use proto::{ErrorCode as E, OpCode, perms};
use support::*;
use support::{Ch::*, Expect as X, F::*, Step::*};

// --- the fresh tree ---------------------------------------------------------

fn fresh_tree() -> Vec<Case> {
    let zeros = |cversion, children| {
        vec![
            Czxid(0),
            Mzxid(0),
            Pzxid(0),
            Ctime(0),
            Mtime(0),
            Version(0),
            Cversion(cversion),
            Aversion(0),
            Owner(0),
            DataLength(0),
            NumChildren(children),
        ]
    };
    vec![
        Case::new(
            "fresh tree: five nodes, root cversion -1, /zookeeper -2",
            vec![
                Zxid(0),
                NodeCount(5),
                stat("/", zeros(-1, 1)),
                stat("/", vec![StoredCversion(0)]),
                stat("/zookeeper", zeros(-2, 2)),
                stat("/zookeeper/quota", zeros(0, 0)),
                Data("/", Some(b"")),
                Data("/zookeeper", Some(b"")),
                Data("/zookeeper/quota", Some(b"")),
                Data("/zookeeper/config", Some(b"")),
                Acl("/", open()),
                Acl("/zookeeper", open()),
                Acl("/zookeeper/quota", open()),
                Containers(vec![]),
                Ttls(vec![]),
            ],
        )
        .bare(),
        Case::new(
            "fresh tree: /zookeeper/config is READ-only with aversion -1",
            vec![
                stat(
                    "/zookeeper/config",
                    vec![
                        Aversion(-1),
                        Version(0),
                        Cversion(0),
                        Czxid(0),
                        Mzxid(0),
                        DataLength(0),
                    ],
                ),
                Acl("/zookeeper/config", world(perms::READ)),
                // Its READ-only ACL applies to everyone but super.
                w(set_data("/zookeeper/config", b"x", -1)).err(E::NoAuth),
                w(create("/zookeeper/config/x", b"", 0)).err(E::NoAuth),
            ],
        ),
        Case::new(
            "bare tree: writes need a live session, failures still take a zxid",
            vec![
                w(create("/zookeeper/mine", b"", 0))
                    .by(NOBODY)
                    .err(E::SessionExpired),
                Zxid(1),
                NodeCount(5),
            ],
        )
        .bare(),
        Case::new(
            "fresh tree: children of /zookeeper move its derived cversion from -2",
            vec![
                w(create("/zookeeper/mine", b"", 0)).expect(X::Plain("/zookeeper/mine")),
                stat(
                    "/zookeeper",
                    vec![Cversion(-1), StoredCversion(1), NumChildren(3), Pzxid(3)],
                ),
                NodeCount(6),
            ],
        ),
    ]
}

// --- Stat rules --------------------------------------------------------------

fn stat_rules() -> Vec<Case> {
    vec![
        Case::new(
            "create: the node's Stat",
            vec![
                w(create("/a", b"hello", 0))
                    .expect(X::Plain("/a"))
                    .changes(vec![Created("/a", "/")]),
                stat(
                    "/a",
                    vec![
                        Czxid(3),
                        Mzxid(3),
                        Pzxid(3),
                        Ctime(3),
                        Mtime(3),
                        Version(0),
                        Cversion(0),
                        Aversion(0),
                        Owner(0),
                        DataLength(5),
                        NumChildren(0),
                    ],
                ),
                Data("/a", Some(b"hello")),
            ],
        ),
        Case::new(
            "create: the parent's cversion, pzxid and numChildren move; mzxid, mtime, version do not",
            vec![
                w(create("/a", b"", 0)).ok(),
                stat(
                    "/",
                    vec![
                        Cversion(0),
                        StoredCversion(1),
                        Pzxid(3),
                        NumChildren(2),
                        Mzxid(0),
                        Mtime(0),
                        Version(0),
                        Czxid(0),
                    ],
                ),
                w(create("/a/b", b"", 0))
                    .ok()
                    .changes(vec![Created("/a/b", "/a")]),
                stat(
                    "/a",
                    vec![
                        Cversion(1),
                        Pzxid(4),
                        NumChildren(1),
                        Mzxid(3),
                        Mtime(3),
                        Version(0),
                        Czxid(3),
                    ],
                ),
                stat("/", vec![Pzxid(3), Cversion(0)]),
            ],
        ),
        Case::new(
            "create: null and empty data both have dataLength 0, but stay distinct",
            vec![
                w(create_null("/n")).ok(),
                w(create("/e", b"", 0)).ok(),
                stat("/n", vec![DataLength(0)]),
                stat("/e", vec![DataLength(0)]),
                Data("/n", None),
                Data("/e", Some(b"")),
            ],
        ),
        Case::new(
            "create2 replies with a Stat, create without",
            vec![
                w(create2("/a", flags::PERSISTENT)).expect(X::WithStat("/a")),
                w(create("/b", b"", flags::PERSISTENT)).expect(X::Plain("/b")),
            ],
        ),
        Case::new(
            "setData: version, mzxid, mtime, dataLength; nothing else",
            vec![
                w(create("/a", b"x", 0)).ok(),
                w(create("/a/c", b"", 0)).ok(),
                Tick(500),
                w(set_data("/a", b"hello!", 0))
                    .expect(X::DataSet)
                    .changes(vec![DataChanged("/a")]),
                stat(
                    "/a",
                    vec![
                        Czxid(3),
                        Ctime(3),
                        Mzxid(5),
                        Mtime(5),
                        Pzxid(4),
                        Version(1),
                        Cversion(1),
                        Aversion(0),
                        DataLength(6),
                        NumChildren(1),
                    ],
                ),
                // The parent and the children do not move.
                stat("/", vec![Pzxid(3), Cversion(0), Mzxid(0), Version(0)]),
                stat("/a/c", vec![Mzxid(4), Version(0)]),
                w(set_null("/a", 1)).expect(X::DataSet),
                stat("/a", vec![Version(2), DataLength(0), Mzxid(6)]),
                Data("/a", None),
                w(set_data("/a", b"z", -1)).expect(X::DataSet),
                stat("/a", vec![Version(3), Mzxid(7), Mtime(7), DataLength(1)]),
            ],
        ),
        Case::new(
            "setACL: only aversion moves, and no watch fires",
            vec![
                w(create("/a", b"", 0)).ok(),
                w(set_data("/a", b"v", 0)).ok(),
                w(set_acl("/a", world(perms::READ | perms::ADMIN), 0))
                    .expect(X::AclSet)
                    .changes(vec![]),
                stat(
                    "/a",
                    vec![
                        Aversion(1),
                        Version(1),
                        Mzxid(4),
                        Mtime(4),
                        Czxid(3),
                        Pzxid(3),
                        Cversion(0),
                    ],
                ),
                Acl("/a", world(perms::READ | perms::ADMIN)),
                w(set_acl("/a", open(), 1)).expect(X::AclSet),
                stat("/a", vec![Aversion(2), Mzxid(4)]),
                Acl("/a", open()),
            ],
        ),
        Case::new(
            "delete: parent cversion and pzxid move, numChildren drops",
            vec![
                w(create("/p", b"", 0)).ok(),
                w(create("/p/a", b"", 0)).ok(),
                w(create("/p/b", b"", 0)).ok(),
                stat(
                    "/p",
                    vec![Cversion(2), StoredCversion(2), Pzxid(5), NumChildren(2)],
                ),
                // A child's setData does not touch the parent.
                w(set_data("/p/b", b"data", 0)).ok(),
                stat("/p", vec![Cversion(2), Pzxid(5), Mzxid(3)]),
                w(delete("/p/a", 0))
                    .expect(X::Deleted)
                    .changes(vec![Deleted("/p/a", "/p")]),
                stat(
                    "/p",
                    vec![
                        Cversion(3),
                        StoredCversion(2),
                        Pzxid(7),
                        NumChildren(1),
                        Mzxid(3),
                    ],
                ),
                w(delete("/p/b", 1)).expect(X::Deleted),
                stat(
                    "/p",
                    vec![
                        Cversion(4),
                        StoredCversion(2),
                        Pzxid(8),
                        NumChildren(0),
                        Mzxid(3),
                        Mtime(3),
                        Version(0),
                    ],
                ),
                Gone("/p/a"),
                Gone("/p/b"),
                w(delete("/p", 0)).ok().changes(vec![Deleted("/p", "/")]),
                stat("/", vec![Pzxid(9), Cversion(1), NumChildren(1)]),
            ],
        ),
        Case::new(
            "ephemeralOwner: the session for ephemerals",
            vec![
                w(create("/e", b"", flags::EPHEMERAL)).expect(X::Plain("/e")),
                w(create("/f-", b"", flags::EPHEMERAL_SEQUENTIAL))
                    .by(S2)
                    .expect(X::Plain("/f-0000000001")),
                stat("/e", vec![Owner(S1), NumChildren(0)]),
                stat("/f-0000000001", vec![Owner(S2)]),
                Ephemerals(S1, vec!["/e"]),
                Ephemerals(S2, vec!["/f-0000000001"]),
            ],
        ),
        Case::new(
            "ephemeralOwner: 0 for persistent, container and TTL nodes",
            vec![
                w(create("/p", b"", 0)).ok(),
                w(container("/c")).expect(X::WithStat("/c")),
                w(ttl("/t", flags::TTL, 1000)).expect(X::WithStat("/t")),
                w(ttl("/s-", flags::TTL_SEQUENTIAL, 1000)).expect(X::WithStat("/s-0000000003")),
                stat("/p", vec![Owner(0)]),
                stat("/c", vec![Owner(0), Czxid(4)]),
                stat("/t", vec![Owner(0), Czxid(5)]),
                stat("/s-0000000003", vec![Owner(0)]),
                Containers(vec!["/c"]),
                Ttls(vec!["/t", "/s-0000000003"]),
                Ephemerals(S1, vec![]),
            ],
        )
        .features(extended()),
        Case::new(
            "failed writes consume a zxid and change nothing",
            vec![
                w(create("/a", b"", 0)).ok(),
                w(create("/a", b"", 0)).err(E::NodeExists).changes(vec![]),
                Zxid(4),
                stat("/", vec![Pzxid(3), Cversion(0), StoredCversion(1)]),
                w(set_data("/a", b"x", 5))
                    .err(E::BadVersion)
                    .changes(vec![]),
                stat("/a", vec![Version(0), Mzxid(3), Mtime(3)]),
                w(delete("/missing", -1)).err(E::NoNode),
                w(create("/b", b"", 0)).ok(),
                stat("/b", vec![Czxid(7)]),
                Zxid(7),
            ],
        ),
        Case::new(
            // `DataTree.getNodeSize`: path.length() counts UTF-16 units, not bytes.
            "approximate data size: path length in UTF-16 units plus data bytes",
            vec![
                DataSize(1 + 10 + 16 + 17),
                w(create("/\u{e9}t\u{e9}", b"abc", 0)).ok(),
                DataSize(44 + 4 + 3),
                w(set_data("/\u{e9}t\u{e9}", "\u{e9}".as_bytes(), -1)).ok(),
                DataSize(44 + 4 + 2),
                w(set_null("/\u{e9}t\u{e9}", -1)).ok(),
                DataSize(44 + 4),
                w(delete("/\u{e9}t\u{e9}", -1)).ok(),
                DataSize(44),
            ],
        ),
        Case::new(
            "check changes no Stat and fires nothing",
            vec![
                w(create("/a", b"", 0)).ok(),
                w(check("/a", 0)).expect(X::Checked).changes(vec![]),
                stat("/a", vec![Mzxid(3), Version(0), Pzxid(3)]),
                Zxid(4),
            ],
        ),
        Case::new(
            "reconfig on a standalone tree: disabled, then Unimplemented",
            vec![
                w(tree::WriteRequest::Reconfig(
                    proto::ReconfigRequest::default(),
                ))
                .by(NOBODY)
                .err(E::ReconfigDisabled),
                Zxid(3),
            ],
        ),
        Case::new(
            "reconfig enabled: session checked, then Unimplemented",
            vec![
                w(tree::WriteRequest::Reconfig(
                    proto::ReconfigRequest::default(),
                ))
                .by(NOBODY)
                .err(E::SessionExpired),
                w(tree::WriteRequest::Reconfig(
                    proto::ReconfigRequest::default(),
                ))
                .err(E::Unimplemented),
            ],
        )
        .features(tree::Features {
            reconfig_enabled: true,
            ..Default::default()
        }),
    ]
}

// --- sequential names ------------------------------------------------------

fn sequential() -> Vec<Case> {
    vec![
        Case::new(
            "sequence numbers come from the stored cversion",
            vec![
                w(create("/t", b"", 0)).ok(),
                w(create("/t/a", b"", 0)).ok(),
                w(create("/t/b", b"", 0)).ok(),
                w(create("/t/c-", b"", flags::SEQUENTIAL)).expect(X::Plain("/t/c-0000000002")),
                stat("/t", vec![Cversion(3), StoredCversion(3), NumChildren(3)]),
                // Deletes do not reset it (they move only the derived value).
                w(delete("/t/a", -1)).ok(),
                w(delete("/t/b", -1)).ok(),
                stat("/t", vec![Cversion(5), StoredCversion(3), NumChildren(1)]),
                // "/t/" is a valid prefix for sequential creates.
                w(create("/t/", b"", flags::SEQUENTIAL)).expect(X::Plain("/t/0000000003")),
                stat("/t", vec![Cversion(6), StoredCversion(4), NumChildren(2)]),
                // A failed create does not consume a number.
                w(create("/t/c-0000000002", b"", 0)).err(E::NodeExists),
                w(create("/t/x-", b"", flags::SEQUENTIAL)).expect(X::Plain("/t/x-0000000004")),
            ],
        ),
        Case::new(
            "sequence under the root and /zookeeper starts from their stored 0",
            vec![
                w(create("/s-", b"", flags::SEQUENTIAL)).expect(X::Plain("/s-0000000000")),
                w(create("/", b"", flags::SEQUENTIAL)).expect(X::Plain("/0000000001")),
                stat("/", vec![Cversion(1), StoredCversion(2), NumChildren(3)]),
                w(create("/zookeeper/q", b"", flags::SEQUENTIAL))
                    .expect(X::Plain("/zookeeper/q0000000000")),
            ],
        ),
        Case::new(
            "ephemeral sequential: name from the parent, owner the session",
            vec![
                w(create("/t", b"", 0)).ok(),
                w(create("/t/e-", b"", flags::EPHEMERAL_SEQUENTIAL))
                    .by(S2)
                    .expect(X::Plain("/t/e-0000000000")),
                w(create("/t/e-", b"", flags::EPHEMERAL_SEQUENTIAL))
                    .expect(X::Plain("/t/e-0000000001")),
                stat("/t/e-0000000000", vec![Owner(S2)]),
                stat("/t/e-0000000001", vec![Owner(S1)]),
            ],
        ),
        Case::new(
            "sequential create2 and container-parent numbering",
            vec![
                w(container("/c")).ok(),
                w(create2("/c/n-", flags::SEQUENTIAL)).expect(X::WithStat("/c/n-0000000000")),
                w(create2("/c/n-", flags::SEQUENTIAL)).expect(X::WithStat("/c/n-0000000001")),
            ],
        ),
    ]
}

// --- multi ------------------------------------------------------------------

fn multis() -> Vec<Case> {
    use proto::MultiOp;
    vec![
        Case::new(
            "multi is all-or-nothing: Ok before, the code, RuntimeInconsistency after",
            vec![
                w(create("/x", b"", 0)).ok(),
                w(multi(vec![
                    m::create("/a", 0),
                    m::set("/x", b"new", 0),
                    m::set("/missing", b"", -1),
                    m::create("/b", 0),
                ]))
                .expect(X::Multi(vec![
                    X::Err(E::Ok),
                    X::Err(E::Ok),
                    X::Err(E::NoNode),
                    X::Err(E::RuntimeInconsistency),
                ]))
                .changes(vec![]),
                Gone("/a"),
                Gone("/b"),
                stat("/x", vec![Version(0), Mzxid(3)]),
                Data("/x", Some(b"")),
                stat("/", vec![Pzxid(3), StoredCversion(1)]),
                Zxid(4),
            ],
        ),
        Case::new(
            "multi failing at its first op",
            vec![
                w(multi(vec![m::delete("/missing", -1), m::create("/a", 0)])).expect(X::Multi(
                    vec![X::Err(E::NoNode), X::Err(E::RuntimeInconsistency)],
                )),
                Gone("/a"),
                Zxid(3),
            ],
        ),
        Case::new(
            "multi: one zxid and time, ops see earlier ops",
            vec![
                w(multi(vec![
                    m::create("/a", 0),
                    m::create("/a/b", 0),
                    m::set("/a", b"v", 0),
                    m::check("/a", 1),
                ]))
                .expect(X::Multi(vec![
                    X::Plain("/a"),
                    X::Plain("/a/b"),
                    X::DataSet,
                    X::Checked,
                ]))
                .changes(vec![
                    Created("/a", "/"),
                    Created("/a/b", "/a"),
                    DataChanged("/a"),
                ]),
                stat(
                    "/a",
                    vec![
                        Czxid(3),
                        Mzxid(3),
                        Pzxid(3),
                        Ctime(3),
                        Mtime(3),
                        Version(1),
                        Cversion(1),
                        NumChildren(1),
                    ],
                ),
                stat("/a/b", vec![Czxid(3), Ctime(3)]),
                Zxid(3),
            ],
        ),
        Case::new(
            "multi: create then delete the same node",
            vec![
                w(multi(vec![m::create("/a", 0), m::delete("/a", 0)]))
                    .expect(X::Multi(vec![X::Plain("/a"), X::Deleted]))
                    .changes(vec![Created("/a", "/"), Deleted("/a", "/")]),
                Gone("/a"),
                stat(
                    "/",
                    vec![Cversion(1), StoredCversion(1), NumChildren(1), Pzxid(3)],
                ),
            ],
        ),
        Case::new(
            "multi: delete then re-create",
            vec![
                w(create("/a", b"old", 0)).ok(),
                w(set_data("/a", b"older", 0)).ok(),
                w(multi(vec![m::delete("/a", 1), m::create("/a", 0)]))
                    .expect(X::Multi(vec![X::Deleted, X::Plain("/a")])),
                stat("/a", vec![Czxid(5), Version(0), DataLength(0)]),
            ],
        ),
        Case::new(
            "multi: sequential creates get consecutive numbers",
            vec![
                w(create("/q", b"", 0)).ok(),
                w(multi(vec![
                    m::create("/q/s-", flags::SEQUENTIAL),
                    m::create("/q/s-", flags::SEQUENTIAL),
                    m::create("/q/e-", flags::EPHEMERAL_SEQUENTIAL),
                ]))
                .expect(X::Multi(vec![
                    X::Plain("/q/s-0000000000"),
                    X::Plain("/q/s-0000000001"),
                    X::Plain("/q/e-0000000002"),
                ])),
                stat("/q/e-0000000002", vec![Owner(S1)]),
            ],
        ),
        Case::new(
            "multi: versions move within the multi",
            vec![
                w(create("/a", b"", 0)).ok(),
                w(multi(vec![
                    m::set("/a", b"1", 0),
                    m::set("/a", b"2", 1),
                    m::check("/a", 2),
                ]))
                .expect(X::Multi(vec![X::DataSet, X::DataSet, X::Checked])),
                stat("/a", vec![Version(2), Mzxid(4)]),
                w(multi(vec![m::set("/a", b"3", -1), m::check("/a", 2)]))
                    .expect(X::Multi(vec![X::Err(E::Ok), X::Err(E::BadVersion)])),
                stat("/a", vec![Version(2), Mzxid(4)]),
                Data("/a", Some(b"2")),
            ],
        ),
        Case::new(
            "multi: a delete sees children created earlier in it",
            vec![
                w(create("/p", b"", 0)).ok(),
                w(multi(vec![m::create("/p/c", 0), m::delete("/p", -1)]))
                    .expect(X::Multi(vec![X::Err(E::Ok), X::Err(E::NotEmpty)])),
                Gone("/p/c"),
            ],
        ),
        Case::new(
            "multi: an ephemeral created earlier cannot get children",
            vec![
                w(multi(vec![
                    m::create("/e", flags::EPHEMERAL),
                    m::create("/e/x", 0),
                ]))
                .expect(X::Multi(vec![
                    X::Err(E::Ok),
                    X::Err(E::NoChildrenForEphemerals),
                ])),
                Gone("/e"),
                Ephemerals(S1, vec![]),
            ],
        ),
        Case::new(
            // Apache ZooKeeper 3.8.0 rebuilds each create of a multi from its
            // flags (`Op.create(.., flags)`): a create2 header gives a plain
            // create answered without a Stat (ZOOKEEPER-4026 changed this in
            // 3.8.4; Debian's reference server is 3.8.0).
            "multi: create2 inside a multi is answered like create",
            vec![
                w(multi(vec![m::create2("/a", 0), m::create("/b", 0)]))
                    .expect(X::Multi(vec![X::Plain("/a"), X::Plain("/b")])),
            ],
        ),
        Case::new(
            "multi: container flags make a container",
            vec![
                w(multi(vec![
                    m::create("/c1", flags::CONTAINER),
                    m::create_op(OpCode::CreateContainer, "/c2", flags::CONTAINER),
                    m::create2("/c3", flags::CONTAINER),
                ]))
                .expect(X::Multi(vec![
                    X::WithStat("/c1"),
                    X::WithStat("/c2"),
                    X::WithStat("/c3"),
                ])),
                Containers(vec!["/c1", "/c2", "/c3"]),
                stat("/c1", vec![Owner(0)]),
            ],
        ),
        Case::new(
            // 3.8.0: the op follows the flags, not the header.
            "multi: a createContainer op with persistent flags makes a persistent node",
            vec![
                w(multi(vec![m::create_op(
                    OpCode::CreateContainer,
                    "/c",
                    flags::PERSISTENT,
                )]))
                .expect(X::Multi(vec![X::Plain("/c")])),
                Containers(vec![]),
            ],
        ),
        Case::new(
            "multi: a createContainer op with ephemeral flags makes an ephemeral",
            vec![
                w(multi(vec![
                    m::create_op(OpCode::CreateContainer, "/c", flags::EPHEMERAL),
                    m::create("/c/x", 0),
                ]))
                .expect(X::Multi(vec![
                    X::Err(E::Ok),
                    X::Err(E::NoChildrenForEphemerals),
                ])),
                w(multi(vec![m::create_op(
                    OpCode::CreateContainer,
                    "/c",
                    flags::EPHEMERAL,
                )]))
                .expect(X::Multi(vec![X::Plain("/c")])),
                Containers(vec![]),
                Ephemerals(S1, vec!["/c"]),
            ],
        ),
        Case::new(
            "multi: TTL ops need the feature",
            vec![
                w(multi(vec![
                    m::ttl("/t", flags::TTL, 100),
                    m::create("/a", 0),
                ]))
                .expect(X::Multi(vec![
                    X::Err(E::Unimplemented),
                    X::Err(E::RuntimeInconsistency),
                ])),
                Ttls(vec![]),
            ],
        ),
        Case::new(
            "multi: TTL ops with the feature",
            vec![
                w(multi(vec![
                    m::ttl("/t", flags::TTL, 100),
                    m::ttl("/s-", flags::TTL_SEQUENTIAL, 100),
                ]))
                .expect(X::Multi(vec![
                    X::WithStat("/t"),
                    X::WithStat("/s-0000000001"),
                ])),
                Ttls(vec!["/t", "/s-0000000001"]),
                w(multi(vec![m::ttl("/u", flags::TTL, 0)]))
                    .expect(X::Multi(vec![X::Err(E::BadArguments)])),
            ],
        )
        .features(extended()),
        Case::new(
            // `Op.create(path, data, acl, flags, ttl)` keeps the TTL only for
            // TTL modes; otherwise it is an ordinary create (or container).
            "multi: a createTTL op with non-TTL flags is an ordinary create",
            vec![
                w(multi(vec![
                    m::ttl("/p", flags::PERSISTENT, 100),
                    m::ttl("/c", flags::CONTAINER, 100),
                    m::ttl("/x", 9, 100),
                ]))
                .expect(X::Multi(vec![
                    X::Err(E::Ok),
                    X::Err(E::Ok),
                    X::Err(E::BadArguments),
                ])),
                w(multi(vec![
                    m::ttl("/p", flags::PERSISTENT, 100),
                    m::ttl("/c", flags::CONTAINER, 100),
                ]))
                .expect(X::Multi(vec![X::Plain("/p"), X::WithStat("/c")])),
                Containers(vec!["/c"]),
                Ttls(vec![]),
            ],
        )
        .features(extended()),
        Case::new(
            // 3.8.0: an unknown flag reads as persistent while the record is
            // decoded and is refused per op when prepared (BadArguments). TTL
            // flags on a plain create fail the cast to CreateTTLRequest when
            // that op is reached: the whole request is a MarshallingError.
            "multi: invalid create flags",
            vec![
                w(multi(vec![m::create("/a", 0), m::create("/b", 7)]))
                    .expect(X::Multi(vec![X::Err(E::Ok), X::Err(E::BadArguments)]))
                    .changes(vec![]),
                Gone("/a"),
                w(multi(vec![m::create("/a", 0), m::create("/b", flags::TTL)]))
                    .err(E::MarshallingError),
                Gone("/a"),
                // Not reached after an earlier failure.
                w(multi(vec![
                    m::delete("/missing", -1),
                    m::create("/b", flags::TTL),
                ]))
                .expect(X::Multi(vec![
                    X::Err(E::NoNode),
                    X::Err(E::RuntimeInconsistency),
                ])),
                Zxid(5),
            ],
        )
        .features(extended()),
        Case::new(
            "multi from an unknown session",
            vec![
                w(multi(vec![m::create("/a", 0), m::check("/", -1)]))
                    .by(NOBODY)
                    .expect(X::Multi(vec![
                        X::Err(E::SessionExpired),
                        X::Err(E::RuntimeInconsistency),
                    ])),
                Gone("/a"),
            ],
        ),
        Case::new(
            "multi: an empty multi still consumes a zxid",
            vec![
                w(multi(vec![])).expect(X::Multi(vec![])).changes(vec![]),
                Zxid(3),
            ],
        ),
        Case::new(
            "multi: check-only multi",
            vec![
                w(multi(vec![m::check("/", 0), m::check("/zookeeper", -1)]))
                    .expect(X::Multi(vec![X::Checked, X::Checked])),
                w(multi(vec![m::check("/", 0), m::check("/zookeeper", 3)]))
                    .expect(X::Multi(vec![X::Err(E::Ok), X::Err(E::BadVersion)])),
            ],
        ),
        Case::new(
            "multi: a failed multi leaves no pending state behind",
            vec![
                w(multi(vec![
                    m::create("/a", 0),
                    m::create("/a/b", 0),
                    m::delete("/nope", -1),
                ]))
                .expect(X::Multi(vec![
                    X::Err(E::Ok),
                    X::Err(E::Ok),
                    X::Err(E::NoNode),
                ])),
                w(multi(vec![m::create("/a/b", 0)])).expect(X::Multi(vec![X::Err(E::NoNode)])),
                w(multi(vec![m::create("/a", 0)])).expect(X::Multi(vec![X::Plain("/a")])),
                stat("/", vec![StoredCversion(1)]),
            ],
        ),
        Case::new(
            "multi: ACLs are checked per op",
            vec![
                w(create_acl("/ro", world(perms::READ))).ok(),
                w(multi(vec![m::create("/a", 0), m::create("/ro/x", 0)]))
                    .expect(X::Multi(vec![X::Err(E::Ok), X::Err(E::NoAuth)])),
                w(multi(vec![MultiOp::Delete(proto::DeleteRequest {
                    path: "/ro".into(),
                    version: -1,
                })]))
                .expect(X::Multi(vec![X::Deleted])),
            ],
        ),
    ]
}

// --- sessions ------------------------------------------------------------------

fn sessions() -> Vec<Case> {
    vec![
        Case::new(
            "createSession records the session and consumes a zxid",
            vec![
                Zxid(2),
                Session(S1, true),
                Session(S2, true),
                Session(NOBODY, false),
                NodeCount(5),
            ],
        ),
        Case::new(
            "closeSession deletes the session's ephemerals only",
            vec![
                w(create("/e1", b"", flags::EPHEMERAL)).ok(),
                w(create("/p", b"", 0)).ok(),
                w(create("/p/e2", b"", flags::EPHEMERAL)).ok(),
                w(create("/s2", b"", flags::EPHEMERAL)).by(S2).ok(),
                Ephemerals(S1, vec!["/e1", "/p/e2"]),
                w(close_session())
                    .expect(X::SessionClosed)
                    .changes(vec![Deleted("/e1", "/"), Deleted("/p/e2", "/p")]),
                Gone("/e1"),
                Gone("/p/e2"),
                Exists("/p"),
                Exists("/s2"),
                stat(
                    "/p",
                    vec![Pzxid(7), Cversion(2), NumChildren(0), StoredCversion(1)],
                ),
                stat("/", vec![Pzxid(7), NumChildren(3)]),
                Session(S1, false),
                Session(S2, true),
                Ephemerals(S1, vec![]),
                Ephemerals(S2, vec!["/s2"]),
                // The closed session can no longer write.
                w(create("/x", b"", 0)).err(E::SessionExpired),
                w(create("/x", b"", flags::EPHEMERAL)).err(E::SessionExpired),
                w(set_data("/p", b"", -1)).err(E::SessionExpired),
                w(delete("/p", -1)).err(E::SessionExpired),
                w(multi(vec![m::check("/p", -1)]))
                    .expect(X::Multi(vec![X::Err(E::SessionExpired)])),
            ],
        ),
        Case::new(
            "closeSession with no ephemerals, and of an unknown session",
            vec![
                w(close_session())
                    .by(S2)
                    .expect(X::SessionClosed)
                    .changes(vec![]),
                Session(S2, false),
                w(close_session())
                    .by(NOBODY)
                    .expect(X::SessionClosed)
                    .changes(vec![]),
                Zxid(4),
            ],
        ),
        Case::new(
            "closeSession after another session deleted one of the ephemerals",
            vec![
                w(create("/e1", b"", flags::EPHEMERAL)).ok(),
                w(create("/e2", b"", flags::EPHEMERAL)).ok(),
                w(delete("/e1", -1)).by(S2).ok(),
                Ephemerals(S1, vec!["/e2"]),
                w(close_session())
                    .expect(X::SessionClosed)
                    .changes(vec![Deleted("/e2", "/")]),
                NodeCount(5),
            ],
        ),
    ]
}

// --- containers, TTL nodes, reaping ------------------------------------------

fn containers_and_ttls() -> Vec<Case> {
    vec![
        Case::new(
            "a container is reaped only after it had a child",
            vec![
                w(container("/c")).expect(X::WithStat("/c")),
                Tick(10_000_000),
                Reap(0, vec![]),
                w(create("/c/x", b"", 0)).ok(),
                Reap(0, vec![]),
                w(delete("/c/x", -1)).ok(),
                stat("/c", vec![StoredCversion(1), Cversion(2)]),
                Reap(0, vec!["/c"]),
            ],
        ),
        Case::new(
            "a never-used container is reaped after maxNeverUsedIntervalMs",
            vec![
                w(container("/c")).ok(),
                Tick(100),
                Reap(100, vec![]),
                Tick(1),
                Reap(100, vec!["/c"]),
                Reap(0, vec![]),
                // `ContainerManager` only tests `!= 0`: a negative interval reaps at once.
                Reap(-1, vec!["/c"]),
            ],
        ),
        Case::new(
            "a TTL node is reaped when now - mtime > ttl and it has no children",
            vec![
                w(ttl("/t", flags::TTL, 1000)).ok(),
                Tick(1000),
                Reap(0, vec![]),
                Tick(1),
                Reap(0, vec!["/t"]),
                // setData resets the clock.
                w(set_data("/t", b"x", -1)).ok(),
                Reap(0, vec![]),
                Tick(1001),
                Reap(0, vec!["/t"]),
                w(create("/t/x", b"", 0)).ok(),
                Tick(5000),
                Reap(0, vec![]),
                Reap(1, vec![]),
            ],
        )
        .features(extended()),
        Case::new(
            "plain persistent and ephemeral nodes are never reap candidates",
            vec![
                w(create("/p", b"", 0)).ok(),
                w(create("/e", b"", flags::EPHEMERAL)).ok(),
                Tick(1_000_000),
                Reap(1, vec![]),
            ],
        ),
        Case::new(
            "reaping: deleteContainer needs no session and fires the usual changes",
            vec![
                w(container("/c")).ok(),
                w(create("/c/x", b"", 0)).ok(),
                w(delete("/c/x", -1)).ok(),
                Reap(0, vec!["/c"]),
                w(delete_container("/c"))
                    .by(0)
                    .expect(X::Deleted)
                    .changes(vec![Deleted("/c", "/")]),
                Gone("/c"),
                Containers(vec![]),
                stat("/", vec![Pzxid(6), NumChildren(1)]),
                Reap(0, vec![]),
            ],
        ),
        Case::new(
            "reaping a TTL node",
            vec![
                w(ttl("/t", flags::TTL, 5)).ok(),
                Tick(6),
                Reap(0, vec!["/t"]),
                w(delete_container("/t")).by(0).expect(X::Deleted),
                Ttls(vec![]),
            ],
        )
        .features(extended()),
        Case::new(
            "containers and TTL nodes may have children of any kind",
            vec![
                w(container("/c")).ok(),
                w(ttl("/t", flags::TTL, 100)).ok(),
                w(create("/c/e", b"", flags::EPHEMERAL)).expect(X::Plain("/c/e")),
                w(create("/t/e", b"", flags::EPHEMERAL)).expect(X::Plain("/t/e")),
                w(container("/c/c")).ok(),
                w(ttl("/t/t", flags::TTL, 100)).ok(),
            ],
        )
        .features(extended()),
        Case::new(
            // The op decides: `create` with container flags commits a `CreateTxn`
            // (persistent), `createContainer` always a container.
            "top level: the op, not the flags, decides what is committed",
            vec![
                w(create("/p", b"", flags::CONTAINER)).expect(X::Plain("/p")),
                w(create_full(
                    OpCode::CreateContainer,
                    "/c",
                    Some(b""),
                    open(),
                    0,
                    -1,
                ))
                .expect(X::WithStat("/c")),
                Containers(vec!["/c"]),
                w(create_full(
                    OpCode::CreateContainer,
                    "/e",
                    Some(b""),
                    open(),
                    flags::EPHEMERAL,
                    -1,
                ))
                .expect(X::WithStat("/e")),
                Containers(vec!["/c", "/e"]),
                Ephemerals(S1, vec![]),
            ],
        ),
    ]
}

#[test]
fn fresh_tree_table() {
    run_table(&fresh_tree());
}

#[test]
fn stat_rules_table() {
    run_table(&stat_rules());
}

#[test]
fn sequential_table() {
    run_table(&sequential());
}

#[test]
fn multi_table() {
    run_table(&multis());
}

#[test]
fn sessions_table() {
    run_table(&sessions());
}

#[test]
fn containers_and_ttls_table() {
    run_table(&containers_and_ttls());
}
