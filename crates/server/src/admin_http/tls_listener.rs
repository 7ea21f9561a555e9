//! The admin port over TLS, as ZooKeeper's AdminServer serves it:
//! `admin.forceHttps=true` takes HTTPS only, `admin.portUnification=true`
//! HTTP and HTTPS on the one port (told apart by the first byte), both
//! with the `ssl.quorum.*` key store (ZooKeeper's `JettyAdminServer` reads
//! those), and `admin.needClientAuth=true` asks for a client certificate
//! signed by the quorum trust store.
//!
//! Handshakes run in tasks of their own, at most [`HANDSHAKES`] at once and
//! each for at most the handshake timeout, so a client that never finishes
//! one holds up no one; finished connections are handed to axum through a
//! channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;

use crate::tls::{BoxedStream, Reloadable};

/// Connections between their accept and a finished handshake, at most.
const HANDSHAKES: usize = 64;

/// How the admin port takes connections when it speaks TLS.
#[derive(Debug, Clone)]
pub struct AdminTls {
    pub acceptor: Arc<Reloadable<TlsAcceptor>>,
    /// `admin.portUnification`: plain HTTP too.
    pub accept_plain: bool,
    pub handshake_timeout: Duration,
}

/// Connections whose handshake is done, for axum.
#[derive(Debug)]
pub(super) struct TlsListener {
    ready: mpsc::Receiver<(BoxedStream, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`.
    pub(super) fn start(listener: TcpListener, tls: AdminTls) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(HANDSHAKES);
        tls.acceptor.clone().watch();
        tokio::spawn(accept_loop(listener, tls, tx));
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = BoxedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop never ends while the server runs.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: AdminTls,
    ready: mpsc::Sender<(BoxedStream, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an admin connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "too many admin handshakes at once; closing a new one");
            continue;
        };
        let (tls, ready) = (tls.clone(), ready.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(tls.handshake_timeout, secure(stream, &tls));
            let connection = match handshake.await {
                Ok(Ok(connection)) => connection,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "admin connection refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "no admin TLS handshake in time; closed");
                    return;
                }
            };
            drop(permit);
            let _ = ready.send((connection, remote)).await;
        });
    }
}

async fn secure(stream: TcpStream, tls: &AdminTls) -> std::io::Result<BoxedStream> {
    if tls.accept_plain && !crate::tls::starts_tls(&stream).await? {
        return Ok(Box::new(stream));
    }
    let acceptor = tls.acceptor.current();
    Ok(Box::new(acceptor.accept(stream).await?))
}
