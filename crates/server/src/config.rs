//! Configuration: a standard `zoo.cfg` (Java properties syntax), overridden
//! by command-line flags. Keys Conclave does not use are ignored with a
//! warning that names them; a bad value is an error that names its key.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration error, naming the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: invalid value {value:?}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// `conclave.recoverAlone`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverAloneKey {
    /// The survivor.
    pub server: u64,
    /// Names this recovery: it is done once per token (a marker file in
    /// the data directory), so the key can stay in zoo.cfg.
    pub token: String,
}

impl RecoverAloneKey {
    fn parse(key: &str, value: &str) -> Result<RecoverAloneKey, ConfigError> {
        let bad = |reason: &str| ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let (server, token) = value
            .split_once(':')
            .ok_or_else(|| bad("expected <server id>:<token>"))?;
        let server = server
            .trim()
            .parse()
            .map_err(|_| bad("the server id is not a number"))?;
        let token = token.trim();
        let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
        if token.is_empty() || token.len() > 64 || !token.chars().all(safe) {
            return Err(bad(
                "the token is 1 to 64 letters, digits, '-', '_' or '.' (it names a file)",
            ));
        }
        Ok(RecoverAloneKey {
            server,
            token: token.to_owned(),
        })
    }
}

/// One `server.N` line, kept for the ensemble work to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    pub id: u64,
    pub spec: String,
}

