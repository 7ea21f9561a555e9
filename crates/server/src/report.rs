//! Text and key/value renderings of server state shared by the four-letter
//! words and the admin HTTP API, in ZooKeeper's formats
//! (`ServerStats.toString`, `ServerCnxn.dumpConnectionInfo`,
//! `ZooKeeperServer.dumpConf`, `MonitorCommand`, `Environment.list`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use crate::config::Config;
use crate::processor::{AdminAnswer, AdminQuery, Command, ConnectionInfo, ServerSnapshot};
use crate::server::Shared;

/// The version Conclave reports: the ZooKeeper release whose protocol and
/// semantics it implements, then its own name and version. Clients such as
/// kazoo parse the leading digits to decide which features they may use.
pub const VERSION: &str =
    concat!("3.8.0-conclave-", env!("CARGO_PKG_VERSION"), ", built on conclave");

/// `ZooTrace.getTextTraceLevel()` default.
pub const TRACE_MASK: i64 = 306;

pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Asks the processor something; `None` if it is gone.
pub async fn query(shared: &Shared, query: AdminQuery) -> Option<AdminAnswer> {
    let (tx, rx) = oneshot::channel();
    shared.commands.send(Command::Admin(query, tx)).await.ok()?;
    rx.await.ok()
}

pub async fn snapshot(shared: &Shared) -> Option<ServerSnapshot> {
    match query(shared, AdminQuery::Snapshot).await? {
        AdminAnswer::Snapshot(s) => Some(*s),
        AdminAnswer::Done => None,
    }
}

/// `ServerStats.toString()` plus the node count, as `srvr` prints them.
pub fn server_stats_text(s: &ServerSnapshot) -> String {
    let l = &s.stats.latency;
    let mut out = String::new();
    let _ = writeln!(out, "Latency min/avg/max: {}/{}/{}", l.min_ms, java_double(l.avg()), l.max_ms);
    let _ = writeln!(out, "Received: {}", s.stats.packets_received);
    let _ = writeln!(out, "Sent: {}", s.stats.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.connections.len());
    let _ = writeln!(out, "Outstanding: 0");
    let _ = writeln!(out, "Zxid: 0x{:x}", s.last_zxid);
    let _ = writeln!(out, "Mode: standalone");
    let _ = writeln!(out, "Node count: {}", s.node_count);
    out
}

/// A Java `double` as `String.valueOf` prints it (always with a fraction).
pub fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 { format!("{v:.1}") } else { format!("{v}") }
}

/// One line of `cons` (brief for `stat`).
pub fn connection_line(c: &ConnectionInfo, brief: bool) -> String {
    let st = &c.stats;
    let mut out = format!(
        " /{}[1](queued=0,recved={},sent={}",
        c.remote, st.packets_received, st.packets_sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id, st.last_op, st.established_ms, c.timeout_ms
        );
        if st.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", st.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            st.last_zxid,
            st.last_response_ms,
            st.last_latency_ms,
            st.latency.min_ms,
            java_double(st.latency.avg()),
            st.latency.max_ms
        );
    }
    out.push(')');
    out
}

