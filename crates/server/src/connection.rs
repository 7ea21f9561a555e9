//! One client connection, read top to bottom: the first four bytes decide
//! between a four-letter word and the connect handshake; then frames are
//! decoded and handed to the processor in order, while a writer task sends
//! what the processor queues for this connection.
//!
//! Bad input closes this connection only: an oversized or negative frame
//! length, a connect request or request header that does not parse. A
//! request body that does not parse is answered (MarshallingError) by the
//! processor, as ZooKeeper does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf as _, BytesMut};
use proto::{ConnectRequest, Request};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::four_letter;
use crate::processor::{Command, Outgoing};
use crate::server::Shared;
use crate::sessions::ConnId;

/// Why a connection ended early; logged, never sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] proto::frame::FrameError),
    #[error("malformed connect request: {0}")]
    Connect(proto::DecodeError),
    #[error("malformed request header: {0}")]
    Header(proto::RequestError),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("server is shutting down")]
    ShuttingDown,
}

/// Serves one accepted plaintext connection until either side closes it.
pub async fn serve(stream: TcpStream, remote: SocketAddr, conn: ConnId, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    // Owned halves: no lock between the reader and the writer task.
    let (reader, writer) = stream.into_split();
    serve_halves(reader, writer, remote, conn, Vec::new(), shared).await;
}

/// Serves one connection whose TLS handshake has completed.
pub async fn serve_tls(
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    remote: SocketAddr,
    conn: ConnId,
    shared: Arc<Shared>,
) {
    let identities = certificate_identities(&stream, &shared.config);
    let (reader, writer) = tokio::io::split(stream);
    serve_halves(reader, writer, remote, conn, identities, shared).await;
}

/// What a client's TLS certificate makes it, with ZooKeeper's
/// `X509AuthenticationProvider` configured: `x509:<subject>` (RFC 2253,
/// as Java's `X500Principal.getName()`), and `super` too when the subject
/// is `X509AuthenticationProvider.superUser`. The certificate was checked
/// against the trust store in the handshake.
fn certificate_identities(
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
    config: &crate::config::Config,
) -> Vec<proto::Id> {
    if !config.acl_providers().x509 {
        return Vec::new();
    }
    let Some(certificate) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    else {
        return Vec::new();
    };
    let Some(subject) = crate::tls::subject_rfc2253(certificate) else {
        tracing::warn!("a client certificate's subject cannot be read; no x509 identity");
        return Vec::new();
    };
    let mut ids = Vec::with_capacity(2);
    if config.x509_super_user.as_deref() == Some(subject.as_str()) {
        ids.push(proto::Id::new("super", subject.clone()));
    }
    ids.push(proto::Id::new("x509", subject));
    ids
}

async fn serve_halves<R, W>(
    reader: R,
    writer: W,
    remote: SocketAddr,
    conn: ConnId,
    identities: Vec<proto::Id>,
    shared: Arc<Shared>,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    match serve_inner(reader, writer, remote, conn, identities, &shared).await {
        Ok(()) => tracing::debug!(conn, %remote, "connection closed"),
        Err(e) => tracing::info!(conn, %remote, error = %e, "closing connection"),
    }
    let _ = shared.commands.send(Command::Closed { conn }).await;
}