/// Everything the server reads from zoo.cfg and flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub tick_time_ms: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_addr: SocketAddr,
    /// `secureClientPort` (and `secureClientPortAddress`): a client port
    /// that speaks TLS, set up from the `ssl.*` keys in [`Config::ssl`].
    pub secure_client_addr: Option<SocketAddr>,
    pub ssl: crate::tls::SslSettings,
    /// `sslQuorum`: connections between servers speak mutual TLS, set up
    /// from the `ssl.quorum.*` keys in [`Config::ssl_quorum`].
    pub ssl_quorum_enabled: bool,
    pub ssl_quorum: crate::tls::SslSettings,
    /// `portUnification`: the quorum port takes plain and TLS peers alike,
    /// so that an ensemble turns `sslQuorum` on (or off) by a rolling
    /// restart.
    pub port_unification: bool,
    /// `quorumListenOnAllIPs`: listen for peers on every interface rather
    /// than on the address of this server's own `server.N` line.
    pub quorum_listen_on_all_ips: bool,
    pub max_client_cnxns: u32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_buffer: usize,
    /// `None` means every command (`*`).
    pub four_letter_whitelist: Option<Vec<String>>,
    pub admin_enabled: bool,
    pub admin_addr: SocketAddr,
    pub admin_command_url: String,
    /// `admin.forceHttps`: the admin port speaks HTTPS only, with the
    /// `ssl.quorum.*` key store (as ZooKeeper's AdminServer).
    pub admin_force_https: bool,
    /// `admin.portUnification`: HTTP and HTTPS on the admin port.
    pub admin_port_unification: bool,
    /// `admin.needClientAuth`: HTTPS clients must present a certificate
    /// signed by the `ssl.quorum.*` trust store.
    pub admin_need_client_auth: bool,
    pub extended_types_enabled: bool,
    /// `authProvider.N=...SASLAuthenticationProvider`: `sasl` ACL entries.
    pub sasl_acls: bool,
    /// `authProvider.N=...X509AuthenticationProvider`: a TLS client's
    /// certificate subject is `x509:<DN>`, and `x509` ACL entries are valid.
    pub x509_acls: bool,
    /// `X509AuthenticationProvider.superUser`: the subject that is super.
    pub x509_super_user: Option<String>,
    /// `enforce.auth.enabled` with `enforce.auth.schemes` (or
    /// `sessionRequireClientSASLAuth=true`, `requireClientAuthScheme=sasl`:
    /// `sasl`): a connection must have authenticated with one of these
    /// schemes before any request but auth and SASL, or it is answered
    /// SessionClosedRequireSaslAuth and closed.
    pub enforce_auth: Option<Vec<String>>,
    /// The SASL DIGEST-MD5 users: the `Server` section (or the one
    /// `sasl.serverconfig` names) of the JAAS file that
    /// `java.security.auth.login.config` names (ZooKeeper's JVM flag,
    /// read from zoo.cfg here). `None`: SASL logins fail.
    pub sasl_users: Option<std::sync::Arc<crate::sasl::SaslUsers>>,
    pub super_digest: Option<String>,
    pub skip_acl: bool,
    pub reconfig_enabled: bool,
    pub container_check_interval: Duration,
    pub container_max_per_minute: u32,
    pub container_max_never_used_ms: i64,
    pub global_outstanding_limit: usize,
    /// Log entries kept behind the applied index for lagging replicas and
    /// inspection: `snapCount` (ZooKeeper's transactions per snapshot) ×
    /// `autopurge.snapRetainCount` (snapshots ZooKeeper keeps, at least 3),
    /// i.e. about the history a ZooKeeper with autopurge keeps.
    pub log_retention_entries: u64,
    /// `conclave.peerMaxFrameBytes`: the largest frame a peer may send
    /// (64 MiB). It must exceed the largest transaction (`jute.maxbuffer`);
    /// Raft's append batches are kept to a quarter of it.
    pub peer_max_frame: usize,
    /// `conclave.snapshotChunkBytes`: a snapshot's image travels in chunks
    /// of this size (1 MiB; at most half a frame).
    pub snapshot_chunk_bytes: usize,
    /// `conclave.snapshotSendBytesPerSec`: how fast a leader sends
    /// snapshots, over every follower it catches up (64 MiB/s; 0 for no
    /// limit), so a catch-up leaves the network and the disk to clients
    /// and the log.
    pub snapshot_send_rate: u64,
    pub max_cnxns: u32,
    pub server_id: Option<u64>,
    pub servers: Vec<ServerLine>,
    /// `initLimit` and `syncLimit`, in ticks; an ensemble needs both.
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    /// `peerType`, if set (the `server.N` line of this server decides).
    pub peer_type: Option<crate::ensemble_config::MemberRole>,
    /// `standaloneEnabled` (default true): one participant runs standalone.
    pub standalone_enabled: bool,
    /// `readonlymode.enabled` (ZooKeeper: a `-D` flag): an ensemble member
    /// without a quorum serves reads to clients that ask for a read-only
    /// session.
    pub read_only_mode: bool,
    /// `conclave.ensembleName` (Conclave's own, default "conclave"): named
    /// in every peer handshake, so that servers of two ensembles that reach
    /// each other by mistake refuse to talk.
    pub ensemble_name: String,
    /// `conclave.join`: this new server joins an existing ensemble (it
    /// starts knowing no membership and waits to be added by a reconfig).
    pub join: bool,
    /// `conclave.recoverAlone=<id>:<token>`: once per token, at start,
    /// server `id` makes itself the only member of its ensemble (as
    /// `conclave-server recover-alone` does) and every other server sets
    /// its store aside and starts empty. For orchestration (the operator's
    /// quorum-loss recovery); see `docs/membership.md`.
    pub recover_alone: Option<RecoverAloneKey>,
    /// `conclave.adminToken`, or the first line of the file named by
    /// `conclave.adminTokenFile`: the bearer token the admin API's
    /// membership changes require (they are refused without one).
    pub admin_token: Option<String>,
    /// `clientPort` as written, to check against this server's line.
    pub client_port_set: Option<u16>,
    /// Where the values came from, for `conf` and logs.
    pub config_file: Option<PathBuf>,
    /// Keys that were present but ignored, for one warning each at start.
    pub ignored_keys: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let tick = 3000;
        Config {
            tick_time_ms: tick,
            data_dir: PathBuf::from("conclave-data"),
            data_log_dir: PathBuf::from("conclave-data"),
            client_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 2181),
            secure_client_addr: None,
            ssl: crate::tls::SslSettings::default(),
            ssl_quorum_enabled: false,
            admin_force_https: false,
            admin_port_unification: false,
            admin_need_client_auth: false,
            ssl_quorum: crate::tls::SslSettings::new(crate::tls::SslScope::Quorum),
            port_unification: false,
            quorum_listen_on_all_ips: false,
            max_client_cnxns: 60,
            min_session_timeout_ms: 2 * tick as i32,
            max_session_timeout_ms: 20 * tick as i32,
            max_buffer: proto::DEFAULT_MAX_BUFFER,
            four_letter_whitelist: Some(vec!["srvr".to_owned()]),
            admin_enabled: true,
            admin_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080),
            admin_command_url: "/commands".to_owned(),
            extended_types_enabled: false,
            sasl_acls: false,
            x509_acls: false,
            x509_super_user: None,
            enforce_auth: None,
            sasl_users: None,
            super_digest: None,
            skip_acl: false,
            reconfig_enabled: false,
            container_check_interval: Duration::from_secs(60),
            container_max_per_minute: 10_000,
            container_max_never_used_ms: 0,
            global_outstanding_limit: 1000,
            log_retention_entries: 300_000,
            peer_max_frame: consensus::wire::DEFAULT_MAX_FRAME,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_send_rate: 64 << 20,
            max_cnxns: 0,
            server_id: None,
            servers: Vec::new(),
            init_limit: None,
            sync_limit: None,
            peer_type: None,
            standalone_enabled: true,
            read_only_mode: false,
            ensemble_name: "conclave".to_owned(),
            join: false,
            recover_alone: None,
            admin_token: None,
            client_port_set: None,
            config_file: None,
            ignored_keys: Vec::new(),
        }
    }
}

