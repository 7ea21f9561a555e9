//! Four-letter words: text commands on the client port
//! (`FourLetterCommands`, `command/*Command.java`). A new connection whose
//! first four bytes spell a known command gets the command's output and is
//! closed. Commands outside `4lw.commands.whitelist` answer that they are not
//! executed; `srvr` is always allowed.
//!
//! As in ZooKeeper, every command counts as a received packet of four bytes,
//! and the connection running it is one of the server's connections while it
//! runs: `stat` and `cons` list it (no session, interest 0), `dump` buckets
//! it, and `srvr`/`mntr` count it.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::{Buf as _, BytesMut};
use tokio::io::AsyncRead;
use tokio::io::AsyncReadExt as _;

use crate::config::Config;
use crate::processor::ServerSnapshot;
use crate::report;
use crate::server::Shared;

/// Every command ZooKeeper 3.8 knows.
pub const COMMANDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// What telnet sends when it closes (IAC DO TIMING-MARK... as an int,
/// `FourLetterCommands.telnetCloseCmd`). ZooKeeper knows it as the command
/// `telnet close`, which does nothing but is subject to the whitelist.
pub const TELNET_CLOSE: [u8; 4] = [0xff, 0xf4, 0xff, 0xfd];
pub const TELNET_CLOSE_NAME: &str = "telnet close";

/// The command spelled by the first four bytes, if any.
pub fn command_at_start(buf: &[u8]) -> Option<&'static str> {
    let word = buf.get(..4)?;
    if word == TELNET_CLOSE {
        return Some(TELNET_CLOSE_NAME);
    }
    COMMANDS.iter().copied().find(|c| c.as_bytes() == word)
}

/// The reply to a command the whitelist does not allow, if it does not
/// (`NopCommand`).
pub fn refusal(cmd: &str, config: &Config) -> Option<String> {
    if config.four_letter_enabled(cmd) {
        None
    } else {
        Some(format!(
            "{cmd} is not executed because it is not in the whitelist.\n"
        ))
    }
}

/// Runs a command arriving on a connection and returns its output.
pub async fn run(
    cmd: &'static str,
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    asker: SocketAddr,
    shared: &Shared,
) -> String {
    let output = answer(cmd, reader, buf, asker, shared).await;
    report::count_four_letter_output(shared, &output).await;
    output
}

async fn answer(
    cmd: &'static str,
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    asker: SocketAddr,
    shared: &Shared,
) -> String {
    // A member of an ensemble without a leader answers like a ZooKeeper
    // server that is not running.
    let serving = report::count_four_letter_word(shared).await;
    if let Some(refused) = refusal(cmd, &shared.config) {
        return refused;
    }
    if cmd == "stmk" {
        // stmk carries an 8-byte mask after the command; without it
        // ZooKeeper fails the read and closes the connection silently.
        while buf.len() < 8 {
            match reader.read_buf(buf).await {
                Ok(n) if n > 0 => {}
                _ => return String::new(),
            }
        }
        let mask = buf.get_i64();
        report::set_trace_mask(mask);
        return mask.to_string();
    }
    execute(cmd, shared, Some(asker), serving).await
}