/// `mntr` keys (without the `zk_` prefix) and values, in ZooKeeper's order:
/// version and state first, then gauges and counters.
pub fn monitor(s: &ServerSnapshot, shared: &Shared) -> Vec<(&'static str, String)> {
    let l = &s.stats.latency;
    let size = |v: Option<usize>| v.map_or_else(|| "-1".to_owned(), |v| v.to_string());
    let (fds_open, fds_max) = file_descriptors();
    vec![
        ("version", VERSION.to_owned()),
        ("server_state", "standalone".to_owned()),
        ("ephemerals_count", s.ephemerals_count.to_string()),
        ("num_alive_connections", s.connections.len().to_string()),
        ("avg_latency", java_double(l.avg())),
        ("outstanding_requests", "0".to_owned()),
        ("znode_count", s.node_count.to_string()),
        ("global_sessions", s.sessions.len().to_string()),
        ("non_mtls_remote_conn_count", "0".to_owned()),
        ("last_client_response_size", size(s.stats.last_client_response_size)),
        ("packets_sent", s.stats.packets_sent.to_string()),
        ("packets_received", s.stats.packets_received.to_string()),
        ("max_client_response_size", size(s.stats.max_client_response_size)),
        ("connection_drop_probability", "0.0".to_owned()),
        ("watch_count", s.watch_count.to_string()),
        ("auth_failed_count", s.stats.auth_failed.to_string()),
        ("min_latency", l.min_ms.to_string()),
        ("max_file_descriptor_count", fds_max.to_string()),
        ("approximate_data_size", s.approximate_data_size.to_string()),
        ("open_file_descriptor_count", fds_open.to_string()),
        ("local_sessions", "0".to_owned()),
        ("uptime", s.uptime_ms.to_string()),
        ("max_latency", l.max_ms.to_string()),
        ("outstanding_tls_handshake", "0".to_owned()),
        ("min_client_response_size", size(s.stats.min_client_response_size)),
        ("non_mtls_local_conn_count", "0".to_owned()),
        ("commit_count", s.stats.commit_count.to_string()),
        ("connection_rejected", shared.connections_rejected.load(Ordering::Relaxed).to_string()),
    ]
}

/// Open and maximum file descriptors of this process (Linux `/proc`).
fn file_descriptors() -> (usize, u64) {
    let open = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    (open, max)
}

/// `conf` (`ZooKeeperServer.dumpConf`).
pub fn conf_text(config: &Config) -> String {
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()).display().to_string();
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={}", config.client_addr.port());
    let _ = writeln!(out, "secureClientPort=-1");
    let _ = writeln!(out, "dataDir={}", abs(&config.data_dir));
    let _ = writeln!(out, "dataDirSize={}", dir_size(&config.data_dir));
    let _ = writeln!(out, "dataLogDir={}", abs(&config.data_log_dir));
    let _ = writeln!(out, "dataLogSize={}", dir_size(&config.data_log_dir));
    let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", config.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", config.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", config.max_session_timeout_ms);
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let _ = writeln!(out, "serverId={}", config.server_id.unwrap_or(0));
    out
}

/// `dirs`.
pub fn dirs_text(config: &Config) -> String {
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        dir_size(&config.data_dir),
        dir_size(&config.data_log_dir)
    )
}

/// Total size of the files directly in a directory (ZooKeeper sums its
/// snapshot and log directories the same way).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

/// `envi` (`Environment.list`), with this process's facts in place of the
/// JVM's.
pub fn environment() -> Vec<(&'static str, String)> {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "<NA>".to_owned());
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "<NA>".to_owned());
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", host),
        ("java.version", "<NA>".to_owned()),
        ("java.vendor", "<NA>".to_owned()),
        ("java.home", "<NA>".to_owned()),
        ("java.class.path", "<NA>".to_owned()),
        ("java.library.path", "<NA>".to_owned()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".to_owned()),
        ("os.name", capitalize(std::env::consts::OS)),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("os.version", os_version),
        ("user.name", var("USER")),
        ("user.home", var("HOME")),
        ("user.dir", std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()),
        ("os.memory.free", "<NA>".to_owned()),
        ("os.memory.max", "<NA>".to_owned()),
        ("os.memory.total", "<NA>".to_owned()),
    ]
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

pub fn environment_text() -> String {
    let mut out = "Environment:\n".to_owned();
    for (k, v) in environment() {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// `dump`: sessions with their ephemerals, and connections.
pub fn dump_text(s: &ServerSnapshot) -> String {
    let mut out = "SessionTracker dump:\n".to_owned();
    let _ = writeln!(out, "Session Sets ({})/({}):", s.sessions.len(), s.sessions.len());
    for (session, timeout) in &s.sessions {
        let _ = writeln!(out, "0x{session:x}\t{timeout}");
    }
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", s.ephemerals.len());
    for (session, paths) in &s.ephemerals {
        let _ = writeln!(out, "0x{session:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    let _ = writeln!(out, "Connections Sets (1)/({}):", s.connections.len());
    for c in &s.connections {
        let _ = writeln!(out, "{}", connection_line(c, true));
    }
    out
}
