//! The listeners: the client port's accept loop (with ZooKeeper's
//! per-address connection limit) and the admin HTTP server, around one
//! processor task.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// The secure client port's TLS, read again when its files change.
pub type ClientTls = Arc<crate::tls::Reloadable<TlsAcceptor>>;

use crate::config::Config;
use crate::ensemble_config::Ensemble;
use crate::processor::{Command, Processor, ProcessorError, ReplicaSetup};
use crate::{admin_http, connection};
use storage::recovery::Recovered;

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    pub config: Arc<Config>,
    pub commands: mpsc::Sender<Command>,
    pub connections_rejected: AtomicU64,
    /// Bytes of client packets received, length prefixes included
    /// (`bytes_received_count`).
    pub bytes_received: AtomicU64,
    /// Open connections per client address, for `maxClientCnxns`. A std
    /// mutex: held for a map update only, never across an await.
    per_address: Mutex<HashMap<IpAddr, u32>>,
    next_conn: AtomicU64,
    pub started: std::time::Instant,
}

/// Counts a connection against its address until dropped.
struct AddressSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Shared {
    fn new(config: Arc<Config>, commands: mpsc::Sender<Command>) -> Self {
        Shared {
            config,
            commands,
            connections_rejected: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            per_address: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            started: std::time::Instant::now(),
        }
    }

    /// A `Shared` around a live processor task, without listeners: for
    /// tests of the four-letter words and the admin API. Needs a runtime.
    #[cfg(test)]
    pub(crate) fn with_processor(config: Arc<Config>) -> Arc<Shared> {
        let (commands, command_rx) = mpsc::channel(4096);
        tokio::spawn(Processor::in_memory(config.clone()).run(command_rx));
        Arc::new(Shared::new(config, commands))
    }

    /// Takes a slot for `ip`, or refuses when `maxClientCnxns` (per address)
    /// or `maxCnxns` (total) would be exceeded.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let per_ip = self.config.max_client_cnxns;
        let count = map.get(&ip).copied().unwrap_or(0);
        let total: u32 = map.values().sum();
        if (per_ip > 0 && count >= per_ip)
            || (self.config.max_cnxns > 0 && total >= self.config.max_cnxns)
        {
            return None;
        }
        *map.entry(ip).or_insert(0) += 1;
        Some(AddressSlot {
            shared: self.clone(),
            ip,
        })
    }
}

/// A running server's listening addresses, for tests and logs.
#[derive(Debug, Clone)]
pub struct Bound {
    pub client: std::net::SocketAddr,
    pub admin: Option<std::net::SocketAddr>,
}

/// The sockets a server serves clients and operators on.
pub struct Listeners {
    pub client: TcpListener,
    /// `secureClientPort`, with its TLS configuration.
    pub secure_client: Option<(TcpListener, ClientTls)>,
    pub admin: Option<TcpListener>,
    /// The admin port's TLS (`admin.forceHttps`, `admin.portUnification`).
    pub admin_tls: Option<admin_http::AdminTls>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = |l: &TcpListener| l.local_addr().ok();
        f.debug_struct("Listeners")
            .field("client", &addr(&self.client))
            .field(
                "secure_client",
                &self.secure_client.as_ref().map(|(l, _)| addr(l)),
            )
            .field("admin", &self.admin.as_ref().map(addr))
            .finish()
    }
}

/// Why the listeners could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("binding {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("secure client port: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("admin port TLS (admin.forceHttps, admin.portUnification): {0}")]
    AdminTls(#[source] crate::tls::TlsError),
}

/// Binds the client, secure client and admin ports from `config`, after
/// reading the TLS key and trust stores (so a bad store stops the server
/// before it serves anyone).
pub async fn bind(config: &Config) -> Result<Listeners, BindError> {
    let secure = match config.secure_client_addr {
        Some(addr) => Some((addr, Arc::new(crate::tls::reloading_acceptor(&config.ssl)?))),
        None => None,
    };
    let listen = |what, addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| BindError::Bind { what, addr, source })
    };
    let client = listen("the client port", config.client_addr).await?;
    let secure_client = match secure {
        Some((addr, acceptor)) => Some((listen("the secure client port", addr).await?, acceptor)),
        None => None,
    };
    let admin_tls = if config.admin_enabled {
        admin_tls(config).map_err(BindError::AdminTls)?
    } else {
        None
    };
    let admin = if config.admin_enabled {
        Some(listen("the admin port", config.admin_addr).await?)
    } else {
        None
    };
    Ok(Listeners {
        client,
        secure_client,
        admin,
        admin_tls,
    })
}

