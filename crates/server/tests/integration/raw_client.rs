//! A small blocking ZooKeeper client on the `proto` codec, for tests that
//! need what a real client library hides: many requests in flight on one
//! connection, exactly which of them were answered (and with what) when the
//! server died, and re-opening a session by id and password after a
//! restart.

use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use proto::jute::{Jute as _, Reader};
use proto::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, ErrorCode, Id, OpCode, PathRequest,
    PathWatchRequest, ReplyHeader, Request, Response, Stat, perms,
};

/// `world:anyone` with every permission.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// A node's data and Stat, or why it could not be read.
pub type DataResult = Result<(Option<Vec<u8>>, Stat), ErrorCode>;

/// One reply: its header and the undecoded body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn error(&self) -> ErrorCode {
        ErrorCode::from_code(self.err).unwrap_or(ErrorCode::SystemError)
    }

    /// Decodes the body as the response to `op` (Empty after an error).
    pub fn response(&self, op: OpCode) -> Response {
        if self.err != 0 {
            return Response::Empty;
        }
        Response::decode(op, &self.body)
            .unwrap_or_else(|e| panic!("undecodable {op:?} reply {self:?}: {e}"))
    }
}

/// A connection with an established session.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub timeout_ms: i32,
    next_xid: i32,
}

/// How a connect attempt ended.
#[derive(Debug)]
pub enum Connected {
    Session(RawClient),
    /// The server answered that the session is expired (timeout 0).
    Expired,
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A framed connect request: a new session (id 0, zero password) or the
/// re-opening of one.
pub fn connect_frame(session_id: i64, password: Vec<u8>, timeout_ms: i32) -> Vec<u8> {
    let mut body = Vec::new();
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms,
        session_id,
        password,
        read_only: Some(false),
    }
    .encode(&mut body);
    frame(&body)
}

