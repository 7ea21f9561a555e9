//! The fields of each AdminServer command's response, in ZooKeeper's key
//! order: those read from the configuration and the process
//! ([`config_fields`]) and those read from a processor snapshot
//! ([`snapshot_fields`]), including `ServerStats` and connection info as
//! Jackson serialises them.

use super::Json;
use super::system_properties::system_properties;
use crate::config::Config;
use crate::processor::{ConnectionInfo, ServerSnapshot};
use crate::report;
use crate::stats::BufferStats;

/// Fields of the commands that need no snapshot.
pub(super) fn config_fields(name: &str, config: &Config) -> Vec<(String, Json)> {
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
        ("server_state", Json::str(s.server_state())),
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
pub(super) fn initial_configuration(config: &Config) -> Option<String> {
    config
        .config_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_http::commands::finish;
    use crate::admin_http::tests::{get_json, shared};
    use crate::four_letter::tests::fabricated_snapshot;

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
