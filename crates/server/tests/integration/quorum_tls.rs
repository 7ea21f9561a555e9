//! Quorum TLS (`sslQuorum`, `ssl.quorum.*`, `portUnification`) between
//! real processes: three members known as 127.0.0.1-3, each with a
//! certificate naming its own address (`tests/fixtures/tls/generate.sh`).
//! An ensemble turns quorum TLS on by three rolling restarts under write
//! load without losing a write or its quorum; then whatever is not a
//! member's certificate for the server it claims to be is refused on the
//! quorum port.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use consensus::wire::{self, Frame, Hello};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConnection, StreamOwned};

use crate::disk_loss::{Writers, assert_everywhere};
use crate::ensemble_support::LocalEnsemble;
use crate::tls::{client_config_presenting, fixture};

/// Member `id`'s stores: its own certificate, the test CA.
fn stores(id: u64) -> Vec<String> {
    vec![
        format!(
            "ssl.quorum.keyStore.location={}",
            fixture(&format!("member-{id}.pem"))
        ),
        format!("ssl.quorum.trustStore.location={}", fixture("ca.pem")),
    ]
}

/// What a connection to a quorum port came to.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The TLS handshake, or the connection, ended before any answer.
    Closed(String),
    /// The server read the Hello and said no.
    Refused(String),
    /// The server took the Hello and kept the connection.
    Taken,
}

/// Dials `addr` over TLS as server `from` (presenting `key_store`, if any)
/// and says Hello to `to`; what the server does with it.
fn probe_tls(addr: SocketAddr, key_store: Option<&str>, from: u64, to: u64) -> Outcome {
    let config = client_config_presenting(key_store.map(|store| {
        let path = fixture(store);
        let chain = CertificateDer::pem_file_iter(&path)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        (chain, PrivateKeyDer::from_pem_file(&path).unwrap())
    }));
    let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let name = ServerName::try_from(addr.ip().to_string()).unwrap();
    let connection = ClientConnection::new(config, name).unwrap();
    say_hello(StreamOwned::new(connection, socket), from, to)
}

/// Dials `addr` without TLS and says Hello.
fn probe_plain(addr: SocketAddr, from: u64, to: u64) -> Outcome {
    let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    say_hello(socket, from, to)
}

fn say_hello(mut stream: impl std::io::Read + std::io::Write, from: u64, to: u64) -> Outcome {
    let hello = Hello {
        ensemble: "conclave".into(),
        from,
        to,
    };
    let mut out = Vec::new();
    wire::encode_frame(&Frame::Hello(hello), &mut out);
    if let Err(e) = stream.write_all(&out).and_then(|()| stream.flush()) {
        return Outcome::Closed(e.to_string());
    }
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Outcome::Taken;
        }
        Err(e) => return Outcome::Closed(e.to_string()),
    }
    // A TLS server's alert to a plain dialler is no frame of ours.
    let Ok(len) = wire::frame_len(header, wire::DEFAULT_MAX_FRAME) else {
        return Outcome::Closed(format!("not a frame: {header:02x?}"));
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    match wire::decode_frame(&payload).unwrap() {
        Frame::Refused(reason) => Outcome::Refused(reason),
        other => panic!("a server answered a Hello with {other:?}"),
    }
}