async fn serve_inner<R, W>(
    mut reader: R,
    mut writer: W,
    remote: SocketAddr,
    conn: ConnId,
    identities: Vec<proto::Id>,
    shared: &Arc<Shared>,
) -> Result<(), ConnectionError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let max = shared.config.max_buffer;
    let mut buf = BytesMut::with_capacity(4096);

    // Four-letter words arrive where the first frame's length would be.
    if !fill(&mut reader, &mut buf, 4).await? {
        return Ok(());
    }
    if let Some(cmd) = four_letter::command_at_start(&buf) {
        buf.advance(4);
        let output = four_letter::run(cmd, &mut reader, &mut buf, remote, shared).await;
        writer.write_all(output.as_bytes()).await?;
        writer.shutdown().await?;
        return Ok(());
    }

    let Some(frame) = next_frame(&mut reader, &mut buf, max).await? else {
        return Ok(());
    };
    count_received(shared, &frame);
    let connect = ConnectRequest::decode(&frame).map_err(ConnectionError::Connect)?;

    // Replies count against the in-flight limit: we stop reading requests
    // while this many are unanswered, so one client cannot queue unbounded
    // work or unbounded replies.
    let in_flight = Arc::new(Semaphore::new(
        shared.config.global_outstanding_limit.max(1),
    ));
    let closed_by_server = Arc::new(Notify::new());
    let (outbound, outgoing) = mpsc::unbounded_channel();
    shared
        .commands
        .send(Command::Connect {
            conn,
            remote,
            request: connect,
            outbound,
            identities,
        })
        .await
        .map_err(|_| ConnectionError::ShuttingDown)?;
    let writer_task = tokio::spawn(write_loop(
        writer,
        outgoing,
        in_flight.clone(),
        closed_by_server.clone(),
    ));

    let result = async {
        loop {
            let permit = tokio::select! {
                permit = in_flight.clone().acquire_owned() => permit,
                () = closed_by_server.notified() => return Ok(()),
            };
            let Ok(permit) = permit else { return Ok(()) };
            let frame = tokio::select! {
                frame = next_frame(&mut reader, &mut buf, max) => frame?,
                () = closed_by_server.notified() => return Ok(()),
            };
            let Some(frame) = frame else { return Ok(()) };
            count_received(shared, &frame);
            permit.forget();
            let received = Instant::now();
            let command = match Request::decode(&frame) {
                Ok((header, request)) => Command::Request {
                    conn,
                    header,
                    request,
                    received,
                },
                Err((Some(header), error)) => Command::Undecodable {
                    conn,
                    header,
                    error,
                    received,
                },
                Err((None, error)) => return Err(ConnectionError::Header(error)),
            };
            if shared.commands.send(command).await.is_err() {
                return Err(ConnectionError::ShuttingDown);
            }
        }
    }
    .await;
    writer_task.abort();
    result
}

/// Counts a packet's bytes, length prefix included, as ZooKeeper's
/// `bytes_received_count` does.
fn count_received(shared: &Shared, frame: &[u8]) {
    let bytes = (frame.len() + proto::frame::LENGTH_PREFIX) as u64;
    shared
        .bytes_received
        .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// Reads until `buf` holds at least `n` bytes; false on a clean EOF before
/// any byte.
async fn fill(
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    n: usize,
) -> Result<bool, ConnectionError> {
    while buf.len() < n {
        if reader.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(false)
            } else {
                Err(ConnectionError::Truncated)
            };
        }
    }
    Ok(true)
}

/// The next whole frame's payload, `None` on a clean EOF between frames.
/// The length limit is checked before the payload is read.
async fn next_frame(
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<BytesMut>, ConnectionError> {
    loop {
        if let Some(total) = proto::frame::decode_frame(buf, max)? {
            let mut frame = buf.split_to(total);
            frame.advance(proto::frame::LENGTH_PREFIX);
            return Ok(Some(frame));
        }
        if reader.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ConnectionError::Truncated)
            };
        }
    }
}

/// Sends what the processor queues, batching whatever is ready into one
/// write. Cancellation-safe only at the `recv` point; it is aborted once
/// the reader side finishes.
async fn write_loop(
    mut writer: impl AsyncWrite + Unpin,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    in_flight: Arc<Semaphore>,
    closed_by_server: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(64 * 1024);
    'outer: while let Some(first) = outgoing.recv().await {
        let mut close = false;
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Outgoing::Reply(frame) => {
                    batch.extend_from_slice(&frame);
                    in_flight.add_permits(1);
                }
                Outgoing::Frame(frame) => batch.extend_from_slice(&frame),
                Outgoing::NoReply => in_flight.add_permits(1),
                Outgoing::Close => {
                    close = true;
                    break;
                }
            }
            next = if batch.len() < 256 * 1024 {
                outgoing.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() && writer.write_all(&batch).await.is_err() {
            break 'outer;
        }
        batch.clear();
        if close {
            break;
        }
    }
    let _ = writer.shutdown().await;
    closed_by_server.notify_one();
}