/// Runs a whitelisted command other than `stmk`. `asker` is the connection
/// it arrived on; `serving` whether the processor answered.
pub async fn execute(
    cmd: &str,
    shared: &Shared,
    asker: Option<SocketAddr>,
    serving: bool,
) -> String {
    let not_serving = || format!("{}\n", report::NOT_SERVING);
    match cmd {
        "ruok" => "imok".to_owned(),
        "gtmk" => report::trace_mask().to_string(),
        "envi" => report::environment_text(),
        // Does nothing; ZooKeeper then reads the word as a negative frame
        // length and closes the connection.
        TELNET_CLOSE_NAME => String::new(),
        "isro" => {
            if serving {
                "rw".to_owned()
            } else if shared.config.read_only_mode {
                report::read_only_state(shared).await.to_owned()
            } else {
                "null".to_owned()
            }
        }
        // Conclave keeps no digest log, so the list is empty; ZooKeeper's
        // not-serving answer has no newline here.
        "hash" => {
            if serving {
                String::new()
            } else {
                report::NOT_SERVING.to_owned()
            }
        }
        "conf" if serving => {
            let mut text = report::conf_text(&shared.config);
            if shared.config.servers.is_empty() {
                return text;
            }
            if let Some(r) = report::snapshot(shared).await.and_then(|s| s.replica) {
                text.push_str(&report::conf_ensemble_text(&r));
            }
            text
        }
        "dirs" if serving => report::dirs_text(&shared.config),
        "crst" | "srst" => {
            let done = serving
                && if cmd == "crst" {
                    report::reset_connection_stats(shared).await
                } else {
                    report::reset_server_stats(shared).await
                };
            match (done, cmd) {
                (false, _) => not_serving(),
                (true, "crst") => "Connection stats reset.\n".to_owned(),
                (true, _) => "Server stats reset.\n".to_owned(),
            }
        }
        "conf" | "dirs" => not_serving(),
        _ if !serving => not_serving(),
        _ => match report::snapshot(shared).await {
            Some(mut snapshot) => {
                if let Some(remote) = asker {
                    snapshot
                        .connections
                        .push(report::four_letter_connection(remote));
                }
                render(cmd, &snapshot)
            }
            None => not_serving(),
        },
    }
}