/// The admin port's TLS from `admin.forceHttps`, `admin.portUnification`
/// and `admin.needClientAuth`, with the `ssl.quorum.*` stores as
/// ZooKeeper's AdminServer takes them.
fn admin_tls(config: &Config) -> Result<Option<admin_http::AdminTls>, crate::tls::TlsError> {
    if !config.admin_force_https && !config.admin_port_unification {
        return Ok(None);
    }
    let mut settings = config.ssl_quorum.clone();
    settings.client_auth = if config.admin_need_client_auth {
        crate::tls::ClientAuth::Need
    } else {
        crate::tls::ClientAuth::None
    };
    Ok(Some(admin_http::AdminTls {
        acceptor: Arc::new(crate::tls::reloading_acceptor(&settings)?),
        accept_plain: !config.admin_force_https,
        handshake_timeout: settings.handshake_timeout,
    }))
}

/// Why the server stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    #[error("the request processor stopped unexpectedly")]
    ProcessorGone,
}

/// What a member of an ensemble needs beyond a standalone server.
#[derive(Debug)]
pub struct Membership {
    pub ensemble: Ensemble,
    /// Named in every peer handshake: servers of different ensembles that
    /// reach each other by mistake refuse to talk.
    pub ensemble_name: String,
    /// Bound on this server's quorum port.
    pub quorum: TcpListener,
    /// Plain or TLS peers (`sslQuorum`, `portUnification`).
    pub security: crate::peers::PeerSecurity,
    /// Seeds the election timeouts.
    pub seed: u64,
}

/// Why the quorum port could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum QuorumBindError {
    #[error(
        "this server's own server.N host {host:?} does not resolve ({reason}); \
         set quorumListenOnAllIPs=true to listen for peers on every interface"
    )]
    Unresolved { host: String, reason: String },
    #[error("binding the quorum port {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("quorum TLS (sslQuorum, portUnification): {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// How long a server waits for its own host name to resolve: in
/// Kubernetes a pod's own DNS name may resolve only a little after it
/// starts.
const OWN_NAME_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Binds this server's quorum port, as ZooKeeper does: on the address of
/// its own `server.N` line (the first it resolves to), or on every
/// interface with `quorumListenOnAllIPs=true` (or a line naming 0.0.0.0).
pub async fn bind_quorum(
    config: &Config,
    ensemble: &Ensemble,
) -> Result<TcpListener, QuorumBindError> {
    let (host, port) = ensemble
        .me()
        .map_or(("0.0.0.0", 0), |m| (m.host.as_str(), m.quorum_port));
    let ip = if config.quorum_listen_on_all_ips {
        std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        resolve_own(host, port).await?
    };
    let addr = std::net::SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| QuorumBindError::Bind { addr, source })
}

