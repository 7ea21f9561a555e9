//! A bare ZooKeeper session over one TCP connection, built on `proto`.
//!
//! Nothing here waits for a reply before sending the next request: callers
//! queue any number of requests, flush them in one socket write, and read
//! replies as they come. ZooKeeper answers a session's requests in order, so
//! the n-th reply belongs to the n-th request; the xid is checked anyway.
//! Watch notifications (xid -1) and ping replies (xid -2) are skipped: the
//! load generator sets no watches and keeps every session busy.

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::{Buf as _, BytesMut};
use proto::jute::{Jute as _, Reader};
use proto::{ConnectRequest, ConnectResponse, ReplyHeader, Request, frame};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest reply frame accepted (ZooKeeper's default `jute.maxbuffer`).
const MAX_FRAME: usize = proto::DEFAULT_MAX_BUFFER;

#[derive(Debug)]
pub(crate) struct Session {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
    next_xid: i32,
    pub(crate) session_id: i64,
}

/// One reply: the xid it answers and ZooKeeper's error code (0 = Ok).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply {
    pub(crate) xid: i32,
    pub(crate) err: i32,
}

impl Session {
    /// Connects and creates a session, all within `timeout`.
    pub(crate) async fn connect(
        addr: &str,
        session_timeout_ms: i32,
        timeout: Duration,
    ) -> anyhow::Result<Session> {
        tokio::time::timeout(timeout, Self::handshake(addr, session_timeout_ms))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
    }

    async fn handshake(addr: &str, session_timeout_ms: i32) -> anyhow::Result<Session> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut session = Session {
            stream,
            read: BytesMut::with_capacity(64 * 1024),
            write: Vec::with_capacity(64 * 1024),
            next_xid: 1,
            session_id: 0,
        };
        let connect = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: session_timeout_ms,
            session_id: 0,
            password: vec![0; proto::PASSWORD_LEN],
            read_only: Some(false),
        };
        frame::encode_frame(&mut session.write, |out| connect.encode(out));
        session.flush().await?;
        let payload = session.next_frame().await?;
        let response =
            ConnectResponse::decode(&payload).context("decoding the connect response")?;
        if response.timeout_ms <= 0 {
            bail!("the server refused the session");
        }
        session.session_id = response.session_id;
        Ok(session)
    }

    /// Queues a request; returns its xid. Nothing is sent until `flush`.
    pub(crate) fn queue(&mut self, request: &Request) -> i32 {
        self.queue_raw(request.op(), |out| request.encode_body(out))
    }

    /// Queues one request whose body the caller encodes (after the request
    /// header); returns its xid. Nothing is sent until `flush`.
    pub(crate) fn queue_raw(&mut self, op: proto::OpCode, body: impl FnOnce(&mut Vec<u8>)) -> i32 {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.checked_add(1).unwrap_or(1);
        frame::encode_frame(&mut self.write, |out| {
            proto::RequestHeader { xid, op: op.code() }.encode(out);
            body(out);
        });
        xid
    }

    /// Queues a ping (its reply is skipped like every ping reply), so that
    /// a session waiting long for one reply does not expire.
    pub(crate) fn queue_ping(&mut self) {
        frame::encode_frame(&mut self.write, |out| {
            Request::Ping.encode(proto::xid::PING, out);
        });
    }

    /// Sends everything queued.
    pub(crate) async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.write.is_empty() {
            self.stream.write_all(&self.write).await?;
            self.write.clear();
        }
        Ok(())
    }

    /// The next reply already buffered, if any (does not read the socket).
    pub(crate) fn buffered_reply(&mut self) -> anyhow::Result<Option<Reply>> {
        while let Some(total) = frame::decode_frame(&self.read, MAX_FRAME)? {
            let header = {
                let mut reader = Reader::new(&self.read[frame::LENGTH_PREFIX..total]);
                ReplyHeader::decode(&mut reader).context("decoding a reply header")?
            };
            self.read.advance(total);
            if header.xid >= 0 {
                return Ok(Some(Reply {
                    xid: header.xid,
                    err: header.err,
                }));
            }
        }
        Ok(None)
    }

    /// Reads from the socket at least once; errors on EOF.
    pub(crate) async fn fill(&mut self) -> anyhow::Result<()> {
        if self.stream.read_buf(&mut self.read).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// Sends one request and waits for its reply.
    pub(crate) async fn call(&mut self, request: &Request) -> anyhow::Result<Reply> {
        let xid = self.queue(request);
        self.flush().await?;
        loop {
            if let Some(reply) = self.buffered_reply()? {
                if reply.xid != xid {
                    bail!("reply for xid {} while waiting for {xid}", reply.xid);
                }
                return Ok(reply);
            }
            self.fill().await?;
        }
    }

    /// Closes the session (so the server drops it at once), then waits
    /// briefly for the server to close the socket, as ZooKeeper clients do
    /// (ZooKeeper logs a warning when the client hangs up first).
    pub(crate) async fn close(mut self) -> anyhow::Result<()> {
        self.call(&Request::CloseSession).await?;
        let eof = async { while self.fill().await.is_ok() {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), eof).await;
        Ok(())
    }

    /// The payload of the next frame, whatever it is (the connect response).
    async fn next_frame(&mut self) -> anyhow::Result<BytesMut> {
        loop {
            if let Some(total) = frame::decode_frame(&self.read, MAX_FRAME)? {
                let mut payload = self.read.split_to(total);
                payload.advance(frame::LENGTH_PREFIX);
                return Ok(payload);
            }
            self.fill().await?;
        }
    }
}

/// `ErrorCode`'s name for a numeric code, for messages.
pub(crate) fn error_name(code: i32) -> String {
    match proto::ErrorCode::from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("error {code}"),
    }
}