pub fn read_frame(s: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&len) {
        return Err(std::io::Error::other(format!("bad frame length {len}")));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

pub fn parse_reply(bytes: &[u8]) -> std::io::Result<Reply> {
    let mut r = Reader::new(bytes);
    let header = ReplyHeader::decode(&mut r).map_err(std::io::Error::other)?;
    Ok(Reply {
        xid: header.xid,
        zxid: header.zxid,
        err: header.err,
        body: bytes[16..].to_vec(),
    })
}

/// Reads the next reply to a request, skipping watch notifications and ping
/// replies.
fn read_reply(s: &mut TcpStream) -> std::io::Result<Reply> {
    loop {
        let reply = parse_reply(&read_frame(s)?)?;
        if reply.xid != proto::xid::NOTIFICATION && reply.xid != proto::xid::PING {
            return Ok(reply);
        }
    }
}

impl RawClient {
    /// Opens a new session.
    pub fn connect(addr: SocketAddr, timeout_ms: i32) -> std::io::Result<RawClient> {
        match Self::handshake(addr, 0, vec![0; proto::PASSWORD_LEN], timeout_ms)? {
            Connected::Session(client) => Ok(client),
            Connected::Expired => Err(std::io::Error::other("new session refused")),
        }
    }

    /// Re-opens an existing session.
    pub fn resume(
        addr: SocketAddr,
        session_id: i64,
        password: &[u8],
        timeout_ms: i32,
    ) -> std::io::Result<Connected> {
        Self::handshake(addr, session_id, password.to_vec(), timeout_ms)
    }

    /// A server that does not answer within two thirds of the session
    /// timeout is given up on, as ZooKeeper's clients do (their read
    /// timeout), so the session can be re-opened elsewhere before it
    /// expires: for clients that must survive a stopped (paused) server.
    pub fn give_up_like_zookeeper(&mut self) -> std::io::Result<()> {
        let ms = (self.timeout_ms.max(3) as u64) * 2 / 3;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(ms)))
    }

    /// [`RawClient::resume`], giving up on a silent server as
    /// [`RawClient::give_up_like_zookeeper`] does (the handshake too).
    pub fn resume_like_zookeeper(
        addr: SocketAddr,
        session_id: i64,
        password: &[u8],
        timeout_ms: i32,
    ) -> std::io::Result<Connected> {
        let ms = (timeout_ms.max(3) as u64) * 2 / 3;
        let connected = Self::handshake_within(
            addr,
            session_id,
            password.to_vec(),
            timeout_ms,
            Duration::from_millis(ms),
        )?;
        if let Connected::Session(c) = &connected {
            c.stream.set_read_timeout(Some(Duration::from_millis(ms)))?;
        }
        Ok(connected)
    }

    fn handshake(
        addr: SocketAddr,
        session_id: i64,
        password: Vec<u8>,
        timeout_ms: i32,
    ) -> std::io::Result<Connected> {
        Self::handshake_within(
            addr,
            session_id,
            password,
            timeout_ms,
            Duration::from_secs(30),
        )
    }

    fn handshake_within(
        addr: SocketAddr,
        session_id: i64,
        password: Vec<u8>,
        timeout_ms: i32,
        read_timeout: Duration,
    ) -> std::io::Result<Connected> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_nodelay(true)?;
        stream.write_all(&connect_frame(session_id, password, timeout_ms))?;
        let response =
            ConnectResponse::decode(&read_frame(&mut stream)?).map_err(std::io::Error::other)?;
        if response.timeout_ms <= 0 || response.session_id == 0 {
            return Ok(Connected::Expired);
        }
        Ok(Connected::Session(RawClient {
            stream,
            session_id: response.session_id,
            password: response.password,
            timeout_ms: response.timeout_ms,
            next_xid: 1,
        }))
    }

    /// Sends one request; returns its xid.
    pub fn send(&mut self, request: &Request) -> std::io::Result<i32> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut body = Vec::new();
        request.encode(xid, &mut body);
        self.stream.write_all(&frame(&body))?;
        Ok(xid)
    }

    /// The next reply (notifications skipped).
    pub fn recv(&mut self) -> std::io::Result<Reply> {
        read_reply(&mut self.stream)
    }

    /// The next watch notification (replies and pings in between are
    /// dropped).
    pub fn next_notification(&mut self) -> std::io::Result<Reply> {
        loop {
            let reply = parse_reply(&read_frame(&mut self.stream)?)?;
            if reply.xid == proto::xid::NOTIFICATION {
                return Ok(reply);
            }
        }
    }

    /// One request, one reply.
    pub fn call(&mut self, request: &Request) -> std::io::Result<Reply> {
        let xid = self.send(request)?;
        let reply = self.recv()?;
        assert_eq!(reply.xid, xid, "replies out of order");
        Ok(reply)
    }

    /// Many requests pipelined (in chunks, so neither side's buffers fill
    /// up); the replies in request order.
    pub fn call_all(&mut self, requests: &[Request]) -> std::io::Result<Vec<Reply>> {
        let mut replies = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(64) {
            let mut xids = Vec::new();
            for request in chunk {
                xids.push(self.send(request)?);
            }
            for xid in xids {
                let reply = self.recv()?;
                assert_eq!(reply.xid, xid, "replies out of order");
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    /// Closes the session (closeSession); whether the server confirmed it.
    pub fn close_session(mut self) -> bool {
        self.call(&Request::CloseSession).is_ok_and(|r| r.err == 0)
    }

    /// `create2` of a persistent node with open ACL; the reply.
    pub fn create(&mut self, path: &str, data: &[u8]) -> std::io::Result<Reply> {
        self.call(&create_request(path, Some(data.to_vec()), 0))
    }

    /// getData: (data, stat), or the error.
    pub fn get_data(&mut self, path: &str) -> std::io::Result<DataResult> {
        let reply = self.call(&Request::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        }))?;
        Ok(match reply.response(OpCode::GetData) {
            Response::GetData(r) => Ok((r.data, r.stat)),
            _ => Err(reply.error()),
        })
    }

    /// getChildren2: (sorted children, stat), or the error.
    pub fn children(
        &mut self,
        path: &str,
    ) -> std::io::Result<Result<(Vec<String>, Stat), ErrorCode>> {
        let reply = self.call(&Request::GetChildren2(PathWatchRequest {
            path: path.into(),
            watch: false,
        }))?;
        Ok(match reply.response(OpCode::GetChildren2) {
            Response::GetChildren2(mut r) => {
                r.children.sort();
                Ok((r.children, r.stat))
            }
            _ => Err(reply.error()),
        })
    }

    /// `sync`: its reply carries the last applied zxid in the header.
    pub fn sync(&mut self) -> std::io::Result<Reply> {
        self.call(&Request::Sync(PathRequest { path: "/".into() }))
    }

    /// Hands the connection to [`pipeline`].
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// A `create2` request with open ACL and the given `CreateMode` flags.
pub fn create_request(path: &str, data: Option<Vec<u8>>, flags: i32) -> Request {
    Request::Create2(CreateRequest {
        path: path.into(),
        data,
        acl: open_acl(),
        flags,
    })
}

/// What a pipelined run observed.
#[derive(Debug)]
pub struct Pipelined {
    /// How many requests were handed to the connection (all of them were
    /// possibly received by the server).
    pub sent: usize,
    /// The replies, in request order: a prefix of the requests.
    pub replies: Vec<Reply>,
}

/// Keeps up to `window` requests in flight on `client`'s connection: asks
/// `next` for request after request (None stops) and sends each as soon as
/// fewer than `window` are unanswered, while a reader thread records every
/// reply. Ends when `next` says stop and every reply has arrived, or when
/// the connection breaks (the server died): then `replies` holds exactly the
/// requests the server acknowledged.
pub fn pipeline(
    client: RawClient,
    window: usize,
    mut next: impl FnMut() -> Option<Request>,
) -> Pipelined {
    let mut stream = client.into_stream();
    let mut read_half = stream.try_clone().expect("clone the socket");
    let mut xid = client_next_xid();
    // One slot per unanswered request: the channel's capacity is the window.
    let (inflight, answered) = mpsc::sync_channel::<i32>(window.max(1) - 1);
    let reader = std::thread::spawn(move || {
        let mut replies = Vec::new();
        while let Ok(expected) = answered.recv() {
            match read_reply(&mut read_half) {
                Ok(reply) => {
                    assert_eq!(reply.xid, expected, "replies out of order");
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        replies
    });
    let mut sent = 0;
    while let Some(request) = next() {
        xid += 1;
        let mut body = Vec::new();
        request.encode(xid, &mut body);
        // Counted as sent before the bytes go: a write that fails halfway
        // may still have reached the server.
        sent += 1;
        if inflight.send(xid).is_err() || stream.write_all(&frame(&body)).is_err() {
            break;
        }
    }
    drop(inflight);
    let replies = reader.join().expect("reader thread");
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Pipelined { sent, replies }
}

/// Pipelined xids start high so they never collide with earlier calls.
fn client_next_xid() -> i32 {
    1 << 20
}
