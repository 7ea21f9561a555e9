//! The secure client port (`secureClientPort` with `ssl.*` key and trust
//! stores), side by side with Apache ZooKeeper 3.8 on the same zoo.cfg:
//! a client with a certificate signed by the trusted CA gets a session and
//! writes over TLS, in PEM and in JKS stores; a client without one is
//! turned away; the plaintext port keeps serving. Fixtures are in
//! `tests/fixtures/tls` (`generate.sh` makes them).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use proto::{ConnectResponse, OpCode, PathWatchRequest, Request, Response};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::raw_client::{connect_frame, create_request, frame, parse_reply, read_frame};
use crate::support::{DataDir, Kind, TestServer, free_port};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

pub(crate) fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// zoo.cfg lines for a secure client port on `port` with the given stores.
/// A password goes with JKS stores only: ZooKeeper takes a PEM key store
/// with a password to hold an encrypted key.
fn secure_cfg(port: u16, key_store: &str, trust_store: &str) -> Vec<String> {
    let mut cfg = vec![
        format!("secureClientPort={port}"),
        "secureClientPortAddress=127.0.0.1".to_owned(),
        // ZooKeeper serves TLS only through Netty; Conclave ignores the key.
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory".to_owned(),
        format!("ssl.keyStore.location={}", fixture(key_store)),
        format!("ssl.trustStore.location={}", fixture(trust_store)),
        "4lw.commands.whitelist=srvr,ruok".to_owned(),
    ];
    if key_store.ends_with(".jks") {
        cfg.push("ssl.keyStore.password=changeit".to_owned());
        cfg.push("ssl.trustStore.password=changeit".to_owned());
    }
    cfg
}

fn client_config(with_certificate: bool) -> Arc<ClientConfig> {
    client_config_presenting(with_certificate.then(|| {
        (
            vec![CertificateDer::from_pem_file(fixture("client.crt")).unwrap()],
            PrivateKeyDer::from_pem_file(fixture("client.key")).unwrap(),
        )
    }))
}