/// The output of a command that reports a snapshot: `srvr`, `stat`, `cons`,
/// `mntr`, `wchs`, `wchc`, `wchp`, `dump`. Empty for any other name.
pub fn render(cmd: &str, s: &ServerSnapshot) -> String {
    let mut out = String::new();
    match cmd {
        "srvr" => {
            let _ = writeln!(out, "Zookeeper version: {}", report::VERSION);
            out.push_str(&report::server_stats_text(s));
        }
        "stat" => {
            let _ = writeln!(out, "Zookeeper version: {}", report::VERSION);
            out.push_str("Clients:\n");
            for c in &s.connections {
                out.push_str(&report::connection_line(c, true));
                out.push('\n');
            }
            out.push('\n');
            out.push_str(&report::server_stats_text(s));
        }
        "cons" => {
            for c in &s.connections {
                out.push_str(&report::connection_line(c, false));
                out.push('\n');
            }
            out.push('\n');
        }
        "mntr" => {
            for (key, value) in report::monitor(s) {
                let _ = writeln!(out, "zk_{key}\t{}", value.mntr());
            }
        }
        "wchs" => {
            let (conns, paths, total) = s.watch_summary;
            let _ = writeln!(
                out,
                "{conns} connections watching {paths} paths\nTotal watches:{total}"
            );
        }
        "wchc" => {
            for (session, paths) in &s.watches_by_session {
                let _ = writeln!(out, "0x{session:x}");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            for (path, sessions) in &s.watches_by_path {
                let _ = writeln!(out, "{path}");
                for session in sessions {
                    let _ = writeln!(out, "\t0x{session:x}");
                }
            }
            out.push('\n');
        }
        "dump" => out.push_str(&report::dump_text(s)),
        _ => {}
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::processor::ConnectionInfo;
    use crate::stats::{ConnStats, ServerStats};

    /// A snapshot with two client connections, sessions, ephemerals and
    /// watches, like the reference scenario (two kazoo clients).
    pub(crate) fn fabricated_snapshot() -> ServerSnapshot {
        let conn = |port: u16, session: i64, received: u64| {
            let mut stats = ConnStats::new();
            stats.packets_received = received;
            stats.packets_sent = received + 1;
            stats.last_op = "GETD";
            stats.established_ms = 1_795_645_934_460;
            stats.last_cxid = 0xd;
            stats.last_zxid = 0xb;
            stats.last_response_ms = 1_795_645_943_900;
            stats.last_latency_ms = 1;
            stats.latency.record(0);
            stats.latency.record(9);
            ConnectionInfo {
                remote: SocketAddr::from(([127, 0, 0, 1], port)),
                session_id: session,
                timeout_ms: 10_000,
                interest_ops: 1,
                stats,
            }
        };
        let mut stats = ServerStats {
            packets_received: 26,
            packets_sent: 27,
            ..Default::default()
        };
        stats.record_request(20, true);
        stats.record_request(0, false);
        stats.record_request(2, false);
        stats.record_reply(16);
        stats.record_reply(93);
        stats.commit_count = 12;
        stats.record_read("/app/data", 5);
        stats.record_write("/app/data", 5);
        let (a, b) = (0x1000019ede60000_i64, 0x1000019ede60001_i64);
        ServerSnapshot {
            last_zxid: 0xc,
            node_count: 10,
            watch_count: 3,
            ephemerals_count: 3,
            approximate_data_size: 98,
            uptime_ms: 10_320,
            wall_clock_ms: 1_795_645_944_000,
            stats,
            connections: vec![conn(34690, a, 14), conn(34700, b, 10)],
            sessions: vec![(a, 10_000), (b, 10_000)],
            session_expiries: vec![(a, 20_000), (b, 20_000)],
            ephemerals: vec![
                (a, vec!["/app/eph1".to_owned()]),
                (
                    b,
                    vec!["/app/eph2".to_owned(), "/app/seq-0000000003".to_owned()],
                ),
            ],
            watch_summary: (2, 2, 2),
            watches_by_session: vec![
                (a, vec!["/missing".to_owned()]),
                (b, vec!["/app".to_owned()]),
            ],
            watches_by_path: vec![
                ("/app".to_owned(), vec![b]),
                ("/missing".to_owned(), vec![a]),
            ],
            connections_rejected: 0,
            bytes_received: 879,
            replica: None,
        }
    }

    fn with_asker(mut s: ServerSnapshot) -> ServerSnapshot {
        let mut asker = report::four_letter_connection(SocketAddr::from(([127, 0, 0, 1], 34732)));
        asker.stats.established_ms = s.wall_clock_ms;
        s.connections.push(asker);
        s
    }

    /// Replaces every run of digits with `N`, so lines compare by shape.
    fn shape(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.split('\n') {
            let mut shaped = String::new();
            let mut in_digits = false;
            for ch in line.chars() {
                if ch.is_ascii_digit() {
                    if !in_digits {
                        shaped.push('N');
                    }
                    in_digits = true;
                } else {
                    in_digits = false;
                    shaped.push(ch);
                }
            }
            out.push(shaped);
        }
        out
    }

    #[test]
    fn srvr_lines() {
        let out = render("srvr", &with_asker(fabricated_snapshot()));
        assert_eq!(
            out,
            format!(
                "Zookeeper version: {}\nLatency min/avg/max: 0/7.3333/20\nReceived: 26\nSent: 27\n\
                 Connections: 3\nOutstanding: 0\nZxid: 0xc\nMode: standalone\nNode count: 10\n",
                report::VERSION
            )
        );
    }

    #[test]
    fn stat_lists_brief_connections_including_the_asker() {
        let out = render("stat", &with_asker(fabricated_snapshot()));
        // The reference server's output for the same scenario, by shape.
        let reference =
            "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC
Clients:
 /127.0.0.1:34690[1](queued=0,recved=14,sent=15)
 /127.0.0.1:34700[1](queued=0,recved=10,sent=11)
 /127.0.0.1:34732[0](queued=0,recved=1,sent=0)

Latency min/avg/max: 0/3.6667/20
Received: 27
Sent: 28
Connections: 3
Outstanding: 0
Zxid: 0xc
Mode: standalone
Node count: 10
";
        let (ours, theirs) = (shape(&out), shape(reference));
        assert_eq!(ours[1..], theirs[1..]);
        assert!(out.starts_with("Zookeeper version: 3.8.0-"));
    }

    #[test]
    fn cons_lines_have_zookeepers_fields() {
        let out = render("cons", &with_asker(fabricated_snapshot()));
        let reference = " /127.0.0.1:34690[1](queued=0,recved=14,sent=15,sid=0x1000019ede60000,lop=GETD,est=1795645934460,to=10000,lcxid=0xd,lzxid=0xb,lresp=1708049,llat=1,minlat=0,avglat=4,maxlat=9)
 /127.0.0.1:34700[1](queued=0,recved=10,sent=11,sid=0x1000019ede60001,lop=GETD,est=1795645934521,to=10000,lcxid=0xd,lzxid=0xb,lresp=1708052,llat=1,minlat=0,avglat=4,maxlat=9)
 /127.0.0.1:34764[0](queued=0,recved=1,sent=0)

";
        assert_eq!(shape(&out), shape(reference));
    }

    #[test]
    fn cons_after_crst_omits_lcxid() {
        let mut s = fabricated_snapshot();
        s.connections.truncate(1);
        s.connections[0].stats.reset();
        let out = render("cons", &s);
        assert_eq!(
            out,
            " /127.0.0.1:34690[1](queued=0,recved=0,sent=0,sid=0x1000019ede60000,lop=NA,\
             est=1795645934460,to=10000,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,\
             avglat=0,maxlat=0)\n\n"
        );
    }

    #[test]
    fn watch_commands() {
        let s = fabricated_snapshot();
        assert_eq!(
            render("wchs", &s),
            "2 connections watching 2 paths\nTotal watches:2\n"
        );
        assert_eq!(
            render("wchc", &s),
            "0x1000019ede60000\n\t/missing\n0x1000019ede60001\n\t/app\n\n"
        );
        assert_eq!(
            render("wchp", &s),
            "/app\n\t0x1000019ede60001\n/missing\n\t0x1000019ede60000\n\n"
        );
    }

    #[test]
    fn dump_lines() {
        let out = render("dump", &with_asker(fabricated_snapshot()));
        let reference = "SessionTracker dump:
Session Sets (1)/(2):
2 expire at Wed Nov 25 22:32:26 UTC 2026:
\t0x1000019ede60000
\t0x1000019ede60001
ephemeral nodes dump:
Sessions with Ephemerals (2):
0x1000019ede60000:
\t/app/eph1
0x1000019ede60001:
\t/app/eph2
\t/app/seq-0000000003
Connections dump:
Connections Sets (1)/(3):
3 expire at Wed Nov 25 22:32:26 UTC 2026:
\tip: /127.0.0.1:34690 sessionId: 0x1000019ede60000
\tip: /127.0.0.1:34700 sessionId: 0x1000019ede60001
\tip: /127.0.0.1:34828 sessionId: 0x0
";
        assert_eq!(shape(&out), shape(reference), "{out}");
        // Expiry 20000 on a clock at 10320 is 9680 ms after the wall clock.
        assert!(
            out.contains("2 expire at Wed Nov 25 22:32:33 UTC 2026:\n"),
            "{out}"
        );
    }

    #[test]
    fn mntr_has_every_zookeeper_key_in_order() {
        let out = render("mntr", &with_asker(fabricated_snapshot()));
        let keys: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
        // ZooKeeper's scenario printed 495 lines: these plus the per-namespace sets of "app".
        assert_eq!(keys.len(), 2 + 24 + 47 + 41 * 5 + 23 * 9 + 2 * 5);
        assert_eq!(
            keys[..4],
            [
                "zk_version",
                "zk_server_state",
                "zk_ephemerals_count",
                "zk_num_alive_connections"
            ]
        );
        assert_eq!(keys[26], "zk_proposal_count");
        assert_eq!(
            keys[73..78],
            [
                "zk_avg_socket_closing_time",
                "zk_min_socket_closing_time",
                "zk_max_socket_closing_time",
                "zk_cnt_socket_closing_time",
                "zk_sum_socket_closing_time"
            ]
        );
        assert_eq!(keys[484], "zk_p999_write_commitproc_time_ms");
        assert_eq!(
            keys[485..487],
            [
                "zk_avg_app_read_per_namespace",
                "zk_min_app_read_per_namespace"
            ]
        );
        assert_eq!(*keys.last().unwrap(), "zk_sum_app_write_per_namespace");
        for line in out.lines() {
            let (key, value) = line.split_once('\t').expect("key<TAB>value");
            assert!(key.starts_with("zk_") && !value.is_empty(), "{line}");
        }
        assert!(out.ends_with('\n'));
        let get = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}\t")))
                .unwrap()
        };
        assert_eq!(get("zk_num_alive_connections"), "3");
        assert_eq!(get("zk_avg_latency"), "7.3333");
        assert_eq!(get("zk_connection_drop_probability"), "0.0");
        assert_eq!(get("zk_min_client_response_size"), "16");
        assert_eq!(get("zk_cnt_updatelatency"), "1");
        assert_eq!(get("zk_cnt_readlatency"), "2");
        assert_eq!(get("zk_p50_readlatency"), "1");
        assert_eq!(get("zk_avg_jvm_pause_time_ms"), "0.0");
        assert_eq!(get("zk_bytes_received_count"), "879");
        assert_eq!(get("zk_commit_count"), "12");
    }

    #[test]
    fn whitelist_refuses_with_zookeepers_text_and_always_allows_srvr() {
        let props =
            |text: &str| Config::from_properties(&crate::config::parse_properties(text)).unwrap();
        let default = props("");
        assert_eq!(
            refusal("ruok", &default).as_deref(),
            Some("ruok is not executed because it is not in the whitelist.\n")
        );
        assert_eq!(refusal("srvr", &default), None);
        assert_eq!(
            refusal(TELNET_CLOSE_NAME, &default).as_deref(),
            Some("telnet close is not executed because it is not in the whitelist.\n")
        );
        let some = props("4lw.commands.whitelist=ruok, mntr");
        assert_eq!(refusal("ruok", &some), None);
        assert_eq!(refusal("mntr", &some), None);
        assert!(refusal("stat", &some).is_some());
        assert_eq!(refusal("srvr", &some), None);
        let all = props("4lw.commands.whitelist=*");
        for cmd in COMMANDS.iter().chain([&TELNET_CLOSE_NAME]) {
            assert_eq!(refusal(cmd, &all), None, "{cmd}");
        }
    }

    #[test]
    fn words_are_recognised_by_their_first_four_bytes() {
        assert_eq!(command_at_start(b"ruok"), Some("ruok"));
        assert_eq!(command_at_start(b"stmk\0\0\0\0\0\0\x01\x32"), Some("stmk"));
        assert_eq!(command_at_start(&TELNET_CLOSE), Some(TELNET_CLOSE_NAME));
        assert_eq!(command_at_start(b"\0\0\0\x2c"), None);
        assert_eq!(command_at_start(b"ruo"), None);
    }

    #[tokio::test]
    async fn commands_against_a_live_processor() {
        let config = Arc::new(Config::default());
        let shared = Shared::with_processor(config);
        let asker = Some(SocketAddr::from(([127, 0, 0, 1], 40000)));
        assert_eq!(execute("ruok", &shared, asker, true).await, "imok");
        assert_eq!(execute("isro", &shared, asker, true).await, "rw");
        assert_eq!(execute("isro", &shared, asker, false).await, "null");
        assert_eq!(execute("hash", &shared, asker, true).await, "");
        assert!(report::count_four_letter_word(&shared).await);
        let srvr = execute("srvr", &shared, asker, true).await;
        assert!(
            srvr.contains("\nReceived: 1\n") && srvr.contains("\nConnections: 1\n"),
            "{srvr}"
        );
        let stat = execute("stat", &shared, asker, true).await;
        assert!(
            stat.contains("Clients:\n /127.0.0.1:40000[0](queued=0,recved=1,sent=0)\n\n"),
            "{stat}"
        );
        assert_eq!(
            execute("srst", &shared, asker, true).await,
            "Server stats reset.\n"
        );
        assert_eq!(
            execute("crst", &shared, asker, true).await,
            "Connection stats reset.\n"
        );
        let srvr = execute("srvr", &shared, asker, true).await;
        assert!(srvr.contains("\nReceived: 0\n"), "{srvr}");
        assert!(
            execute("envi", &shared, asker, true)
                .await
                .starts_with("Environment:\nzookeeper.version=")
        );
        assert!(
            execute("conf", &shared, asker, true)
                .await
                .starts_with("clientPort=2181\nsecureClientPort=-1\n")
        );
        assert_eq!(
            execute("dirs", &shared, asker, false).await,
            format!("{}\n", report::NOT_SERVING)
        );
    }
}