/// Keys that only mean something to the JVM or to features Conclave does
/// not have; accepted, warned about, otherwise ignored.
const IGNORED_KEYS: &[&str] = &[
    "electionAlg",
    "syncEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "autopurge.purgeInterval",
    "preAllocSize",
    "forceSync",
    "leaderServes",
    "cnxTimeout",
    "connectToLearnerMasterLimit",
    "serverCnxnFactory",
    "metricsProvider.className",
    "metricsProvider.httpPort",
    "metricsProvider.httpHost",
    "metricsProvider.exportJvmInfo",
    "dynamicConfigFile",
    "multiAddress.enabled",
    "admin.idleTimeout",
    "enforceQuota",
    "digest.enabled",
    "audit.enable",
    "jvm.pause.monitor",
    "fsync.warningthresholdms",
    "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize",
    "clientPortListenBacklog",
    // ZooKeeper reloads quorum certificates only when this is true;
    // Conclave always does (tls/reload.rs).
    "sslQuorumReloadCertFiles",
];

/// Parses Java properties text into ordered key/value pairs. Supports the
/// subset zoo.cfg files use: `key=value` or `key: value`, `#`/`!`
/// comments, blank lines, trimmed keys and values.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']).unwrap_or(line.len());
        let key = line[..split].trim();
        let value = line.get(split + 1..).unwrap_or("").trim();
        out.push((key.to_owned(), value.to_owned()));
    }
    out
}

/// A number within `min..=max`.
fn parse_in(key: &str, value: &str, min: usize, max: usize) -> Result<usize, ConfigError> {
    let n: usize = parse_num(key, value)?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: format!("it must be between {min} and {max}"),
        });
    }
    Ok(n)
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse::<T>().map_err(|e| ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    // Java's Boolean.parseBoolean: "true" (any case) is true, all else false;
    // skipACL uses "yes". Anything else is almost certainly a typo, so we
    // refuse it instead of silently reading false.
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: "expected true or false".to_owned(),
        }),
    }
}

fn parse_ip(key: &str, value: &str) -> Result<IpAddr, ConfigError> {
    if value == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    value
        .trim_matches(['[', ']'])
        .parse()
        .map_err(|e: std::net::AddrParseError| ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: e.to_string(),
        })
}