/// Waits until every member's connections to the two others are up at
/// once (each dials in the mode its zoo.cfg says).
fn await_all_connected(ensemble: &LocalEnsemble, step: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = (0..3).all(|i| {
            let status = ensemble.ensemble_status(i);
            // Itself counts as connected.
            status.matches("\"connected\": true").count() == 3
        });
        if up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{step}: members not all connected: {:?}\n{}",
            (0..3)
                .map(|i| ensemble.ensemble_status(i))
                .collect::<Vec<_>>(),
            ensemble.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ZooKeeper's procedure for turning quorum TLS on, as a rolling restart
/// under write load: every server takes TLS and plain peers
/// (`portUnification=true`), then dials over TLS (`sslQuorum=true`), then
/// takes TLS peers only. Each restart leaves two of three members, a
/// quorum, serving; the writers' sessions live through all nine.
#[test]
fn quorum_tls_is_turned_on_by_rolling_restarts_without_losing_a_write() {
    let mut ensemble = LocalEnsemble::spawn_distinct_hosts(3, stores);
    ensemble.await_leader(Duration::from_secs(60));
    await_all_connected(&ensemble, "plain");
    // A plain ensemble takes a plain peer's Hello.
    assert_eq!(probe_plain(ensemble.quorum_addr(0), 7, 1), Outcome::Taken);
    let writers = Writers::start(&ensemble);
    writers.progress(100, &ensemble);

    for (step, line) in [
        ("port unification", "portUnification=true"),
        ("dialling over TLS", "sslQuorum=true"),
        ("TLS only", "portUnification=false"),
    ] {
        // The leader last, as an operator rolls.
        let leader = ensemble.await_leader(Duration::from_secs(30));
        let order: Vec<usize> = (0..3).filter(|i| *i != leader).chain([leader]).collect();
        for i in order {
            ensemble.terminate(i);
            writers.progress(30, &ensemble);
            ensemble.add_config_line(i, line);
            ensemble.restart(i);
            writers.moved(i, &ensemble);
            ensemble.await_leader(Duration::from_secs(30));
            writers.progress(30, &ensemble);
        }
        await_all_connected(&ensemble, step);
        writers.progress(50, &ensemble);
    }
    let acked = writers.stop();
    assert_everywhere(&ensemble, &acked);

    // TLS only now: a plain peer is closed before its Hello is read.
    let one = ensemble.quorum_addr(0);
    assert!(
        matches!(probe_plain(one, 2, 1), Outcome::Closed(_)),
        "a plain peer was read"
    );
    for log in (0..3).map(|i| ensemble.members[i].process.as_ref().unwrap().log()) {
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// Who gets to speak on a TLS-only quorum port: a member's certificate as
/// that member; not another member's certificate, not one for an address
/// no member has, not one from another CA, not none.
#[test]
fn only_a_members_own_certificate_speaks_for_it() {
    let ensemble = LocalEnsemble::spawn_distinct_hosts(3, |id| {
        let mut cfg = stores(id);
        cfg.push("sslQuorum=true".into());
        cfg
    });
    ensemble.await_leader(Duration::from_secs(60));
    await_all_connected(&ensemble, "TLS");
    let mut client = ensemble.client(0);
    assert_eq!(
        client.create("/written", b"over TLS").unwrap().error(),
        proto::ErrorCode::Ok
    );
    let one = ensemble.quorum_addr(0);

    // Member 2's certificate, claiming to be member 3.
    match probe_tls(one, Some("member-2.pem"), 3, 1) {
        Outcome::Refused(reason) => assert!(reason.contains("127.0.0.3"), "{reason}"),
        other => panic!("member 2's certificate spoke for member 3: {other:?}"),
    }
    // A certificate from the trusted CA for an address no member has,
    // claiming to be member 2.
    match probe_tls(one, Some("member-9.pem"), 2, 1) {
        Outcome::Refused(reason) => assert!(reason.contains("127.0.0.2"), "{reason}"),
        other => panic!("a non-member's certificate spoke for member 2: {other:?}"),
    }
    // The same, as a server that is no member (a joiner): it may say
    // Hello; the ensemble driver treats it as a non-member.
    assert_eq!(probe_tls(one, Some("member-9.pem"), 9, 1), Outcome::Taken);
    // Member 1's address, signed by another CA: the handshake fails, not
    // a byte is read as a frame.
    assert!(matches!(
        probe_tls(one, Some("outsider.pem"), 2, 1),
        Outcome::Closed(_)
    ));
    // No certificate at all; no TLS at all.
    assert!(matches!(probe_tls(one, None, 2, 1), Outcome::Closed(_)));
    assert!(matches!(probe_plain(one, 2, 1), Outcome::Closed(_)));

    // The ensemble is unharmed.
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let mut client = ensemble.client(leader);
    assert_eq!(
        client.create("/after", b"").unwrap().error(),
        proto::ErrorCode::Ok
    );
    let log = ensemble.members[0].process.as_ref().unwrap().log();
    assert!(log.contains("refused a peer connection"), "{log}");
}

/// A store that cannot be read stops the server with the key at fault;
/// `sslQuorum=true` never falls back to plain text.
#[test]
fn quorum_tls_that_cannot_be_set_up_stops_the_server() {
    let ensemble = LocalEnsemble::spawn_distinct_hosts(3, |id| {
        let mut cfg = stores(id);
        cfg.push("sslQuorum=true".into());
        if id == 1 {
            cfg.push("ssl.quorum.keyStore.location=/nonexistent/member.pem".into());
        }
        cfg
    });
    let mut ensemble = ensemble;
    let mut first = ensemble.members[0].process.take().expect("spawned");
    let status = first
        .wait_exit(Duration::from_secs(30))
        .expect("member 1 ran with a key store it cannot read");
    assert!(!status.success());
    let log = first.log();
    assert!(log.contains("/nonexistent/member.pem"), "{log}");
}
