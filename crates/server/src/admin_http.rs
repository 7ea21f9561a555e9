//! The admin HTTP server (ZooKeeper's AdminServer on `admin.serverPort`):
//! `GET /commands` lists the commands, `GET /commands/<name>` answers a
//! command (by its primary name or an alias) as a JSON object in the
//! AdminServer's shape, `/metrics` exposes Prometheus text, and `/healthz`
//! / `/readyz` answer liveness and readiness probes (the last three are
//! Conclave's own; ZooKeeper has no such paths on this port).
//!
//! Command responses follow `CommandResponse.toMap` and Jackson's pretty
//! printer: the command's fields in order, then `command` and `error`,
//! indented by two spaces with ` : ` between key and value. An unknown
//! command is answered 200 with an `error`, as ZooKeeper does.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::processor::{ConnectionInfo, ServerSnapshot};
use crate::report::{self, MetricValue, Value};
use crate::server::Shared;
use crate::stats::BufferStats;

/// One AdminServer command.
#[derive(Debug, Clone, Copy)]
pub struct CommandDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Refused with the not-serving error while the server is not running
    /// (`CommandBase.isServerRequired`).
    pub server_required: bool,
}

const fn cmd(
    name: &'static str,
    aliases: &'static [&'static str],
    server_required: bool,
) -> CommandDef {
    CommandDef {
        name,
        aliases,
        server_required,
    }
}

/// Every command of ZooKeeper 3.8's AdminServer, sorted by primary name as
/// the `/commands` listing shows them.
pub const COMMANDS: &[CommandDef] = &[
    cmd("configuration", &["conf", "config"], true),
    cmd("connection_stat_reset", &["crst"], true),
    cmd("connections", &["cons"], true),
    cmd("dirs", &[], true),
    cmd("dump", &[], true),
    cmd("environment", &["env", "envi"], false),
    cmd("get_trace_mask", &["gtmk"], false),
    cmd("hash", &[], true),
    cmd("initial_configuration", &["icfg"], true),
    cmd("is_read_only", &["isro"], true),
    cmd("last_snapshot", &["lsnp"], true),
    cmd("leader", &["lead"], true),
    cmd("monitor", &["mntr"], false),
    cmd("observer_connection_stat_reset", &["orst"], true),
    cmd("observers", &["obsr"], true),
    cmd("ruok", &[], true),
    cmd("server_stats", &["srvr"], true),
    cmd("set_trace_mask", &["stmk"], false),
    cmd("stat_reset", &["srst"], true),
    cmd("stats", &["stat"], true),
    cmd("system_properties", &["sysp"], false),
    cmd("voting_view", &[], true),
    cmd("watch_summary", &["wchs"], true),
    cmd("watches", &["wchc"], true),
    cmd("watches_by_path", &["wchp"], true),
    cmd("zabstate", &[], false),
];

/// The command a name or alias refers to.
pub fn lookup(name: &str) -> Option<&'static CommandDef> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// A JSON value that keeps its keys in insertion order and prints the way
/// ZooKeeper's Jackson `ObjectMapper` (with `INDENT_OUTPUT`) does.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// Printed as a Java double (`0.0`, `3.6667`).
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    fn uint(v: u64) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }

    fn obj<K: Into<String>>(entries: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The keys of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// Jackson's `DefaultPrettyPrinter` layout: objects one entry per line,
    /// arrays on one line (`[ 1, 2 ]`), empty ones `{ }` and `[ ]`, no
    /// trailing newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, nesting: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Json::Float(v) => out.push_str(&report::java_double(*v)),
            Json::Str(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
            Json::Arr(items) if items.is_empty() => out.push_str("[ ]"),
            Json::Arr(items) => {
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, nesting);
                }
                out.push_str(" ]");
            }
            Json::Obj(entries) if entries.is_empty() => out.push_str("{ }"),
            Json::Obj(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('\n');
                    out.push_str(&"  ".repeat(nesting + 1));
                    out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    out.push_str(" : ");
                    value.write(out, nesting + 1);
                }
                out.push('\n');
                out.push_str(&"  ".repeat(nesting));
                out.push('}');
            }
        }
    }
}

impl From<&Value> for Json {
    fn from(v: &Value) -> Json {
        match v {
            Value::Int(i) => Json::Int(*i),
            Value::Float(f) => Json::Float(*f),
            Value::Text(t) => Json::Str(t.clone()),
        }
    }
}

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    if let Err(e) = axum::serve(listener, router(shared)).await {
        tracing::error!(error = %e, "admin server stopped");
    }
}