/// A client configuration that trusts the test CA and presents `identity`
/// (a certificate chain and its key), if given.
pub(crate) fn client_config_presenting(
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn new_session() -> Vec<u8> {
    connect_frame(0, vec![0; proto::PASSWORD_LEN], 10_000)
}

fn tls_connect(addr: SocketAddr, with_certificate: bool) -> std::io::Result<Tls> {
    let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    socket.set_read_timeout(Some(Duration::from_secs(20)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(client_config(with_certificate), name)
        .map_err(std::io::Error::other)?;
    Ok(StreamOwned::new(connection, socket))
}

/// Waits until something listens on `addr`: a server answering on its
/// plain port may open its secure port a moment later (ZooKeeper's Netty
/// factory does).
fn await_listening(addr: SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens a session over TLS, creates `path` with `data` and reads it back.
fn session_over_tls(addr: SocketAddr, path: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tls = tls_connect(addr, true)?;
    tls.write_all(&new_session())?;
    let response =
        ConnectResponse::decode(&read_frame(&mut tls)?).map_err(std::io::Error::other)?;
    assert_ne!(response.session_id, 0);

    let call = |tls: &mut Tls, xid: i32, request: &Request| -> std::io::Result<_> {
        let mut body = Vec::new();
        request.encode(xid, &mut body);
        tls.write_all(&frame(&body))?;
        let reply = parse_reply(&read_frame(tls)?)?;
        assert_eq!((reply.xid, reply.err), (xid, 0), "{request:?}");
        Ok(reply)
    };
    call(&mut tls, 1, &create_request(path, Some(data.to_vec()), 0))?;
    let reply = call(
        &mut tls,
        2,
        &Request::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        }),
    )?;
    match reply.response(OpCode::GetData) {
        Response::GetData(r) => Ok(r.data.unwrap_or_default()),
        other => panic!("getData answered {other:?}"),
    }
}

/// A four-letter word over TLS.
fn four_letter_over_tls(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut tls = tls_connect(addr, true)?;
    tls.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    // The server closes after answering; a missing close_notify is fine.
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A client without a certificate gets no session: the handshake fails,
/// or (TLS 1.3) the server closes before answering the connect request.
fn refused_without_certificate(addr: SocketAddr) -> bool {
    let Ok(mut tls) = tls_connect(addr, false) else {
        return true;
    };
    if tls.write_all(&new_session()).is_err() {
        return true;
    }
    read_frame(&mut tls).is_err()
}

fn check_secure_port(key_store: &str, trust_store: &str) {
    let zk_port = free_port();
    let cc_port = free_port();
    let (zk, cc) = (
        TestServer::start(
            Kind::ZooKeeper,
            &lines(&secure_cfg(zk_port, key_store, trust_store)),
        ),
        TestServer::start(
            Kind::Conclave,
            &lines(&secure_cfg(cc_port, key_store, trust_store)),
        ),
    );
    for (server, port) in [(&zk, zk_port), (&cc, cc_port)] {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let who = format!("{:?} with {key_store}", server.kind);
        await_listening(addr);
        let data = session_over_tls(addr, "/over-tls", b"secret")
            .unwrap_or_else(|e| panic!("{who}: {e}; log:\n{}", server.log()));
        assert_eq!(data, b"secret", "{who}");
        assert!(
            refused_without_certificate(addr),
            "{who}: served a client without a certificate"
        );
        let srvr = four_letter_over_tls(addr, "srvr").unwrap_or_else(|e| panic!("{who}: {e}"));
        assert!(srvr.contains("Mode: standalone"), "{who}: {srvr}");
        // The plaintext port sees what was written over TLS.
        let mut plain = crate::raw_client::RawClient::connect(server.addr, 10_000).unwrap();
        let (read, _) = plain.get_data("/over-tls").unwrap().unwrap();
        assert_eq!(read.as_deref(), Some(&b"secret"[..]), "{who}");
    }
}

fn lines(cfg: &[String]) -> Vec<&str> {
    cfg.iter().map(String::as_str).collect()
}

#[test]
fn pem_stores_serve_clients_with_certificates_like_zookeeper() {
    check_secure_port("server.pem", "ca.pem");
}

#[test]
fn jks_stores_serve_clients_with_certificates_like_zookeeper() {
    check_secure_port("server.jks", "truststore.jks");
}

#[test]
fn a_store_that_cannot_be_read_stops_the_server_with_its_reason() {
    let cases = [
        ("ssl.keyStore.password=wrong", "integrity check failed"),
        (
            "ssl.keyStore.location=/nonexistent/server.jks",
            "/nonexistent/server.jks",
        ),
        ("ssl.keyStore.type=PKCS12", "PKCS12"),
    ];
    for (line, expected) in cases {
        let dir = DataDir::new("tls-bad-store");
        let mut cfg = secure_cfg(free_port(), "server.jks", "truststore.jks");
        let key = line.split('=').next().unwrap();
        cfg.retain(|l| !l.starts_with(&format!("{key}=")));
        cfg.push(line.to_owned());
        let exited = dir.run_to_exit(&lines(&cfg), Duration::from_secs(30));
        assert!(!exited.status.success(), "{line}: started anyway");
        let output = format!("{}{}", exited.stdout, exited.stderr);
        assert!(
            output.contains(expected),
            "{line}: output does not say {expected:?}:\n{output}"
        );
    }
}

/// `GET path` on the admin port, over TLS (with the test client
/// certificate, or none) or plain; the response's status line.
fn admin_get(port: u16, path: &str, tls: Option<bool>) -> std::io::Result<String> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let read = match tls {
        Some(with_certificate) => {
            let mut stream = tls_connect(addr, with_certificate)?;
            stream.write_all(request.as_bytes())?;
            stream.read_to_end(&mut out)
        }
        None => {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(request.as_bytes())?;
            stream.read_to_end(&mut out)
        }
    };
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.lines().next() {
        Some(status) if status.starts_with("HTTP/") => Ok(status.to_owned()),
        _ => Err(std::io::Error::other(format!(
            "not an HTTP response: {text:?}"
        ))),
    }
}

fn admin_server(port: u16, lines: &[&str]) -> TestServer {
    let mut cfg = vec![
        format!("admin.serverPort={port}"),
        format!("ssl.quorum.keyStore.location={}", fixture("server.pem")),
        format!("ssl.quorum.trustStore.location={}", fixture("ca.pem")),
    ];
    cfg.extend(lines.iter().map(|l| (*l).to_owned()));
    let cfg: Vec<&str> = cfg.iter().map(String::as_str).collect();
    TestServer::start(Kind::Conclave, &cfg)
}

/// The admin port speaks HTTPS with the `ssl.quorum.*` key store, as
/// ZooKeeper's AdminServer does: only HTTPS with `admin.forceHttps`, both
/// with `admin.portUnification`, and only clients with a certificate from
/// the quorum trust store with `admin.needClientAuth`.
#[test]
fn the_admin_port_speaks_https_when_told() {
    const OK: &str = "HTTP/1.1 200 OK";
    let port = free_port();
    let server = admin_server(port, &["admin.forceHttps=true"]);
    assert_eq!(admin_get(port, "/commands/ruok", Some(false)).unwrap(), OK);
    assert!(
        admin_get(port, "/commands/ruok", None).is_err(),
        "plain HTTP was answered on an HTTPS-only admin port"
    );
    drop(server);

    let port = free_port();
    let server = admin_server(port, &["admin.portUnification=true"]);
    assert_eq!(admin_get(port, "/readyz", Some(false)).unwrap(), OK);
    assert_eq!(admin_get(port, "/readyz", None).unwrap(), OK);
    drop(server);

    let port = free_port();
    let server = admin_server(
        port,
        &["admin.forceHttps=true", "admin.needClientAuth=true"],
    );
    assert_eq!(admin_get(port, "/metrics", Some(true)).unwrap(), OK);
    assert!(
        admin_get(port, "/metrics", Some(false)).is_err(),
        "a client without a certificate was answered"
    );
    drop(server);
}

/// One request over an open TLS session; its reply.
fn tls_call(tls: &mut Tls, xid: i32, request: &Request) -> crate::raw_client::Reply {
    let mut body = Vec::new();
    request.encode(xid, &mut body);
    tls.write_all(&frame(&body)).unwrap();
    parse_reply(&read_frame(tls).unwrap()).unwrap()
}

/// ZooKeeper's `x509` scheme, side by side: with its
/// `X509AuthenticationProvider` configured, a TLS client's certificate
/// subject (RFC 2253, as Java names it) is the identity `x509:<DN>`; an
/// `x509` ACL lets that client in and keeps a plaintext client out.
#[test]
fn a_client_certificate_is_an_x509_identity_like_zookeeper() {
    let mut seen = Vec::new();
    for kind in [Kind::ZooKeeper, Kind::Conclave] {
        let port = free_port();
        let mut cfg = secure_cfg(port, "server.pem", "ca.pem");
        cfg.push(
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider"
                .to_owned(),
        );
        let server = TestServer::start(kind, &lines(&cfg));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        await_listening(addr);
        let mut tls = tls_connect(addr, true).unwrap();
        tls.write_all(&new_session()).unwrap();
        ConnectResponse::decode(&read_frame(&mut tls).unwrap()).unwrap();

        let who = tls_call(&mut tls, 1, &Request::WhoAmI);
        let Response::WhoAmI(who) = who.response(OpCode::WhoAmI) else {
            panic!("{kind:?}: whoAmI answered {who:?}");
        };
        let mut ids: Vec<(String, String)> = who
            .client_info
            .into_iter()
            .map(|i| (i.auth_scheme, i.user))
            .collect();
        ids.sort();

        let mut create = create_request("/mine", Some(b"x".to_vec()), 0);
        if let Request::Create2(c) = &mut create {
            c.acl = vec![proto::Acl::new(proto::perms::ALL, "x509", "CN=test client")];
        }
        let created = tls_call(&mut tls, 2, &create).err;
        let read_by_owner = tls_call(
            &mut tls,
            3,
            &Request::GetData(PathWatchRequest {
                path: "/mine".into(),
                watch: false,
            }),
        )
        .err;
        let mut plain = crate::raw_client::RawClient::connect(server.addr, 10_000).unwrap();
        let read_by_other = plain.get_data("/mine").unwrap().err();
        seen.push((kind, ids, created, read_by_owner, read_by_other));
    }
    let (_, zk_ids, zk_created, zk_owner, zk_other) = &seen[0];
    let (_, cc_ids, cc_created, cc_owner, cc_other) = &seen[1];
    assert!(
        zk_ids.contains(&("x509".to_owned(), "CN=test client".to_owned())),
        "ZooKeeper: {zk_ids:?}"
    );
    assert_eq!(
        (cc_ids, cc_created, cc_owner, cc_other),
        (zk_ids, zk_created, zk_owner, zk_other),
        "Conclave differs from ZooKeeper"
    );
    assert_eq!((*cc_created, *cc_owner), (0, 0));
    assert_eq!(*cc_other, Some(proto::ErrorCode::NoAuth));
}