impl Config {
    /// Reads a zoo.cfg file; relative paths in it are taken as given (Java
    /// resolves them against the working directory too).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_properties(&parse_properties(&text))?;
        config.config_file = Some(path.to_owned());
        Ok(config)
    }

    /// Builds a configuration from parsed properties.
    pub fn from_properties(props: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let map: BTreeMap<&str, &str> = props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let get = |k: &str| map.get(k).copied();

        if let Some(v) = get("tickTime") {
            c.tick_time_ms = parse_num("tickTime", v)?;
            if c.tick_time_ms == 0 {
                return Err(ConfigError::BadValue {
                    key: "tickTime".into(),
                    value: v.into(),
                    reason: "must be positive".into(),
                });
            }
        }
        let tick = i32::try_from(c.tick_time_ms).map_err(|_| ConfigError::BadValue {
            key: "tickTime".into(),
            value: c.tick_time_ms.to_string(),
            reason: "too large".into(),
        })?;
        c.min_session_timeout_ms = tick.saturating_mul(2);
        c.max_session_timeout_ms = tick.saturating_mul(20);
        let mut client_port: Option<u16> = None;
        let mut client_ip: Option<IpAddr> = None;
        let mut secure_port: Option<u16> = None;
        let mut secure_ip: Option<IpAddr> = None;
        let mut admin_port = c.admin_addr.port();
        let mut admin_ip = c.admin_addr.ip();
        let mut data_log_dir = None;
        let mut snap_count: u64 = 100_000;
        let mut jaas: Option<PathBuf> = None;
        let mut jaas_section = "Server".to_owned();
        let mut enforce = false;
        let mut enforce_schemes: Vec<String> = Vec::new();
        let mut require_sasl = false;
        let mut snap_retain: u64 = 3;

        for (key, value) in props {
            let (key, value) = (key.as_str(), value.as_str());
            // ZooKeeper reads unknown keys as `zookeeper.<key>` system
            // properties, so both spellings of those are accepted.
            let bare = key.strip_prefix("zookeeper.").unwrap_or(key);
            match bare {
                "tickTime" => {}
                "dataDir" => c.data_dir = PathBuf::from(value),
                "dataLogDir" => data_log_dir = Some(PathBuf::from(value)),
                "clientPort" => client_port = Some(parse_num(key, value)?),
                "clientPortAddress" => client_ip = Some(parse_ip(key, value)?),
                "secureClientPort" => secure_port = Some(parse_num(key, value)?),
                "secureClientPortAddress" => secure_ip = Some(parse_ip(key, value)?),
                k if k.starts_with("ssl.quorum.") && c.ssl_quorum.set(k, value)? => {}
                k if k.starts_with("ssl.") && c.ssl.set(k, value)? => {}
                "sslQuorum" => c.ssl_quorum_enabled = parse_bool(key, value)?,
                "portUnification" => c.port_unification = parse_bool(key, value)?,
                "quorumListenOnAllIPs" => c.quorum_listen_on_all_ips = parse_bool(key, value)?,
                // Security settings Conclave cannot honour stop the server
                // with the reason, rather than leave it running with less
                // protection than its configuration says.
                "quorum.auth.enableSasl"
                | "quorum.auth.learnerRequireSasl"
                | "quorum.auth.serverRequireSasl" => {
                    if parse_bool(key, value)? {
                        return Err(ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            reason: "quorum SASL is not supported; authenticate servers with \
                                     sslQuorum=true and ssl.quorum.* certificates"
                                .to_owned(),
                        });
                    }
                }
                "DigestAuthenticationProvider.digestAlg" => {
                    if !value.eq_ignore_ascii_case("SHA1") {
                        return Err(ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            reason: "digest ids are SHA1, as ZooKeeper's default; another \
                                     algorithm is not supported"
                                .to_owned(),
                        });
                    }
                }
                "maxClientCnxns" => c.max_client_cnxns = parse_num(key, value)?,
                "maxCnxns" => c.max_cnxns = parse_num(key, value)?,
                "minSessionTimeout" => {
                    let v: i32 = parse_num(key, value)?;
                    c.min_session_timeout_ms = if v == -1 { tick.saturating_mul(2) } else { v };
                }
                "maxSessionTimeout" => {
                    let v: i32 = parse_num(key, value)?;
                    c.max_session_timeout_ms = if v == -1 { tick.saturating_mul(20) } else { v };
                }
                "jute.maxbuffer" => c.max_buffer = parse_num(key, value)?,
                "4lw.commands.whitelist" => c.four_letter_whitelist = parse_whitelist(value),
                "admin.enableServer" => c.admin_enabled = parse_bool(key, value)?,
                "admin.serverPort" => admin_port = parse_num(key, value)?,
                "admin.serverAddress" => admin_ip = parse_ip(key, value)?,
                "admin.commandURL" => c.admin_command_url = value.to_owned(),
                "admin.forceHttps" => c.admin_force_https = parse_bool(key, value)?,
                "admin.portUnification" => c.admin_port_unification = parse_bool(key, value)?,
                "admin.needClientAuth" => c.admin_need_client_auth = parse_bool(key, value)?,
                "extendedTypesEnabled" => c.extended_types_enabled = parse_bool(key, value)?,
                "java.security.auth.login.config" => jaas = Some(PathBuf::from(value)),
                "sasl.serverconfig" => jaas_section = value.to_owned(),
                "enforce.auth.enabled" => enforce = parse_bool(key, value)?,
                "enforce.auth.schemes" => {
                    enforce_schemes = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "sessionRequireClientSASLAuth" => require_sasl |= parse_bool(key, value)?,
                "requireClientAuthScheme" => {
                    if value != "sasl" {
                        return Err(ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            reason: "the one scheme ZooKeeper requires this way is sasl".into(),
                        });
                    }
                    require_sasl = true;
                }
                k if k.starts_with("authProvider.")
                    && value.ends_with("SASLAuthenticationProvider") =>
                {
                    c.sasl_acls = true;
                }
                k if k.starts_with("authProvider.")
                    && value.ends_with("X509AuthenticationProvider") =>
                {
                    c.x509_acls = true;
                }
                "X509AuthenticationProvider.superUser" => {
                    c.x509_super_user = Some(value.to_owned());
                }
                // The providers every server has.
                k if k.starts_with("authProvider.")
                    && (value.ends_with(".DigestAuthenticationProvider")
                        || value.ends_with(".IPAuthenticationProvider")) => {}
                "DigestAuthenticationProvider.superDigest" => {
                    c.super_digest = Some(value.to_owned())
                }
                "skipACL" => c.skip_acl = value == "yes",
                "reconfigEnabled" => c.reconfig_enabled = parse_bool(key, value)?,
                "initLimit" => c.init_limit = Some(parse_num(key, value)?),
                "syncLimit" => c.sync_limit = Some(parse_num(key, value)?),
                "standaloneEnabled" => c.standalone_enabled = parse_bool(key, value)?,
                "readonlymode.enabled" => c.read_only_mode = parse_bool(key, value)?,
                "conclave.join" => c.join = parse_bool(key, value)?,
                "conclave.peerMaxFrameBytes" => {
                    c.peer_max_frame = parse_in(key, value, 64 << 10, 1 << 30)?;
                }
                "conclave.snapshotChunkBytes" => {
                    c.snapshot_chunk_bytes = parse_in(key, value, 1 << 10, 64 << 20)?;
                }
                "conclave.snapshotSendBytesPerSec" => {
                    c.snapshot_send_rate = parse_num(key, value)?;
                }
                "conclave.recoverAlone" => {
                    c.recover_alone = Some(RecoverAloneKey::parse(key, value)?)
                }
                "conclave.adminToken" => {
                    c.admin_token = Some(value.to_owned()).filter(|t| !t.is_empty());
                }
                "conclave.adminTokenFile" => {
                    let text =
                        std::fs::read_to_string(value).map_err(|e| ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            reason: format!("cannot read it: {e}"),
                        })?;
                    c.admin_token = text
                        .lines()
                        .next()
                        .map(|l| l.trim().to_owned())
                        .filter(|t| !t.is_empty());
                }
                "conclave.ensembleName" => {
                    if value.is_empty() || value.len() > consensus::wire::MAX_ENSEMBLE_NAME {
                        return Err(ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            reason: "an ensemble name is 1 to 255 bytes".to_owned(),
                        });
                    }
                    c.ensemble_name = value.to_owned();
                }
                "peerType" => {
                    use crate::ensemble_config::MemberRole;
                    c.peer_type = Some(match value.to_ascii_lowercase().as_str() {
                        "observer" => MemberRole::Observer,
                        "participant" => MemberRole::Participant,
                        _ => {
                            return Err(ConfigError::BadValue {
                                key: key.to_owned(),
                                value: value.to_owned(),
                                reason: "unrecognised peer type (observer or participant)"
                                    .to_owned(),
                            });
                        }
                    })
                }
                "znode.container.checkIntervalMs" => {
                    c.container_check_interval = Duration::from_millis(parse_num(key, value)?)
                }
                "znode.container.maxPerMinute" => {
                    c.container_max_per_minute = parse_num(key, value)?
                }
                "znode.container.maxNeverUsedIntervalMs" => {
                    c.container_max_never_used_ms = parse_num(key, value)?
                }
                "globalOutstandingLimit" => c.global_outstanding_limit = parse_num(key, value)?,
                "snapCount" => snap_count = parse_num(key, value)?,
                // ZooKeeper raises values below 3 to 3.
                "autopurge.snapRetainCount" => {
                    snap_retain = parse_num::<u64>(key, value)?.max(3);
                }
                k if k.starts_with("server.") => {
                    let id = parse_num(key, &k["server.".len()..])?;
                    c.servers.push(ServerLine {
                        id,
                        spec: value.to_owned(),
                    });
                }
                k if IGNORED_KEYS.contains(&k)
                    || k.starts_with("ssl.")
                    || k.starts_with("group.")
                    || k.starts_with("weight.")
                    || k.starts_with("authProvider.") =>
                {
                    c.ignored_keys.push(key.to_owned())
                }
                _ => c.ignored_keys.push(key.to_owned()),
            }
        }

        if client_ip.is_some() && client_port.is_none() {
            return Err(ConfigError::Invalid(
                "clientPortAddress is set but clientPort is not set".to_owned(),
            ));
        }
        c.client_addr = SocketAddr::new(
            client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            client_port.unwrap_or(2181),
        );
        if secure_ip.is_some() && secure_port.is_none() {
            return Err(ConfigError::Invalid(
                "secureClientPortAddress is set but secureClientPort is not set".to_owned(),
            ));
        }
        c.secure_client_addr = secure_port.map(|port| {
            SocketAddr::new(secure_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
        });
        c.admin_addr = SocketAddr::new(admin_ip, admin_port);
        c.client_port_set = client_port;
        c.data_log_dir = data_log_dir.unwrap_or_else(|| c.data_dir.clone());
        c.log_retention_entries = snap_count.saturating_mul(snap_retain).max(1);
        if enforce {
            if enforce_schemes.is_empty() {
                return Err(ConfigError::Invalid(
                    "enforce.auth.enabled=true needs enforce.auth.schemes (e.g. sasl, digest)"
                        .to_owned(),
                ));
            }
            c.enforce_auth = Some(enforce_schemes);
        }
        if require_sasl {
            let schemes = c.enforce_auth.get_or_insert_with(Vec::new);
            if !schemes.iter().any(|s| s == "sasl") {
                schemes.push("sasl".to_owned());
            }
        }
        if let Some(path) = jaas {
            c.sasl_users = crate::sasl::SaslUsers::read(&path, &jaas_section)
                .map_err(|e| ConfigError::BadValue {
                    key: "java.security.auth.login.config".to_owned(),
                    value: path.display().to_string(),
                    reason: e.to_string(),
                })?
                .map(std::sync::Arc::new);
        }
        c.validate()?;
        Ok(c)
    }

    /// The optional ACL schemes this server has providers for.
    pub fn acl_providers(&self) -> tree::acl::Providers {
        tree::acl::Providers {
            sasl: self.sasl_acls,
            x509: self.x509_acls,
        }
    }

    /// Cross-key checks, run after flags are applied too.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "minSessionTimeout ({}) must not be larger than maxSessionTimeout ({})",
                self.min_session_timeout_ms, self.max_session_timeout_ms
            )));
        }
        if self.admin_need_client_auth && !self.admin_force_https && !self.admin_port_unification {
            return Err(ConfigError::Invalid(
                "admin.needClientAuth=true asks for client certificates on HTTPS, which the \
                 admin port speaks only with admin.forceHttps=true or admin.portUnification=true"
                    .to_owned(),
            ));
        }
        if self.max_buffer < 1024 {
            return Err(ConfigError::BadValue {
                key: "jute.maxbuffer".into(),
                value: self.max_buffer.to_string(),
                reason: "must be at least 1024 bytes".into(),
            });
        }
        Ok(())
    }

    /// The store's directory: `store` under dataLogDir (which defaults to
    /// dataDir), so the log can live on its own disk as in ZooKeeper.
    pub fn store_dir(&self) -> PathBuf {
        self.data_log_dir.join("store")
    }

    /// Reads `dataDir/myid` if present (one integer, as ZooKeeper writes it).
    pub fn load_myid(&mut self) -> Result<(), ConfigError> {
        let path = self.data_dir.join("myid");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                self.server_id = Some(parse_num("myid", text.trim())?);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Is this four-letter word enabled (`FourLetterCommands.isEnabled`)?
    /// `srvr` always is: ZooKeeper's own scripts depend on it.
    pub fn four_letter_enabled(&self, cmd: &str) -> bool {
        if cmd == "srvr" {
            return true;
        }
        match &self.four_letter_whitelist {
            None => true,
            Some(list) => list.iter().any(|c| c == cmd),
        }
    }
}