/// The routes, separate from the listener so tests can call them directly.
pub fn router(shared: Arc<Shared>) -> Router {
    let base = shared
        .config
        .admin_command_url
        .trim_end_matches('/')
        .to_owned();
    let mut router = Router::new();
    if !base.is_empty() {
        router = router.route(&base, get(list).fallback(method_not_allowed));
    }
    router
        .route(&format!("{base}/"), get(list).fallback(method_not_allowed))
        .route(
            &format!("{base}/{{*name}}"),
            get(command).fallback(method_not_allowed),
        )
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

/// Any method but GET (and HEAD) on the command servlet: 405 with an HTML
/// error page, as ZooKeeper's Jetty answers (`HttpServlet` without `doPost`).
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("HTTP method {method} is not supported by this URL");
    let uri = uri
        .path()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
         <title>Error 405 {message}</title>\n</head>\n<body><h2>HTTP ERROR 405 {message}</h2>\n\
         <table>\n<tr><th>URI:</th><td>{uri}</td></tr>\n<tr><th>STATUS:</th><td>405</td></tr>\n\
         <tr><th>MESSAGE:</th><td>{message}</td></tr>\n</table>\n\n</body>\n</html>\n"
    );
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [
            (header::CONTENT_TYPE, "text/html;charset=iso-8859-1"),
            (header::CACHE_CONTROL, "must-revalidate,no-cache,no-store"),
        ],
        html,
    )
        .into_response()
}

/// `GET /commands`: a link per primary name, each followed by `<br/>`
/// (`JettyAdminServer.commandLinks`); ZooKeeper sets no content type.
async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let base = shared.config.admin_command_url.trim_end_matches('/');
    let mut html = String::new();
    for c in COMMANDS {
        let _ = writeln!(
            html,
            "<a href=\"{base}/{name}\">{name}</a>\n<br/>",
            name = c.name
        );
    }
    Response::new(html.into())
}

async fn command(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let body = run_command(&name, &params, &shared).await;
    ([(header::CONTENT_TYPE, "application/json")], body.render()).into_response()
}

/// `Commands.runCommand`: the response object for `name` (a primary name or
/// an alias) with the request's query parameters.
pub async fn run_command(name: &str, params: &HashMap<String, String>, shared: &Shared) -> Json {
    let Some(def) = lookup(name) else {
        return error_response(name, format!("Unknown command: {name}"));
    };
    let not_serving = || error_response(name, report::NOT_SERVING.to_owned());
    let needs_snapshot = matches!(
        def.name,
        "connections"
            | "dump"
            | "monitor"
            | "server_stats"
            | "stats"
            | "watch_summary"
            | "watches"
            | "watches_by_path"
    );
    let snapshot = if needs_snapshot {
        match report::snapshot(shared).await {
            Some(s) => Some(s),
            None => return not_serving(),
        }
    } else {
        if def.server_required && !report::is_serving(shared).await {
            return not_serving();
        }
        None
    };
    let fields = match (def.name, snapshot) {
        ("connection_stat_reset", _) => {
            if !report::reset_connection_stats(shared).await {
                return not_serving();
            }
            Vec::new()
        }
        ("stat_reset", _) => {
            if !report::reset_server_stats(shared).await {
                return not_serving();
            }
            Vec::new()
        }
        ("set_trace_mask", _) => set_trace_mask(params),
        (name, Some(s)) => snapshot_fields(name, &s, &shared.config),
        (name, None) => config_fields(name, &shared.config),
    };
    finish(def.name, fields)
}

/// `CommandResponse.toMap`: the command's fields, then `command`, then
/// `error` (null unless the command set one, which then keeps its place).
fn finish(command: &str, mut fields: Vec<(String, Json)>) -> Json {
    fields.push(("command".to_owned(), Json::str(command)));
    if !fields.iter().any(|(k, _)| k == "error") {
        fields.push(("error".to_owned(), Json::Null));
    }
    Json::Obj(fields)
}

/// A response that failed before the command ran; it names the command as
/// it was asked for.
fn error_response(name: &str, error: String) -> Json {
    Json::obj([("command", Json::str(name)), ("error", Json::Str(error))])
}

fn set_trace_mask(params: &HashMap<String, String>) -> Vec<(String, Json)> {
    let error = |e: String| vec![("error".to_owned(), Json::Str(e))];
    let Some(raw) = params.get("traceMask") else {
        return error("setTraceMask requires long traceMask argument".to_owned());
    };
    match raw.parse::<i64>() {
        Ok(mask) => {
            report::set_trace_mask(mask);
            vec![("tracemask".to_owned(), Json::Int(mask))]
        }
        Err(_) => error(format!(
            "setTraceMask requires long traceMask argument, got {raw}"
        )),
    }
}

