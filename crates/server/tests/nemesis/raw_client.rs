//! A small blocking ZooKeeper client on the `proto` codec (the pieces of
//! `tests/integration/raw_client.rs` this test needs), so that the
//! recorder sees exactly when each request left and whether its reply
//! came: one request at a time, a read timeout per call, no retries, no
//! hidden reconnects. A broken or timed-out connection is an error the
//! workload records as an unknown outcome, and then drops the client.

use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use proto::jute::{Jute as _, Reader};
use proto::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, Id, OpCode, PathRequest, PathWatchRequest,
    ReplyHeader, Request, Response, perms,
};

/// How long a connect handshake may take: a paused server accepts the TCP
/// connection (the kernel does) and never answers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// One reply: its header and the undecoded body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: i32,
    pub err: i32,
    pub body: Vec<u8>,
}

impl Reply {
    /// Decodes the body as the response to `op` (None after an error or if
    /// it does not decode).
    pub fn response(&self, op: OpCode) -> Option<Response> {
        if self.err != 0 {
            return None;
        }
        Response::decode(op, &self.body).ok()
    }
}

/// A connection with an established session.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub timeout_ms: i32,
    next_xid: i32,
}

/// How a connect attempt ended.
#[derive(Debug)]
pub enum Connected {
    Session(Client),
    /// The server answered that the session is expired (timeout 0).
    Expired,
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn read_frame(s: &mut impl Read) -> std::io::Result<Vec<u8>> {
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

fn parse_reply(bytes: &[u8]) -> std::io::Result<Reply> {
    let mut r = Reader::new(bytes);
    let header = ReplyHeader::decode(&mut r).map_err(std::io::Error::other)?;
    Ok(Reply {
        xid: header.xid,
        err: header.err,
        body: bytes.get(16..).unwrap_or_default().to_vec(),
    })
}

/// `world:anyone` with every permission.
fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// A create request with open ACL and the given `CreateMode` flags.
pub fn create_request(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create2(CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: open_acl(),
        flags,
    })
}

pub fn sync_request() -> Request {
    Request::Sync(PathRequest { path: "/".into() })
}

pub fn get_data_request(path: &str) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

pub fn get_children_request(path: &str) -> Request {
    Request::GetChildren2(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

impl Client {
    /// Opens a new session.
    pub fn connect(addr: SocketAddr, timeout_ms: i32) -> std::io::Result<Client> {
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

    fn handshake(
        addr: SocketAddr,
        session_id: i64,
        password: Vec<u8>,
        timeout_ms: i32,
    ) -> std::io::Result<Connected> {
        let mut stream = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT)?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        stream.set_nodelay(true)?;
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
        stream.write_all(&frame(&body))?;
        let response =
            ConnectResponse::decode(&read_frame(&mut stream)?).map_err(std::io::Error::other)?;
        if response.timeout_ms <= 0 || response.session_id == 0 {
            return Ok(Connected::Expired);
        }
        Ok(Connected::Session(Client {
            stream,
            session_id: response.session_id,
            password: response.password,
            timeout_ms: response.timeout_ms,
            next_xid: 1,
        }))
    }

    /// One request, one reply within `timeout` (watch notifications and
    /// ping replies skipped).
    pub fn call(&mut self, request: &Request, timeout: Duration) -> std::io::Result<Reply> {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.exchange(request, xid, timeout)
    }

    fn exchange(
        &mut self,
        request: &Request,
        xid: i32,
        timeout: Duration,
    ) -> std::io::Result<Reply> {
        let mut body = Vec::new();
        request.encode(xid, &mut body);
        self.stream.set_write_timeout(Some(timeout))?;
        self.stream.write_all(&frame(&body))?;
        self.stream.set_read_timeout(Some(timeout))?;
        loop {
            let reply = parse_reply(&read_frame(&mut self.stream)?)?;
            if reply.xid == xid {
                return Ok(reply);
            }
            if reply.xid != proto::xid::NOTIFICATION && reply.xid != proto::xid::PING {
                return Err(std::io::Error::other(format!(
                    "reply {} to request {xid}: replies out of order",
                    reply.xid
                )));
            }
        }
    }

    /// Closes the session (closeSession); whether the server confirmed it.
    pub fn close_session(mut self, timeout: Duration) -> std::io::Result<bool> {
        Ok(self.call(&Request::CloseSession, timeout)?.err == 0)
    }
}
