//! ACL semantics through prepare + apply: world, `auth` expansion (digest
//! ids only, never ip), digest and ip matching, super, skipACL
//! (`ZooKeeperServer.checkACL`, `PrepRequestProcessor.fixupACL`,
//! `DigestAuthenticationProvider`, `IPAuthenticationProvider`).
//!
//! Sessions S1 and S2 exist; both connections start as `ip:127.0.0.1`.

mod support;

use proto::{ErrorCode as E, Id, perms};
use support::*;
use support::{Expect as X, Step::*};

fn alice() -> Id {
    digest_id("alice:secret")
}

fn bob() -> Id {
    digest_id("bob:pw")
}

fn digest_acl(perms: i32, id: &Id) -> proto::Acl {
    acl(perms, "digest", &id.id)
}

fn acl_cases() -> Vec<Case> {
    vec![
        Case::new(
            "world ACL with limited perms",
            vec![
                w(create_acl("/r", world(perms::READ))).ok(),
                w(create("/r/x", b"", 0)).err(E::NoAuth),
                w(set_data("/r", b"", -1)).err(E::NoAuth),
                w(set_acl("/r", open(), -1)).err(E::NoAuth),
                w(check("/r", 0)).expect(X::Checked),
                // delete needs DELETE on the parent (the root), not on /r.
                w(delete("/r", -1)).expect(X::Deleted),
            ],
        ),
        Case::new(
            "perm bits are checked one by one",
            vec![
                w(create_acl("/c", world(perms::CREATE))).ok(),
                w(create("/c/x", b"", 0)).ok(),
                w(set_data("/c", b"", -1)).err(E::NoAuth),
                w(check("/c", -1)).err(E::NoAuth),
                w(delete("/c/x", -1)).err(E::NoAuth),
                w(create_acl("/d", world(perms::DELETE | perms::CREATE))).ok(),
                w(create("/d/x", b"", 0)).ok(),
                w(delete("/d/x", -1)).expect(X::Deleted),
                // Unknown bits are stored as given.
                w(create_acl("/odd", world(0x40 | perms::READ))).ok(),
                Acl("/odd", world(0x40 | perms::READ)),
                w(create_acl("/none", world(0))).ok(),
                w(check("/none", -1)).err(E::NoAuth),
            ],
        ),
        Case::new(
            "auth expands to the caller's digest ids, never its ip",
            vec![
                w(create_acl("/a", vec![acl(perms::ALL, "auth", "")])).err(E::InvalidAcl),
                Auth(S1, alice()),
                w(create_acl("/a", vec![acl(perms::ALL, "auth", "ignored")])).ok(),
                Acl("/a", vec![digest_acl(perms::ALL, &alice())]),
                w(set_data("/a", b"", -1)).by(S2).err(E::NoAuth),
                w(set_data("/a", b"", -1)).expect(X::DataSet),
                w(create_acl("/b", vec![acl(perms::ALL, "auth", "")]))
                    .by(S2)
                    .err(E::InvalidAcl),
            ],
        ),
        Case::new(
            "auth expands to every digest id, with the entry's perms",
            vec![
                Auth(S1, alice()),
                Auth(S1, bob()),
                Auth(S1, Id::new("ip", "10.0.0.1")),
                w(create_acl(
                    "/a",
                    vec![acl(perms::READ | perms::WRITE, "auth", "")],
                ))
                .ok(),
                Acl(
                    "/a",
                    vec![
                        digest_acl(perms::READ | perms::WRITE, &alice()),
                        digest_acl(perms::READ | perms::WRITE, &bob()),
                    ],
                ),
            ],
        ),
        Case::new(
            "duplicates are removed before expansion, not after",
            vec![
                Auth(S1, alice()),
                w(create_acl(
                    "/a",
                    vec![
                        acl(perms::ALL, "world", "anyone"),
                        acl(perms::ALL, "world", "anyone"),
                        acl(perms::READ, "auth", ""),
                        digest_acl(perms::READ, &alice()),
                        acl(perms::READ, "auth", ""),
                    ],
                ))
                .ok(),
                Acl(
                    "/a",
                    vec![
                        acl(perms::ALL, "world", "anyone"),
                        digest_acl(perms::READ, &alice()),
                        digest_acl(perms::READ, &alice()),
                    ],
                ),
            ],
        ),
        Case::new(
            "a super identity is not expanded by auth",
            vec![
                Auth(S1, super_id()),
                w(create_acl("/a", vec![acl(perms::ALL, "auth", "")])).err(E::InvalidAcl),
                Auth(S1, alice()),
                w(create_acl("/a", vec![acl(perms::ALL, "auth", "")])).ok(),
                Acl("/a", vec![digest_acl(perms::ALL, &alice())]),
            ],
        ),
        Case::new(
            "digest ACLs match the exact digest id",
            vec![
                w(create_acl("/d", vec![digest_acl(perms::ALL, &bob())])).ok(),
                w(set_data("/d", b"", -1)).err(E::NoAuth),
                Auth(S1, digest_id("bob:wrong")),
                w(set_data("/d", b"", -1)).err(E::NoAuth),
                Auth(S1, digest_id("bob:pw")),
                w(set_data("/d", b"", -1)).expect(X::DataSet),
                // A digest id needs exactly two non-empty `:` parts.
                w(create_acl("/e", vec![acl(perms::ALL, "digest", "bob:x:y")])).err(E::InvalidAcl),
                w(create_acl("/e", vec![acl(perms::ALL, "digest", "bob:")])).err(E::InvalidAcl),
                w(create_acl("/e", vec![acl(perms::ALL, "digest", "bob:x:")])).ok(),
            ],
        ),
        Case::new(
            "ip ACLs match the connection's addresses",
            vec![
                w(create_acl("/ip", vec![acl(perms::ALL, "ip", "10.0.0.0/8")])).ok(),
                w(set_data("/ip", b"", -1)).err(E::NoAuth),
                Auth(S2, Id::new("ip", "10.1.2.3")),
                w(set_data("/ip", b"", -1)).by(S2).expect(X::DataSet),
                w(create_acl("/lo", vec![acl(perms::ALL, "ip", LOCALHOST)])).ok(),
                w(set_data("/lo", b"", -1)).expect(X::DataSet),
                w(create_acl(
                    "/bad",
                    vec![acl(perms::ALL, "ip", "10.0.0.0/33")],
                ))
                .err(E::InvalidAcl),
                w(create_acl("/bad", vec![acl(perms::ALL, "ip", "::1")])).err(E::InvalidAcl),
            ],
        ),
        Case::new(
            "super bypasses every ACL but not the ACL validation",
            vec![
                Auth(S1, alice()),
                w(create_acl("/a", vec![digest_acl(perms::READ, &alice())])).ok(),
                Auth(S2, super_id()),
                w(set_data("/a", b"x", -1)).by(S2).expect(X::DataSet),
                w(set_acl("/a", open(), -1)).by(S2).expect(X::AclSet),
                w(set_data("/zookeeper/config", b"", -1))
                    .by(S2)
                    .expect(X::DataSet),
                w(set_acl("/a", vec![], -1)).by(S2).err(E::InvalidAcl),
                w(create_acl("/b", vec![acl(perms::ALL, "super", "")]))
                    .by(S2)
                    .err(E::InvalidAcl),
            ],
        ),
        Case::new(
            "setACL expands auth too",
            vec![
                w(create("/a", b"", 0)).ok(),
                Auth(S1, bob()),
                w(set_acl("/a", vec![acl(perms::ALL, "auth", "")], 0)).expect(X::AclSet),
                Acl("/a", vec![digest_acl(perms::ALL, &bob())]),
                w(set_data("/a", b"", -1)).by(S2).err(E::NoAuth),
            ],
        ),
        Case::new(
            "the ACLs of a node's creator do not leak to its children",
            vec![
                w(create_acl("/p", world(perms::CREATE))).ok(),
                w(create("/p/x", b"", 0)).ok(),
                w(set_data("/p/x", b"", -1)).expect(X::DataSet),
                w(set_data("/p", b"", -1)).err(E::NoAuth),
            ],
        ),
    ]
}