/// Fields of the commands that need no snapshot.
fn config_fields(name: &str, config: &Config) -> Vec<(String, Json)> {
    let fields: Vec<(&str, Json)> = match name {
        "configuration" => vec![
            (
                "client_port",
                Json::Int(i64::from(config.client_addr.port())),
            ),
            (
                "data_dir",
                Json::Str(report::absolute(&report::snap_dir(&config.data_dir))),
            ),
            (
                "data_log_dir",
                Json::Str(report::absolute(&report::snap_dir(&config.data_log_dir))),
            ),
            ("tick_time", Json::Int(i64::from(config.tick_time_ms))),
            (
                "max_client_cnxns",
                Json::Int(i64::from(config.max_client_cnxns)),
            ),
            (
                "min_session_timeout",
                Json::Int(i64::from(config.min_session_timeout_ms)),
            ),
            (
                "max_session_timeout",
                Json::Int(i64::from(config.max_session_timeout_ms)),
            ),
            ("server_id", Json::uint(config.server_id.unwrap_or(0))),
            ("client_port_listen_backlog", Json::Int(-1)),
        ],
        "dirs" => vec![
            (
                "datadir_size",
                Json::uint(report::dir_size(&report::snap_dir(&config.data_dir))),
            ),
            (
                "logdir_size",
                Json::uint(report::dir_size(&report::snap_dir(&config.data_log_dir))),
            ),
        ],
        "environment" => {
            return report::environment()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Json::Str(v)))
                .collect();
        }
        "get_trace_mask" => vec![("tracemask", Json::Int(report::trace_mask()))],
        // Conclave keeps no digest log.
        "hash" => vec![("digests", Json::Arr(Vec::new()))],
        "initial_configuration" => vec![(
            "initial_configuration",
            initial_configuration(config).map_or(Json::Null, Json::Str),
        )],
        "is_read_only" => vec![("read_only", Json::Bool(false))],
        // No snapshot has been written: ZooKeeper's answer for "none".
        "last_snapshot" => {
            vec![
                ("zxid", Json::str(format!("{:x}", -1_i64))),
                ("timestamp", Json::Int(-1)),
            ]
        }
        "leader" => vec![("error", Json::str("server is not initialized"))],
        "observers" => vec![
            ("synced_observers", Json::Int(0)),
            ("observers", Json::Arr(Vec::new())),
        ],
        "system_properties" => {
            return system_properties(config)
                .into_iter()
                .map(|(k, v)| (k, Json::Str(v)))
                .collect();
        }
        "voting_view" => vec![("current_config", Json::Obj(Vec::new()))],
        "zabstate" => vec![("voting", Json::Bool(false)), ("zabstate", Json::str(""))],
        // ruok, observer_connection_stat_reset.
        _ => Vec::new(),
    };
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Fields of the commands that report a snapshot.
pub fn snapshot_fields(name: &str, s: &ServerSnapshot, config: &Config) -> Vec<(String, Json)> {
    let ids = |ids: &[i64]| Json::Arr(ids.iter().map(|id| Json::Int(*id)).collect());
    let paths = |paths: &[String]| Json::Arr(paths.iter().map(|p| Json::str(p.as_str())).collect());
    let fields: Vec<(&str, Json)> = match name {
        "monitor" => {
            return report::monitor(s)
                .iter()
                .map(|(k, v)| (k.clone(), Json::from(v)))
                .collect();
        }
        "connections" => vec![
            (
                "connections",
                Json::Arr(
                    s.connections
                        .iter()
                        .map(|c| connection_json(c, false))
                        .collect(),
                ),
            ),
            ("secure_connections", Json::Arr(Vec::new())),
        ],
        "server_stats" | "stats" => {
            let mut fields = server_stats_fields(s, config);
            if name == "stats" {
                let conns = s
                    .connections
                    .iter()
                    .map(|c| connection_json(c, true))
                    .collect();
                fields.push(("connections", Json::Arr(conns)));
                fields.push(("secure_connections", Json::Arr(Vec::new())));
            }
            fields
        }
        "dump" => vec![
            (
                "expiry_time_to_session_ids",
                Json::obj(
                    report::session_buckets(s)
                        .iter()
                        .map(|(at, s)| (at.to_string(), ids(s))),
                ),
            ),
            (
                "session_id_to_ephemeral_paths",
                Json::obj(
                    s.ephemerals
                        .iter()
                        .map(|(id, p)| (id.to_string(), paths(p))),
                ),
            ),
        ],
        "watch_summary" => {
            let (conns, watched, total) = s.watch_summary;
            vec![
                ("num_connections", Json::uint(conns as u64)),
                ("num_paths", Json::uint(watched as u64)),
                ("num_total_watches", Json::uint(total as u64)),
            ]
        }
        "watches" => vec![(
            "session_id_to_watched_paths",
            Json::obj(
                s.watches_by_session
                    .iter()
                    .map(|(id, p)| (id.to_string(), paths(p))),
            ),
        )],
        "watches_by_path" => vec![(
            "path_to_session_ids",
            Json::obj(s.watches_by_path.iter().map(|(p, s)| (p.clone(), ids(s)))),
        )],
        _ => Vec::new(),
    };
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `SrvrCommand`: version, read-only flag, `ServerStats` as Jackson
/// serialises it, response sizes, node count.
fn server_stats_fields(s: &ServerSnapshot, config: &Config) -> Vec<(&'static str, Json)> {
    let rs = &s.stats.client_response;
    let buffer_stats = || {
        Json::obj([
            ("last_buffer_size", Json::Int(BufferStats::java(rs.last))),
            ("min_buffer_size", Json::Int(BufferStats::java(rs.min))),
            ("max_buffer_size", Json::Int(BufferStats::java(rs.max))),
        ])
    };
    let l = &s.stats.latency;
    let server_stats = Json::obj([
        ("packets_sent", Json::uint(s.stats.packets_sent)),
        ("packets_received", Json::uint(s.stats.packets_received)),
        ("fsync_threshold_exceed_count", Json::Int(0)),
        ("client_response_stats", buffer_stats()),
        (
            "data_dir_size",
            Json::uint(report::dir_size(&report::snap_dir(&config.data_dir))),
        ),
        (
            "log_dir_size",
            Json::uint(report::dir_size(&report::snap_dir(&config.data_log_dir))),
        ),
        ("provider_null", Json::Bool(false)),
        ("server_state", Json::str("standalone")),
        ("last_processed_zxid", Json::Int(s.last_zxid)),
        ("outstanding_requests", Json::Int(0)),
        ("avg_latency", Json::Float(l.avg())),
        ("max_latency", Json::uint(l.max())),
        ("min_latency", Json::uint(l.min())),
        (
            "num_alive_client_connections",
            Json::uint(s.connections.len() as u64),
        ),
        ("uptime", Json::uint(s.uptime_ms)),
        ("auth_failed_count", Json::uint(s.stats.auth_failed)),
        ("non_mtlsremote_conn_count", Json::Int(0)),
        ("non_mtlslocal_conn_count", Json::Int(0)),
    ]);
    vec![
        ("version", Json::str(report::VERSION)),
        ("read_only", Json::Bool(false)),
        ("server_stats", server_stats),
        ("client_response", buffer_stats()),
        ("node_count", Json::uint(s.node_count as u64)),
    ]
}

/// `ServerCnxn.getConnectionInfo`.
fn connection_json(c: &ConnectionInfo, brief: bool) -> Json {
    let st = &c.stats;
    let mut fields = vec![
        (
            "remote_socket_address",
            Json::Str(report::java_socket_addr(&c.remote)),
        ),
        ("interest_ops", Json::Int(i64::from(c.interest_ops))),
        ("outstanding_requests", Json::Int(0)),
        ("packets_received", Json::uint(st.packets_received)),
        ("packets_sent", Json::uint(st.packets_sent)),
    ];
    if !brief {
        fields.extend([
            ("session_id", Json::Int(c.session_id)),
            ("last_operation", Json::str(st.last_op)),
            ("established", Json::Int(st.established_ms)),
            ("session_timeout", Json::Int(i64::from(c.timeout_ms))),
            ("last_cxid", Json::Int(st.last_cxid)),
            ("last_zxid", Json::Int(st.last_zxid)),
            ("last_response_time", Json::Int(st.last_response_ms)),
            ("last_latency", Json::uint(st.last_latency_ms)),
            ("min_latency", Json::uint(st.latency.min_ms)),
            ("avg_latency", Json::uint(st.latency.avg())),
            ("max_latency", Json::uint(st.latency.max_ms)),
        ]);
    }
    Json::obj(fields)
}

/// The configuration file as read at start (`initial_configuration`), if
/// the server was started from one.
fn initial_configuration(config: &Config) -> Option<String> {
    config
        .config_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
}

/// zoo.cfg keys ZooKeeper's `QuorumPeerConfig` consumes; every other key
/// becomes the system property `zookeeper.<key>`.
#[rustfmt::skip]
const QUORUM_PEER_CONFIG_KEYS: &[&str] = &[
    "autopurge.purgeInterval", "autopurge.snapRetainCount", "clientPort", "clientPortAddress",
    "clientPortListenBacklog", "connectToLearnerMasterLimit", "dataDir", "dataLogDir",
    "dynamicConfigFile", "electionAlg", "initLimit", "localSessionsEnabled",
    "localSessionsUpgradingEnabled", "maxClientCnxns", "maxSessionTimeout",
    "metricsProvider.className", "minSessionTimeout", "multiAddress.enabled",
    "multiAddress.reachabilityCheckEnabled", "multiAddress.reachabilityCheckTimeoutMs",
    "observerMasterPort", "oraclePath", "peerType", "portUnification", "quorum.cnxn.threads.size",
    "quorumListenOnAllIPs", "reconfigEnabled", "secureClientPort", "secureClientPortAddress",
    "sslQuorum", "sslQuorumReloadCertFiles", "standaloneEnabled", "syncEnabled", "syncLimit",
    "tickTime",
];

/// `system_properties`, sorted by key: the process facts Java would report
/// as properties, and the zoo.cfg keys ZooKeeper would have turned into
/// `zookeeper.*` properties.
pub fn system_properties(config: &Config) -> Vec<(String, String)> {
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in report::environment() {
        if k == "java.io.tmpdir"
            || (k.starts_with("os.") && !k.starts_with("os.memory."))
            || k.starts_with("user.")
        {
            props.insert(k.to_owned(), v);
        }
    }
    props.insert("file.separator".to_owned(), "/".to_owned());
    props.insert("line.separator".to_owned(), "\n".to_owned());
    props.insert("path.separator".to_owned(), ":".to_owned());
    if let Some(text) = initial_configuration(config) {
        for (key, value) in crate::config::parse_properties(&text) {
            let consumed = QUORUM_PEER_CONFIG_KEYS.contains(&key.as_str())
                || ["server.", "group", "weight", "metricsProvider."]
                    .iter()
                    .any(|p| key.starts_with(p));
            if !consumed {
                props.insert(format!("zookeeper.{key}"), value);
            }
        }
    }
    props.into_iter().collect()
}

/// Prometheus text exposition (format 0.0.4) of the `mntr` metrics: one
/// family per metric with HELP and TYPE lines. Gauges and counters keep
/// their `mntr` names; summaries are Prometheus summaries (`_sum`,
/// `_count`, and quantiles for the percentile ones); version and state are
/// labels of `server_info`.
pub fn prometheus_text(s: &ServerSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP server_info Server version and state (zk_version, zk_server_state); always 1"
    );
    let _ = writeln!(out, "# TYPE server_info gauge");
    let _ = writeln!(
        out,
        "server_info{{version=\"{}\",server_state=\"standalone\"}} 1",
        label_value(report::VERSION)
    );
    for m in report::metrics(s) {
        let help = if m.real || m.help == report::PLACEHOLDER_HELP {
            m.help.to_owned()
        } else {
            format!("{} (placeholder: a neutral value)", m.help)
        };
        let _ = writeln!(
            out,
            "# HELP {} {}",
            m.name,
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        match &m.value {
            MetricValue::Gauge(v) => {
                let _ = writeln!(out, "# TYPE {} gauge\n{} {}", m.name, m.name, v.mntr());
            }
            MetricValue::Counter(v) => {
                let _ = writeln!(out, "# TYPE {} counter\n{} {v}", m.name, m.name);
            }
            MetricValue::Summary(sum) => {
                let _ = writeln!(out, "# TYPE {} summary", m.name);
                let _ = writeln!(
                    out,
                    "{}_sum {}\n{}_count {}",
                    m.name, sum.total, m.name, sum.count
                );
            }
            MetricValue::Percentiles(sum, p) => {
                let _ = writeln!(out, "# TYPE {} summary", m.name);
                for (q, v) in ["0.5", "0.95", "0.99", "0.999"].iter().zip(p) {
                    let _ = writeln!(out, "{}{{quantile=\"{q}\"}} {v}", m.name);
                }
                let _ = writeln!(
                    out,
                    "{}_sum {}\n{}_count {}",
                    m.name, sum.total, m.name, sum.count
                );
            }
            MetricValue::SummarySet(set) => {
                let _ = writeln!(out, "# TYPE {} summary", m.name);
                for (key, sum) in set {
                    let label = format!("{{namespace=\"{}\"}}", label_value(key));
                    let _ = writeln!(out, "{}_sum{label} {}", m.name, sum.total);
                    let _ = writeln!(out, "{}_count{label} {}", m.name, sum.count);
                }
            }
        }
    }
    out
}

fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let Some(s) = report::snapshot(&shared).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, report::NOT_SERVING).into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus_text(&s),
    )
        .into_response()
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the processor answers, i.e. requests are being served. A
/// standalone server is its own quorum.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if report::is_serving(&shared).await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;
    use crate::four_letter::tests::fabricated_snapshot;

    fn shared() -> Arc<Shared> {
        Shared::with_processor(Arc::new(Config::default()))
    }

    async fn get(shared: &Arc<Shared>, uri: &str) -> (StatusCode, Option<String>, String) {
        let response = router(shared.clone())
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let ctype = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn get_json(
        shared: &Arc<Shared>,
        uri: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let (status, ctype, body) = get(shared, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(ctype.as_deref(), Some("application/json"), "{uri}");
        match serde_json::from_str(&body).unwrap() {
            serde_json::Value::Object(m) => m,
            other => panic!("{uri}: not an object: {other}"),
        }
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn monitor_has_zookeepers_keys() {
        let shared = shared();
        let m = get_json(&shared, "/commands/monitor").await;
        let via_alias = get_json(&shared, "/commands/mntr").await;
        assert_eq!(
            m.keys().collect::<Vec<_>>(),
            via_alias.keys().collect::<Vec<_>>()
        );
        assert_eq!(m["command"], "monitor");
        assert!(m["error"].is_null());
        // 2 + 24 gauges + 47 counters + 41 summaries x 5 + 23 x 9, plus command and error.
        assert_eq!(m.len(), 2 + 24 + 47 + 41 * 5 + 23 * 9 + 2);
        for key in [
            "version",
            "server_state",
            "znode_count",
            "watch_count",
            "ephemerals_count",
            "approximate_data_size",
            "num_alive_connections",
            "outstanding_requests",
            "packets_received",
            "packets_sent",
            "avg_latency",
            "min_latency",
            "max_latency",
            "open_file_descriptor_count",
            "max_file_descriptor_count",
            "global_sessions",
            "commit_count",
            "connection_rejected",
            "avg_readlatency",
            "p99_updatelatency",
            "cnt_jvm_pause_time_ms",
        ] {
            assert!(m.contains_key(key), "{key}");
        }
        assert_eq!(m["server_state"], "standalone");
        assert!(
            m["znode_count"].as_u64().unwrap() >= 2,
            "/ and /zookeeper at least"
        );
        assert!(m["avg_latency"].is_f64() && m["connection_drop_probability"].is_f64());
        assert!(m["min_latency"].is_i64());
    }

    #[tokio::test]
    async fn commands_have_zookeepers_key_sets() {
        let shared = shared();
        let cases: &[(&str, &[&str])] = &[
            (
                "configuration",
                &[
                    "client_port",
                    "data_dir",
                    "data_log_dir",
                    "tick_time",
                    "max_client_cnxns",
                    "min_session_timeout",
                    "max_session_timeout",
                    "server_id",
                    "client_port_listen_backlog",
                ],
            ),
            ("connections", &["connections", "secure_connections"]),
            ("dirs", &["datadir_size", "logdir_size"]),
            (
                "dump",
                &[
                    "expiry_time_to_session_ids",
                    "session_id_to_ephemeral_paths",
                ],
            ),
            ("get_trace_mask", &["tracemask"]),
            ("hash", &["digests"]),
            ("initial_configuration", &["initial_configuration"]),
            ("is_read_only", &["read_only"]),
            ("last_snapshot", &["zxid", "timestamp"]),
            ("observers", &["synced_observers", "observers"]),
            ("ruok", &[]),
            ("observer_connection_stat_reset", &[]),
            (
                "server_stats",
                &[
                    "version",
                    "read_only",
                    "server_stats",
                    "client_response",
                    "node_count",
                ],
            ),
            (
                "stats",
                &[
                    "version",
                    "read_only",
                    "server_stats",
                    "client_response",
                    "node_count",
                    "connections",
                    "secure_connections",
                ],
            ),
            ("voting_view", &["current_config"]),
            (
                "watch_summary",
                &["num_connections", "num_paths", "num_total_watches"],
            ),
            ("watches", &["session_id_to_watched_paths"]),
            ("watches_by_path", &["path_to_session_ids"]),
            ("zabstate", &["voting", "zabstate"]),
            ("connection_stat_reset", &[]),
            ("stat_reset", &[]),
        ];
        for (name, keys) in cases {
            let m = get_json(&shared, &format!("/commands/{name}")).await;
            let mut expected: Vec<&str> = keys.to_vec();
            expected.extend(["command", "error"]);
            assert_eq!(
                m.keys().cloned().collect::<Vec<_>>(),
                sorted(&expected),
                "{name}"
            );
            assert_eq!(m["command"], *name);
            assert!(m["error"].is_null(), "{name}");
        }
        let srvr = get_json(&shared, "/commands/srvr").await;
        let server_stats = srvr["server_stats"].as_object().unwrap();
        assert_eq!(
            server_stats.keys().cloned().collect::<Vec<_>>(),
            sorted(&[
                "packets_sent",
                "packets_received",
                "fsync_threshold_exceed_count",
                "client_response_stats",
                "data_dir_size",
                "log_dir_size",
                "provider_null",
                "server_state",
                "last_processed_zxid",
                "outstanding_requests",
                "avg_latency",
                "max_latency",
                "min_latency",
                "num_alive_client_connections",
                "uptime",
                "auth_failed_count",
                "non_mtlsremote_conn_count",
                "non_mtlslocal_conn_count",
            ])
        );
        let env = get_json(&shared, "/commands/envi").await;
        assert_eq!(env["command"], "environment");
        assert_eq!(env.len(), 18 + 2);
        let leader = get_json(&shared, "/commands/lead").await;
        assert_eq!(leader["error"], "server is not initialized");
        let sysp = get_json(&shared, "/commands/sysp").await;
        assert_eq!(sysp["file.separator"], "/");
    }

    #[tokio::test]
    async fn set_trace_mask_requires_its_argument() {
        let shared = shared();
        let missing = get_json(&shared, "/commands/set_trace_mask").await;
        assert_eq!(
            missing["error"],
            "setTraceMask requires long traceMask argument"
        );
        let bad = get_json(&shared, "/commands/stmk?traceMask=x").await;
        assert_eq!(
            bad["error"],
            "setTraceMask requires long traceMask argument, got x"
        );
        let ok = get_json(&shared, "/commands/stmk?traceMask=306").await;
        assert_eq!(
            (ok["tracemask"].as_i64(), ok["command"].as_str()),
            (Some(306), Some("set_trace_mask"))
        );
        assert!(ok["error"].is_null());
    }

    #[tokio::test]
    async fn unknown_command_is_an_error_object() {
        let shared = shared();
        let (status, ctype, body) = get(&shared, "/commands/nosuch").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype.as_deref(), Some("application/json"));
        assert_eq!(
            body,
            "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}"
        );
        let nested = get_json(&shared, "/commands/a/b").await;
        assert_eq!(nested["error"], "Unknown command: a/b");
    }

    #[tokio::test]
    async fn listing_links_every_command() {
        let shared = shared();
        for uri in ["/commands", "/commands/"] {
            let (status, ctype, body) = get(&shared, uri).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(ctype, None);
            let lines: Vec<&str> = body.lines().collect();
            assert_eq!(lines.len(), COMMANDS.len() * 2);
            assert_eq!(
                lines[0],
                "<a href=\"/commands/configuration\">configuration</a>"
            );
            assert_eq!(lines[1], "<br/>");
            assert_eq!(
                lines[lines.len() - 2],
                "<a href=\"/commands/zabstate\">zabstate</a>"
            );
        }
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        assert_eq!(names, COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>());
    }

    /// Checks the text exposition format line by line: every sample belongs
    /// to a family announced by HELP and TYPE, names are valid, values parse.
    fn check_exposition(text: &str) -> Vec<String> {
        let valid_name = |n: &str| {
            let mut chars = n.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        let mut families = Vec::new();
        let mut current: Option<(String, String)> = None;
        let mut helped = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(valid_name(name) && !help.is_empty(), "{line}");
                helped = Some(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(helped.as_deref(), Some(name), "HELP before TYPE: {line}");
                assert!(["gauge", "counter", "summary"].contains(&kind), "{line}");
                assert!(
                    !families.contains(&name.to_owned()),
                    "duplicate family {name}"
                );
                families.push(name.to_owned());
                current = Some((name.to_owned(), kind.to_owned()));
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(valid_name(name), "{line}");
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("value of {line}"));
                let (family, kind) = current.as_ref().expect("sample before TYPE");
                let ok = match kind.as_str() {
                    "summary" => {
                        name == family
                            || name == format!("{family}_sum")
                            || name == format!("{family}_count")
                    }
                    _ => name == family,
                };
                assert!(ok, "{line} outside its family {family}");
                if let Some(labels) = series.strip_prefix(name)
                    && !labels.is_empty()
                {
                    assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                }
            }
        }
        families
    }

    #[tokio::test]
    async fn metrics_are_valid_prometheus_text() {
        let shared = shared();
        let (status, ctype, body) = get(&shared, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.unwrap().starts_with("text/plain; version=0.0.4"));
        let families = check_exposition(&body);
        assert_eq!(families.len(), 1 + 24 + 47 + 41 + 23 + 2);
        assert!(
            body.contains("\n# TYPE znode_count gauge\nznode_count "),
            "{body}"
        );
        assert!(body.contains("\n# TYPE commit_count counter\n"));
        assert!(body.contains("\n# TYPE readlatency summary\nreadlatency{quantile=\"0.5\"} 0\n"));
        assert!(body.contains("server_info{version=\"3.8.0-conclave-"));
        assert!(body.contains("# HELP jvm_pause_time_ms ZooKeeper metric with no counterpart"));
    }

    #[test]
    fn prometheus_text_of_a_busy_snapshot_is_valid() {
        let text = prometheus_text(&fabricated_snapshot());
        check_exposition(&text);
        assert!(text.contains("readlatency_count 2\n"));
        assert!(
            text.contains("\nread_per_namespace_sum{namespace=\"app\"} 82\n"),
            "{text}"
        );
        assert!(text.contains("\navg_latency 7.3333\n"));
    }

    #[tokio::test]
    async fn other_methods_get_jettys_405() {
        let shared = shared();
        for uri in ["/commands/ruok", "/commands"] {
            let response = router(shared.clone())
                .oneshot(
                    Request::builder()
                        .method("POST")
                        .uri(uri)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
            let ctype = response
                .headers()
                .get(header::CONTENT_TYPE)
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(ctype, "text/html;charset=iso-8859-1");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            assert!(body.contains("HTTP ERROR 405 HTTP method POST is not supported by this URL"));
        }
    }

    #[tokio::test]
    async fn probes() {
        let shared = shared();
        assert_eq!(get(&shared, "/healthz").await.0, StatusCode::OK);
        let (status, _, body) = get(&shared, "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ready\n"));
    }

    #[tokio::test]
    async fn a_stopped_processor_is_not_serving() {
        let (commands, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let mut shared = Arc::into_inner(self::shared()).unwrap();
        shared.commands = commands;
        let shared = Arc::new(shared);
        assert_eq!(
            get(&shared, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get(&shared, "/healthz").await.0, StatusCode::OK);
        let m = get_json(&shared, "/commands/srvr").await;
        assert_eq!(m["command"], "srvr", "named as asked");
        assert_eq!(m["error"], report::NOT_SERVING);
        let env = get_json(&shared, "/commands/environment").await;
        assert!(env["error"].is_null(), "environment needs no server");
        assert_eq!(
            get(&shared, "/metrics").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn json_prints_like_jackson() {
        let j = Json::obj([
            (
                "a",
                Json::Arr(vec![
                    Json::obj([("x", Json::Int(1))]),
                    Json::obj([("y", Json::Null)]),
                ]),
            ),
            ("b", Json::Arr(Vec::new())),
            ("c", Json::Obj(Vec::new())),
            ("d", Json::Float(0.0)),
            ("e", Json::Arr(vec![Json::Int(1), Json::Int(2)])),
            ("f", Json::str("q\"\n")),
        ]);
        assert_eq!(
            j.render(),
            "{\n  \"a\" : [ {\n    \"x\" : 1\n  }, {\n    \"y\" : null\n  } ],\n  \"b\" : [ ],\n  \
             \"c\" : { },\n  \"d\" : 0.0,\n  \"e\" : [ 1, 2 ],\n  \"f\" : \"q\\\"\\n\"\n}"
        );
    }

    #[test]
    fn responses_keep_zookeepers_key_order() {
        let s = fabricated_snapshot();
        let config = Config::default();
        let stats = finish("stats", snapshot_fields("stats", &s, &config));
        assert_eq!(
            stats.keys(),
            [
                "version",
                "read_only",
                "server_stats",
                "client_response",
                "node_count",
                "connections",
                "secure_connections",
                "command",
                "error"
            ]
        );
        let Some(Json::Arr(conns)) = stats.get("connections") else {
            panic!()
        };
        assert_eq!(
            conns[0].keys(),
            [
                "remote_socket_address",
                "interest_ops",
                "outstanding_requests",
                "packets_received",
                "packets_sent"
            ]
        );
        let cons = finish("connections", snapshot_fields("connections", &s, &config));
        let Some(Json::Arr(conns)) = cons.get("connections") else {
            panic!()
        };
        assert_eq!(conns[0].keys().len(), 16);
        assert_eq!(
            conns[0].get("session_id"),
            Some(&Json::Int(0x1000019ede60000))
        );
        let leader = finish("leader", config_fields("leader", &config));
        assert_eq!(leader.keys(), ["error", "command"]);
        let dump = finish("dump", snapshot_fields("dump", &s, &config));
        assert_eq!(
            dump.render(),
            "{\n  \"expiry_time_to_session_ids\" : {\n    \"20000\" : [ 72057705403383808, 72057705403383809 ]\n  },\n  \
             \"session_id_to_ephemeral_paths\" : {\n    \"72057705403383808\" : [ \"/app/eph1\" ],\n    \
             \"72057705403383809\" : [ \"/app/eph2\", \"/app/seq-0000000003\" ]\n  },\n  \
             \"command\" : \"dump\",\n  \"error\" : null\n}"
        );
        let monitor = finish("monitor", snapshot_fields("monitor", &s, &config));
        assert_eq!(
            monitor.keys()[..3],
            ["version", "server_state", "ephemerals_count"]
        );
    }
}
