//! Client SASL (DIGEST-MD5) against a real `conclave-server`, with the
//! JAAS `Server` section ZooKeeper reads (`java.security.auth.login.config`
//! in zoo.cfg) and `sessionRequireClientSASLAuth=true`: a connection that
//! has not logged in gets SessionClosedRequireSaslAuth for its first
//! request and is closed; one that logged in is `sasl:<user>` for ACLs.
//! The DIGEST-MD5 client here follows RFC 2831 (kazoo's own SASL tests run
//! against Conclave and ZooKeeper in `tests/kazoo_suite`).

use md5::{Digest as _, Md5};
use proto::{ErrorCode, OpCode, Request, Response, SaslRequest};

use crate::raw_client::{RawClient, create_request};
use crate::support::{Kind, TestServer};

const JAAS: &str = r#"Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_alice="alice_password";
};
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn field<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
    let end = challenge[start..].find('"').expect("closing quote");
    &challenge[start..start + end]
}

fn sasl(client: &mut RawClient, token: &[u8]) -> Result<Vec<u8>, ErrorCode> {
    let reply = client
        .call(&Request::Sasl(SaslRequest {
            token: Some(token.to_vec()),
        }))
        .map_err(|_| ErrorCode::ConnectionLoss)?;
    match reply.error() {
        ErrorCode::Ok => match reply.response(OpCode::Sasl) {
            Response::Sasl(r) => Ok(r.token.unwrap_or_default()),
            other => panic!("a SASL reply of {other:?}"),
        },
        err => Err(err),
    }
}

/// Logs in as `user`; the server's last token, or its error.
fn login(client: &mut RawClient, user: &str, password: &str) -> Result<String, ErrorCode> {
    let challenge = String::from_utf8(sasl(client, b"")?).unwrap();
    let (realm, nonce) = (field(&challenge, "realm"), field(&challenge, "nonce"));
    let cnonce = "0123456789";
    let uri = "zookeeper/zk-sasl-md5";
    let key = Md5::digest(format!("{user}:{realm}:{password}"));
    let a1 = [key.as_slice(), format!(":{nonce}:{cnonce}").as_bytes()].concat();
    let ha1 = hex(&Md5::digest(&a1));
    let kd = |a2: String| {
        hex(&Md5::digest(format!(
            "{ha1}:{nonce}:00000001:{cnonce}:auth:{}",
            hex(&Md5::digest(a2))
        )))
    };
    let response = format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
         cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={},qop=auth",
        kd(format!("AUTHENTICATE:{uri}"))
    );
    let last = String::from_utf8(sasl(client, response.as_bytes())?).unwrap();
    assert_eq!(last, format!("rspauth={}", kd(format!(":{uri}"))));
    Ok(last)
}

#[test]
fn sasl_logins_are_required_and_become_acl_identities() {
    let jaas = std::env::temp_dir().join(format!("conclave-jaas-{}.conf", std::process::id()));
    std::fs::write(&jaas, JAAS).unwrap();
    let server = TestServer::start(
        Kind::Conclave,
        &[
            &format!("java.security.auth.login.config={}", jaas.display()),
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            "sessionRequireClientSASLAuth=true",
        ],
    );

    // No login: the first request is refused and the connection closed.
    let mut anonymous = RawClient::connect(server.addr, 10_000).unwrap();
    let reply = anonymous.call(&create_request("/x", None, 0)).unwrap();
    assert_eq!(reply.error(), ErrorCode::SessionClosedRequireSaslAuth);
    assert!(anonymous.call(&create_request("/x", None, 0)).is_err());

    // A wrong password: AuthFailed, closed.
    let mut wrong = RawClient::connect(server.addr, 10_000).unwrap();
    assert_eq!(
        login(&mut wrong, "alice", "not her password"),
        Err(ErrorCode::AuthFailed)
    );

    // Alice logs in, and a node only she may read is hers.
    let mut alice = RawClient::connect(server.addr, 10_000).unwrap();
    login(&mut alice, "alice", "alice_password").unwrap();
    let mut request = create_request("/alice", Some(b"hers".to_vec()), 0);
    let Request::Create2(create) = &mut request else {
        panic!("create_request makes a create2");
    };
    create.acl = vec![proto::Acl::new(proto::perms::ALL, "sasl", "alice")];
    assert_eq!(alice.call(&request).unwrap().error(), ErrorCode::Ok);
    let (data, _) = alice.get_data("/alice").unwrap().unwrap();
    assert_eq!(data.as_deref(), Some(&b"hers"[..]));

    // Another user who logged in may not.
    let mut other = RawClient::connect(server.addr, 10_000).unwrap();
    login(&mut other, "super", "super_secret").unwrap();
    assert_eq!(
        other.get_data("/alice").unwrap().unwrap_err(),
        ErrorCode::NoAuth
    );
    let _ = std::fs::remove_file(&jaas);
}
