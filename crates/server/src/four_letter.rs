//! Four-letter words: text commands on the client port
//! (`FourLetterCommands`, `command/*Command.java`). A new connection whose
//! first four bytes spell a known command gets the command's output and is
//! closed. Commands outside `4lw.commands.whitelist` answer that they are not
//! executed.

use std::fmt::Write as _;

use bytes::{Buf as _, BytesMut};
use tokio::io::AsyncReadExt as _;
use tokio::net::tcp::OwnedReadHalf;

use crate::processor::{AdminQuery, ServerSnapshot};
use crate::report;
use crate::server::Shared;

/// Every command ZooKeeper 3.8 knows.
pub const COMMANDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// The command spelled by the first four bytes, if any.
pub fn command_at_start(buf: &[u8]) -> Option<&'static str> {
    let word = buf.get(..4)?;
    COMMANDS.iter().copied().find(|c| c.as_bytes() == word)
}

/// Runs a command and returns its output.
pub async fn run(
    cmd: &'static str,
    reader: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    shared: &Shared,
) -> String {
    if !shared.config.four_letter_enabled(cmd) {
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    match cmd {
        "ruok" => "imok".to_owned(),
        "isro" => "rw".to_owned(),
        "gtmk" => report::TRACE_MASK.to_string(),
        "stmk" => {
            // stmk carries an 8-byte mask after the command.
            while buf.len() < 8 {
                match reader.read_buf(buf).await {
                    Ok(n) if n > 0 => {}
                    _ => return String::new(),
                }
            }
            let mask = buf.get_i64();
            mask.to_string()
        }
        "envi" => report::environment_text(),
        "conf" => report::conf_text(&shared.config),
        "dirs" => report::dirs_text(&shared.config),
        "hash" => String::new(),
        "crst" => match report::query(shared, AdminQuery::ResetConnectionStats).await {
            Some(_) => "Connection stats reset.\n".to_owned(),
            None => report::NOT_SERVING.to_owned() + "\n",
        },
        "srst" => match report::query(shared, AdminQuery::ResetServerStats).await {
            Some(_) => "Server stats reset.\n".to_owned(),
            None => report::NOT_SERVING.to_owned() + "\n",
        },
        _ => match report::snapshot(shared).await {
            Some(snapshot) => render(cmd, &snapshot, shared),
            None => report::NOT_SERVING.to_owned() + "\n",
        },
    }
}

fn render(cmd: &str, s: &ServerSnapshot, shared: &Shared) -> String {
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
            for (key, value) in report::monitor(s, shared) {
                let _ = writeln!(out, "zk_{key}\t{value}");
            }
        }
        "wchs" => {
            let (conns, paths, total) = s.watch_summary;
            let _ = writeln!(out, "{conns} connections watching {paths} paths\nTotal watches:{total}");
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
