//! The admin HTTP server (ZooKeeper's AdminServer on `admin.serverPort`):
//! `GET /commands` lists the commands, `GET /commands/<name>` answers a
//! command as a JSON object in the AdminServer's shape, `/metrics` exposes
//! Prometheus text, and `/healthz` / `/readyz` answer liveness and
//! readiness probes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::processor::AdminQuery;
use crate::report;
use crate::server::Shared;

/// (primary name, aliases) of every command served.
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connection_stat_reset", &["crst"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("get_trace_mask", &["gtmk"]),
    ("is_read_only", &["isro"]),
    ("monitor", &["mntr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("stat_reset", &["srst"]),
    ("stats", &["stat"]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
];

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    if let Err(e) = axum::serve(listener, router(shared)).await {
        tracing::error!(error = %e, "admin server stopped");
    }
}

/// The routes, separate from the listener so tests can call them directly.
pub fn router(shared: Arc<Shared>) -> Router {
    let base = shared.config.admin_command_url.trim_end_matches('/').to_owned();
    Router::new()
        .route(&base, get(list))
        .route(&format!("{base}/"), get(list))
        .route(&format!("{base}/{{name}}"), get(command))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

fn primary_name(name: &str) -> Option<&'static str> {
    COMMANDS.iter().find(|(p, aliases)| *p == name || aliases.contains(&name)).map(|(p, _)| *p)
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let base = shared.config.admin_command_url.trim_end_matches('/');
    let mut html = "<h1>Available commands</h1>\n".to_owned();
    for (name, _) in COMMANDS {
        html.push_str(&format!("<a href=\"{base}/{name}\">{name}</a><br/>\n"));
    }
    ([(header::CONTENT_TYPE, "text/html")], html).into_response()
}

async fn command(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let Some(primary) = primary_name(&name) else {
        let body = json!({
            "command": name,
            "error": format!("Unknown command: {name}"),
        });
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let mut fields = Map::new();
    fields.insert("command".into(), json!(primary));
    fields.insert("error".into(), Value::Null);
    match command_fields(primary, &shared).await {
        Ok(extra) => fields.extend(extra),
        Err(message) => {
            fields.insert("error".into(), json!(message));
        }
    }
    axum::Json(Value::Object(fields)).into_response()
}

async fn command_fields(name: &str, shared: &Shared) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    match name {
        "ruok" => {}
        "is_read_only" => {
            m.insert("read_only".into(), json!(false));
        }
        "get_trace_mask" => {
            m.insert("tracemask".into(), json!(report::TRACE_MASK));
        }
        "environment" => {
            for (k, v) in report::environment() {
                m.insert(k.into(), json!(v));
            }
        }
        "configuration" => {
            let c = &shared.config;
            m.insert("client_port".into(), json!(c.client_addr.port()));
            m.insert("data_dir".into(), json!(c.data_dir.display().to_string()));
            m.insert("data_dir_size".into(), json!(report::dir_size(&c.data_dir)));
            m.insert("data_log_dir".into(), json!(c.data_log_dir.display().to_string()));
            m.insert("data_log_size".into(), json!(report::dir_size(&c.data_log_dir)));
            m.insert("tick_time".into(), json!(c.tick_time_ms));
            m.insert("max_client_cnxns".into(), json!(c.max_client_cnxns));
            m.insert("min_session_timeout".into(), json!(c.min_session_timeout_ms));
            m.insert("max_session_timeout".into(), json!(c.max_session_timeout_ms));
            m.insert("server_id".into(), json!(c.server_id.unwrap_or(0)));
            m.insert("client_port_listen_backlog".into(), json!(-1));
        }
        "dirs" => {
            m.insert("datadir_size".into(), json!(report::dir_size(&shared.config.data_dir)));
            m.insert("logdir_size".into(), json!(report::dir_size(&shared.config.data_log_dir)));
        }
        "connection_stat_reset" => {
            report::query(shared, AdminQuery::ResetConnectionStats).await.ok_or(report::NOT_SERVING)?;
        }
        "stat_reset" => {
            report::query(shared, AdminQuery::ResetServerStats).await.ok_or(report::NOT_SERVING)?;
        }
        _ => {
            let s = report::snapshot(shared).await.ok_or(report::NOT_SERVING)?;
            match name {
                "monitor" => {
                    for (k, v) in report::monitor(&s, shared) {
                        m.insert(k.into(), number_or_string(&v));
                    }
                }
                "server_stats" | "stats" => {
                    let l = &s.stats.latency;
                    m.insert("version".into(), json!(report::VERSION));
                    m.insert("read_only".into(), json!(false));
                    m.insert(
                        "server_stats".into(),
                        json!({
                            "packets_sent": s.stats.packets_sent,
                            "packets_received": s.stats.packets_received,
                            "fsync_threshold_exceed_count": 0,
                            "client_response_stats": {
                                "last_buffer_size": s.stats.last_client_response_size.map_or(-1, |v| v as i64),
                                "min_buffer_size": s.stats.min_client_response_size.map_or(-1, |v| v as i64),
                                "max_buffer_size": s.stats.max_client_response_size.map_or(-1, |v| v as i64),
                            },
                            "data_dir_size": report::dir_size(&shared.config.data_dir),
                            "log_dir_size": report::dir_size(&shared.config.data_log_dir),
                            "provider_null": false,
                            "server_state": "standalone",
                            "outstanding_requests": 0,
                            "min_latency": l.min_ms,
                            "avg_latency": l.avg(),
                            "max_latency": l.max_ms,
                            "uptime": s.uptime_ms,
                            "num_alive_client_connections": s.connections.len(),
                            "last_processed_zxid": s.last_zxid,
                            "auth_failed_count": s.stats.auth_failed,
                            "non_mtls_remote_conn_count": 0,
                            "non_mtls_local_conn_count": 0,
                        }),
                    );
                    m.insert(
                        "client_response".into(),
                        json!({
                            "last_buffer_size": s.stats.last_client_response_size.map_or(-1, |v| v as i64),
                            "min_buffer_size": s.stats.min_client_response_size.map_or(-1, |v| v as i64),
                            "max_buffer_size": s.stats.max_client_response_size.map_or(-1, |v| v as i64),
                        }),
                    );
                    m.insert("node_count".into(), json!(s.node_count));
                    if name == "stats" {
                        let conns: Vec<Value> = s.connections.iter().map(connection_json).collect();
                        m.insert("connections".into(), Value::Array(conns));
                        m.insert("secure_connections".into(), json!([]));
                    }
                }
                "connections" => {
                    let conns: Vec<Value> = s.connections.iter().map(connection_json).collect();
                    m.insert("connections".into(), Value::Array(conns));
                    m.insert("secure_connections".into(), json!([]));
                }
                "dump" => {
                    let expiry: Map<String, Value> = s
                        .sessions
                        .iter()
                        .map(|(id, timeout)| (format!("0x{id:x}"), json!(timeout)))
                        .collect();
                    m.insert("expiry_time_to_session_ids".into(), Value::Object(expiry));
                    let eph: Map<String, Value> =
                        s.ephemerals.iter().map(|(id, paths)| (id.to_string(), json!(paths))).collect();
                    m.insert("session_id_to_ephemeral_paths".into(), Value::Object(eph));
                }
                "watch_summary" => {
                    let (conns, paths, total) = s.watch_summary;
                    m.insert("num_connections".into(), json!(conns));
                    m.insert("num_paths".into(), json!(paths));
                    m.insert("num_total_watches".into(), json!(total));
                }
                "watches" => {
                    let w: Map<String, Value> =
                        s.watches_by_session.iter().map(|(id, paths)| (id.to_string(), json!(paths))).collect();
                    m.insert("session_id_to_watched_paths".into(), Value::Object(w));
                }
                "watches_by_path" => {
                    let w: Map<String, Value> =
                        s.watches_by_path.iter().map(|(p, ids)| (p.clone(), json!(ids))).collect();
                    m.insert("path_to_session_ids".into(), Value::Object(w));
                }
                _ => return Err(format!("Unknown command: {name}")),
            }
        }
    }
    Ok(m)
}

fn connection_json(c: &crate::processor::ConnectionInfo) -> Value {
    let st = &c.stats;
    json!({
        "remote_socket_address": c.remote.to_string(),
        "interest_ops": 1,
        "outstanding_requests": 0,
        "packets_received": st.packets_received,
        "packets_sent": st.packets_sent,
        "session_id": format!("{:x}", c.session_id),
        "last_operation": st.last_op,
        "established": st.established_ms,
        "session_timeout": c.timeout_ms,
        "last_cxid": st.last_cxid,
        "last_zxid": st.last_zxid,
        "last_response_time": st.last_response_ms,
        "last_latency": st.last_latency_ms,
        "min_latency": st.latency.min_ms,
        "avg_latency": st.latency.avg(),
        "max_latency": st.latency.max_ms,
    })
}

fn number_or_string(v: &str) -> Value {
    if let Ok(n) = v.parse::<i64>() {
        json!(n)
    } else if let Ok(f) = v.parse::<f64>() {
        json!(f)
    } else {
        json!(v)
    }
}

/// Prometheus text exposition of the monitor values that are numbers.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let Some(s) = report::snapshot(&shared).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, report::NOT_SERVING).into_response();
    };
    let mut out = String::new();
    for (key, value) in report::monitor(&s, &shared) {
        if value.parse::<f64>().is_ok() {
            out.push_str(&format!("# TYPE {key} gauge\n{key} {value}\n"));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the processor answers, i.e. requests are being served. A
/// standalone server is its own quorum.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match report::snapshot(&shared).await {
        Some(_) => (StatusCode::OK, "ready\n").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not serving\n").into_response(),
    }
}