async fn resolve_own(host: &str, port: u16) -> Result<std::net::IpAddr, QuorumBindError> {
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        let reason = match tokio::net::lookup_host((host, port)).await {
            Ok(mut addresses) => match addresses.next() {
                Some(address) => return Ok(address.ip()),
                None => "no address".to_owned(),
            },
            Err(e) => e.to_string(),
        };
        if started.elapsed() >= OWN_NAME_PATIENCE {
            return Err(QuorumBindError::Unresolved {
                host: host.to_owned(),
                reason,
            });
        }
        if !said {
            tracing::warn!(host, %reason, "this server's own host name does not resolve yet; waiting");
            said = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The peer transport's security from `sslQuorum` and `portUnification`:
/// the stores are read now, so a bad one stops the server before it
/// speaks to any peer.
pub fn peer_security(config: &Config) -> Result<crate::peers::PeerSecurity, QuorumBindError> {
    if !config.ssl_quorum_enabled && !config.port_unification {
        return Ok(crate::peers::PeerSecurity::plain());
    }
    let tls = crate::tls::QuorumTls::new(&config.ssl_quorum)?;
    if !tls.checks_names() {
        tracing::warn!(
            "ssl.quorum.hostnameVerification=false: any certificate the quorum trust store \
             signed may speak for any member"
        );
    }
    if config.port_unification {
        tracing::warn!(
            dial_tls = config.ssl_quorum_enabled,
            "portUnification=true: peers may connect without TLS (for a rolling change only)"
        );
    }
    Ok(crate::peers::PeerSecurity {
        tls: Some(tls),
        dial_tls: config.ssl_quorum_enabled,
        accept_plain: !config.ssl_quorum_enabled || config.port_unification,
    })
}

/// Serves the recovered state until `shutdown` completes or the store
/// fails (then nothing more can be acknowledged, so the server stops).
pub async fn run(
    config: Arc<Config>,
    recovered: Recovered,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    run_member(config, recovered, listeners, None, shutdown).await
}

/// [`run`], as a member of an ensemble when `membership` is given.
pub async fn run_member(
    config: Arc<Config>,
    recovered: Recovered,
    listeners: Listeners,
    membership: Option<Membership>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let (commands, command_rx) = mpsc::channel(4096);
    let replica = membership.map(|m| {
        let setup = crate::peers::PeerSetup {
            my_id: m.ensemble.my_id,
            ensemble_name: m.ensemble_name.clone(),
            listener: m.quorum,
            members: m.ensemble.members.clone(),
            seed: m.seed,
            max_frame: config.peer_max_frame,
            security: m.security,
        };
        let peers = crate::peers::start(setup, commands.clone());
        ReplicaSetup {
            ensemble: m.ensemble,
            join: config.join,
            peers,
            seed: m.seed,
        }
    });
    let processor = Processor::with_replica(config.clone(), recovered, replica)?;
    let mut processor_task = tokio::spawn(processor.run(command_rx));
    let shared = Arc::new(Shared::new(config.clone(), commands));
    let Listeners {
        client,
        secure_client,
        admin,
        admin_tls,
    } = listeners;
    let admin_task =
        admin.map(|listener| tokio::spawn(admin_http::serve(listener, admin_tls, shared.clone())));
    let secure_task = secure_client.map(|(listener, acceptor)| {
        acceptor.clone().watch();
        tokio::spawn(accept_loop(listener, Some(acceptor), shared.clone()))
    });

    let result = tokio::select! {
        () = accept_loop(client, None, shared.clone()) => Ok(()),
        () = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        stopped = &mut processor_task => match stopped {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Processor(e)),
            Err(_) => Err(ServerError::ProcessorGone),
        },
    };
    for task in [admin_task, secure_task].into_iter().flatten() {
        task.abort();
    }
    drop(shared);
    // Dropping the processor stops its log writer after everything already
    // queued is written and synced. A task that ended by itself (a failed
    // store) is not awaited again: tokio panics on a handle polled after it
    // completed.
    if !processor_task.is_finished() {
        processor_task.abort();
        let _ = processor_task.await;
    }
    result
}

/// Accepts clients on one port; with `tls`, each connection's handshake
/// runs in its own task, so a slow or silent client holds up no one.
async fn accept_loop(listener: TcpListener, tls: Option<ClientTls>, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(5);
                accepted
            }
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(slot) = shared.admit(remote.ip()) else {
            shared.connections_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                %remote,
                max = shared.config.max_client_cnxns,
                "too many connections from this address; closing the new one"
            );
            drop(stream);
            continue;
        };
        let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let tls = tls.as_ref().map(|t| t.current());
        tokio::spawn(async move {
            match tls {
                None => connection::serve(stream, remote, conn, shared).await,
                Some(acceptor) => {
                    let _ = stream.set_nodelay(true);
                    let timeout = shared.config.ssl.handshake_timeout;
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection::serve_tls(stream, remote, conn, shared).await,
                        Ok(Err(e)) => {
                            tracing::info!(%remote, error = %e, "TLS handshake failed; closing the connection");
                        }
                        Err(_) => {
                            tracing::info!(%remote, ?timeout, "no TLS handshake in time; closing the connection");
                        }
                    }
                }
            }
            drop(slot);
        });
    }
}
