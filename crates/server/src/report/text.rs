//! The four-letter words' text renderings of server state, line for line
//! as ZooKeeper 3.8 prints them: `ServerStats.toString` (`srvr`, `stat`),
//! `ServerCnxn.dumpConnectionInfo` (`cons`, `stat`),
//! `ZooKeeperServer.dumpConf` (`conf`), `dirs`, `Environment.list`
//! (`envi`), and `dump` (`SessionTrackerImpl.dumpSessions`,
//! `DataTree.dumpEphemerals`, `NIOServerCnxnFactory.dumpConnections`).

use std::fmt::Write as _;

use super::{
    absolute, connection_buckets, dir_size, environment, java_date, java_double, java_socket_addr,
    session_buckets, snap_dir,
};
use crate::config::Config;
use crate::processor::{ConnectionInfo, ServerSnapshot};

/// `ServerStats.toString()` plus the node count, as `srvr` and `stat` print
/// them.
pub fn server_stats_text(s: &ServerSnapshot) -> String {
    let l = &s.stats.latency;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        l.min(),
        java_double(l.avg()),
        l.max()
    );
    let _ = writeln!(out, "Received: {}", s.stats.packets_received);
    let _ = writeln!(out, "Sent: {}", s.stats.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.connections.len());
    let _ = writeln!(out, "Outstanding: 0");
    let _ = writeln!(out, "Zxid: 0x{:x}", s.last_zxid);
    let _ = writeln!(out, "Mode: {}", s.server_state());
    let _ = writeln!(out, "Node count: {}", s.node_count);
    out
}

/// One line of `cons` (brief for `stat`), without the newline
/// (`ServerCnxn.dumpConnectionInfo`).
pub fn connection_line(c: &ConnectionInfo, brief: bool) -> String {
    let st = &c.stats;
    let interest = if c.interest_ops == 0 {
        "0".to_owned()
    } else {
        format!("{:x}", c.interest_ops)
    };
    let mut out = format!(
        " /{}[{interest}](queued=0,recved={},sent={}",
        java_socket_addr(&c.remote),
        st.packets_received,
        st.packets_sent
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
            st.latency.avg(),
            st.latency.max_ms
        );
    }
    out.push(')');
    out
}

/// `conf` (`ZooKeeperServer.dumpConf`).
pub fn conf_text(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={}", config.client_addr.port());
    let secure_port = config
        .secure_client_addr
        .map_or(-1, |addr| i32::from(addr.port()));
    let _ = writeln!(out, "secureClientPort={secure_port}");
    let _ = writeln!(out, "dataDir={}", absolute(&snap_dir(&config.data_dir)));
    let _ = writeln!(out, "dataDirSize={}", dir_size(&snap_dir(&config.data_dir)));
    let _ = writeln!(
        out,
        "dataLogDir={}",
        absolute(&snap_dir(&config.data_log_dir))
    );
    let _ = writeln!(
        out,
        "dataLogSize={}",
        dir_size(&snap_dir(&config.data_log_dir))
    );
    let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", config.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", config.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", config.max_session_timeout_ms);
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let _ = writeln!(out, "serverId={}", config.server_id.unwrap_or(0));
    out
}

/// What `conf` adds for a member of an ensemble (ZooKeeper's
/// `QuorumPeer` part): limits, its ports and type, and the committed
/// membership with its version.
pub fn conf_ensemble_text(r: &crate::processor::ReplicaStatus) -> String {
    let mut out = String::new();
    let me = r.membership.get(r.my_id);
    let _ = writeln!(out, "initLimit={}", r.init_limit);
    let _ = writeln!(out, "syncLimit={}", r.sync_limit);
    let _ = writeln!(out, "electionAlg=3");
    let _ = writeln!(
        out,
        "electionPort={}",
        me.map_or(-1, |m| i32::from(m.election_port))
    );
    let _ = writeln!(
        out,
        "quorumPort={}",
        me.map_or(-1, |m| i32::from(m.quorum_port))
    );
    let observer = me.is_some_and(|m| m.role == crate::ensemble_config::MemberRole::Observer);
    let _ = writeln!(out, "peerType={}", u8::from(observer));
    let _ = writeln!(out, "membership: ");
    let _ = writeln!(out, "{}", r.membership.render());
    out
}

/// `dirs`.
pub fn dirs_text(config: &Config) -> String {
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        dir_size(&snap_dir(&config.data_dir)),
        dir_size(&snap_dir(&config.data_log_dir))
    )
}

pub fn environment_text() -> String {
    let mut out = "Environment:\n".to_owned();
    for (k, v) in environment() {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// `dump`: session expiry buckets, ephemerals by session, connection expiry
/// buckets (`SessionTrackerImpl.dumpSessions`, `DataTree.dumpEphemerals`,
/// `NIOServerCnxnFactory.dumpConnections`).
pub fn dump_text(s: &ServerSnapshot) -> String {
    let date = |at: u64| {
        let delta = i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(s.uptime_ms).unwrap_or(0);
        java_date(s.wall_clock_ms.saturating_add(delta))
    };
    let mut out = "SessionTracker dump:\n".to_owned();
    let sessions = session_buckets(s);
    let _ = writeln!(
        out,
        "Session Sets ({})/({}):",
        sessions.len(),
        s.session_expiries.len()
    );
    for (at, ids) in &sessions {
        let _ = writeln!(out, "{} expire at {}:", ids.len(), date(*at));
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
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
    let connections = connection_buckets(s);
    let _ = writeln!(
        out,
        "Connections Sets ({})/({}):",
        connections.len(),
        s.connections.len()
    );
    for (at, conns) in &connections {
        let _ = writeln!(out, "{} expire at {}:", conns.len(), date(*at));
        for c in conns {
            let _ = writeln!(
                out,
                "\tip: /{} sessionId: 0x{:x}",
                java_socket_addr(&c.remote),
                c.session_id
            );
        }
    }
    out
}