/// `4lw.commands.whitelist`: comma-separated, `*` for all.
fn parse_whitelist(value: &str) -> Option<Vec<String>> {
    let names: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if names.iter().any(|n| n == "*") {
        return None;
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
    }

    #[test]
    fn defaults_follow_tick_time() {
        let c = Config::from_properties(&props("tickTime=2000\nclientPort=2182")).unwrap();
        assert_eq!(c.min_session_timeout_ms, 4000);
        assert_eq!(c.max_session_timeout_ms, 40000);
        assert_eq!(c.client_addr.port(), 2182);
        assert_eq!(c.four_letter_whitelist, Some(vec!["srvr".to_owned()]));
    }

    #[test]
    fn security_settings_that_cannot_be_honoured_stop_the_server() {
        for line in [
            "quorum.auth.enableSasl=true",
            "quorum.auth.learnerRequireSasl=true",
            "requireClientAuthScheme=digest",
            "java.security.auth.login.config=/nonexistent/jaas.conf",
            "ssl.crl=true",
            "ssl.quorum.ocsp=true",
            "ssl.quorum.enabledProtocols=TLSv1.1",
            "ssl.quorum.clientAuth=none",
            "DigestAuthenticationProvider.digestAlg=SHA-256",
        ] {
            let key = line.split('=').next().unwrap_or_default();
            let err = Config::from_properties(&props(line))
                .err()
                .unwrap_or_else(|| panic!("{line} was taken"));
            assert!(err.to_string().starts_with(key), "{line}: {err}");
        }
        for line in [
            "quorum.auth.enableSasl=false",
            "DigestAuthenticationProvider.digestAlg=SHA1",
            "ssl.quorum.ocsp=false",
            "sslQuorum=false",
        ] {
            let c = Config::from_properties(&props(line)).unwrap();
            assert!(c.ignored_keys.is_empty(), "{line}: {:?}", c.ignored_keys);
        }
        let c = Config::from_properties(&props(
            "sslQuorum=true\nportUnification=true\nquorumListenOnAllIPs=true\n\
             ssl.quorum.keyStore.location=/tls/m.pem\nssl.quorum.hostnameVerification=false",
        ))
        .unwrap();
        assert!(c.ssl_quorum_enabled && c.port_unification && c.quorum_listen_on_all_ips);
        assert!(!c.ssl_quorum.hostname_verification);
        assert_eq!(c.ssl.key_store.location, None);
        assert!(c.ignored_keys.is_empty(), "{:?}", c.ignored_keys);
    }

    #[test]
    fn enforced_authentication_schemes() {
        let c = Config::from_properties(&props(
            "enforce.auth.enabled=true\nenforce.auth.schemes=sasl, digest",
        ))
        .unwrap();
        assert_eq!(
            c.enforce_auth,
            Some(vec!["sasl".to_owned(), "digest".to_owned()])
        );
        let c =
            Config::from_properties(&props("zookeeper.sessionRequireClientSASLAuth=true")).unwrap();
        assert_eq!(c.enforce_auth, Some(vec!["sasl".to_owned()]));
        assert!(Config::from_properties(&props("enforce.auth.enabled=true")).is_err());
        let c = Config::from_properties(&props("enforce.auth.enabled=false")).unwrap();
        assert_eq!(c.enforce_auth, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::from_properties(&props("clientPort=abc")).unwrap_err();
        assert!(err.to_string().starts_with("clientPort:"), "{err}");
        let err = Config::from_properties(&props("minSessionTimeout=9\nmaxSessionTimeout=8"))
            .unwrap_err();
        assert!(err.to_string().contains("minSessionTimeout"), "{err}");
    }

    #[test]
    fn recover_alone_names_a_server_and_a_token_that_can_name_a_file() {
        let c = Config::from_properties(&props("conclave.recoverAlone=2:20261126T1815Z")).unwrap();
        assert_eq!(
            c.recover_alone,
            Some(RecoverAloneKey {
                server: 2,
                token: "20261126T1815Z".into()
            })
        );
        for bad in ["2", "x:t", "2:", "2:../../etc", "2:a b"] {
            let err = Config::from_properties(&props(&format!("conclave.recoverAlone={bad}")))
                .unwrap_err();
            assert!(
                err.to_string().starts_with("conclave.recoverAlone:"),
                "{err}"
            );
        }
    }

    #[test]
    fn unknown_and_java_keys_are_reported() {
        let c = Config::from_properties(&props("electionAlg=3\nfoo.bar=1\nserver.1=h:2888:3888"))
            .unwrap();
        assert_eq!(c.ignored_keys, ["electionAlg", "foo.bar"]);
        assert_eq!(
            c.servers,
            [ServerLine {
                id: 1,
                spec: "h:2888:3888".into()
            }]
        );
    }

    #[test]
    fn retention_follows_snap_count_and_retain_count() {
        let c = Config::from_properties(&props("snapCount=50")).unwrap();
        assert_eq!(c.log_retention_entries, 150);
        let c =
            Config::from_properties(&props("snapCount=50\nautopurge.snapRetainCount=5")).unwrap();
        assert_eq!(c.log_retention_entries, 250);
        let c =
            Config::from_properties(&props("snapCount=50\nautopurge.snapRetainCount=1")).unwrap();
        assert_eq!(c.log_retention_entries, 150, "ZooKeeper keeps at least 3");
    }

    #[test]
    fn whitelist() {
        let c = Config::from_properties(&props("4lw.commands.whitelist=*")).unwrap();
        assert!(c.four_letter_enabled("mntr"));
        let c = Config::from_properties(&props("4lw.commands.whitelist=ruok, stat")).unwrap();
        assert!(c.four_letter_enabled("stat") && !c.four_letter_enabled("mntr"));
        assert!(c.four_letter_enabled("srvr"), "srvr is always enabled");
    }
}