fn skip_acl_cases() -> Vec<Case> {
    vec![
        Case::new(
            "skipACL: every permission check passes, ACL validation still applies",
            vec![
                w(set_data("/zookeeper/config", b"x", -1)).expect(X::DataSet),
                w(create_acl("/r", world(0))).ok(),
                w(create("/r/x", b"", 0)).ok(),
                w(delete("/r/x", -1)).expect(X::Deleted),
                w(set_acl("/r", open(), -1)).expect(X::AclSet),
                w(create_acl("/s", vec![])).err(E::InvalidAcl),
                w(create_acl("/s", vec![acl(perms::ALL, "auth", "")])).err(E::InvalidAcl),
            ],
        )
        .features(tree::Features {
            skip_acl: true,
            ..Default::default()
        }),
    ]
}

#[test]
fn acl_table() {
    run_table(&acl_cases());
}

#[test]
fn skip_acl_table() {
    run_table(&skip_acl_cases());
}

#[test]
fn digest_formula() {
    // `DigestAuthenticationProvider.generateDigest`:
    // user ":" base64(sha1("user:password")).
    assert_eq!(
        tree::acl::digest("super:test"),
        "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    );
    // The user part ends at the first colon; the hash covers everything.
    let d = tree::acl::digest("a:b:c");
    assert!(d.starts_with("a:") && d != tree::acl::digest("a:b"));
    assert_ne!(
        tree::acl::digest("alice:secret"),
        tree::acl::digest("alice:Secret")
    );
}

/// (scheme, auth bytes, configured superDigest, identities added or error)
type AuthRow<'a> = (&'a str, &'a [u8], Option<&'a str>, Result<Vec<Id>, E>);

#[test]
fn authentication_table() {
    use tree::acl::authenticate;
    let super_digest = tree::acl::digest("super:test");
    let table: Vec<AuthRow<'_>> = vec![
        (
            "digest",
            b"super:test",
            Some(super_digest.as_str()),
            Ok(vec![super_id(), Id::new("digest", super_digest.clone())]),
        ),
        (
            "digest",
            b"super:test",
            None,
            Ok(vec![Id::new("digest", super_digest.clone())]),
        ),
        (
            "digest",
            b"super:wrong",
            Some(super_digest.as_str()),
            Ok(vec![digest_id("super:wrong")]),
        ),
        (
            "digest",
            b"bob:pw",
            Some(super_digest.as_str()),
            Ok(vec![bob()]),
        ),
        ("ip", b"ignored", None, Ok(vec![Id::new("ip", "10.9.8.7")])),
        ("sasl", b"x", None, Err(E::AuthFailed)),
        ("world", b"anyone", None, Err(E::AuthFailed)),
        ("super", b"", None, Err(E::AuthFailed)),
    ];
    for (scheme, auth, superdigest, expected) in table {
        assert_eq!(
            authenticate(scheme, auth, "10.9.8.7", superdigest),
            expected,
            "authenticate({scheme}, {auth:?})"
        );
    }
}
