//! Byte-level behaviour of Conclave on its own: malformed input closes only
//! the offending connection, and everyone else keeps being served.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use proto::{ConnectRequest, ConnectResponse, ErrorCode, PathRequest, Request};

use crate::support::{Kind, TestServer, four_letter};

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn connect(server: &TestServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut body = Vec::new();
    ConnectRequest {
        timeout_ms: 10_000,
        password: vec![0; 16],
        read_only: Some(false),
        ..Default::default()
    }
    .encode(&mut body);
    s.write_all(&frame(&body)).unwrap();
    let response = ConnectResponse::decode(&read_frame(&mut s).unwrap()).unwrap();
    assert!(response.session_id != 0);
    s
}

fn closed(s: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(s.read(&mut byte), Ok(0) | Err(_))
}

fn sync_works(s: &mut TcpStream) -> bool {
    let mut body = Vec::new();
    Request::Sync(PathRequest { path: "/".into() }).encode(7, &mut body);
    s.write_all(&frame(&body)).is_ok()
        && read_frame(s).is_some_and(|r| r[..4] == 7i32.to_be_bytes())
}

#[test]
fn garbage_closes_only_the_offending_connection() {
    let server = TestServer::start(Kind::Conclave, &["jute.maxbuffer=4096"]);
    let mut bystander = connect(&server);

    // An oversized frame: refused from its length alone.
    let mut big = connect(&server);
    big.write_all(&(1_000_000i32).to_be_bytes()).unwrap();
    assert!(
        closed(&mut big),
        "oversized frame must close the connection"
    );

    // A negative length.
    let mut negative = connect(&server);
    negative.write_all(&(-7i32).to_be_bytes()).unwrap();
    assert!(closed(&mut negative));

    // A frame too short to hold a request header.
    let mut short = connect(&server);
    short.write_all(&frame(&[1, 2])).unwrap();
    assert!(closed(&mut short));

    // A malformed connect request.
    let mut bad_connect = TcpStream::connect(server.addr).unwrap();
    bad_connect
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    bad_connect.write_all(&frame(&[0xff; 10])).unwrap();
    assert!(closed(&mut bad_connect));

    // An unknown op code: Unimplemented, then closed.
    let mut unknown = connect(&server);
    let mut body = 1i32.to_be_bytes().to_vec();
    body.extend_from_slice(&999i32.to_be_bytes());
    unknown.write_all(&frame(&body)).unwrap();
    let reply = read_frame(&mut unknown).unwrap();
    assert_eq!(
        i32::from_be_bytes(reply[12..16].try_into().unwrap()),
        ErrorCode::Unimplemented.code()
    );
    assert!(closed(&mut unknown));

    // A body that does not parse: MarshallingError, connection stays.
    let mut malformed = connect(&server);
    let mut body = 3i32.to_be_bytes().to_vec();
    body.extend_from_slice(&4i32.to_be_bytes()); // getData
    body.extend_from_slice(&100i32.to_be_bytes()); // path length beyond the frame
    malformed.write_all(&frame(&body)).unwrap();
    let reply = read_frame(&mut malformed).unwrap();
    assert_eq!(
        i32::from_be_bytes(reply[12..16].try_into().unwrap()),
        ErrorCode::MarshallingError.code()
    );
    assert!(sync_works(&mut malformed));

    // Arbitrary bytes instead of a handshake.
    let mut noise = TcpStream::connect(server.addr).unwrap();
    noise
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    noise.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed(&mut noise));

    assert!(
        sync_works(&mut bystander),
        "the well-behaved client keeps being served"
    );
    assert!(
        four_letter(server.addr, "srvr")
            .unwrap()
            .contains("Mode: standalone")
    );
}

#[test]
fn max_client_cnxns_limits_connections_per_address() {
    let server = TestServer::start(Kind::Conclave, &["maxClientCnxns=2"]);
    let mut a = connect(&server);
    let mut b = connect(&server);
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(
        closed(&mut c),
        "the third connection from one address is closed"
    );
    assert!(sync_works(&mut a) && sync_works(&mut b));
}
