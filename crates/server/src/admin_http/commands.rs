//! The AdminServer's commands (`Commands`): the table of names and aliases,
//! and running one by name into its response object. A response follows
//! `CommandResponse.toMap`: the command's fields in order, then `command`
//! and `error`. An unknown command is answered with an `error`, as
//! ZooKeeper does.

use std::collections::HashMap;

use super::Json;
use super::fields::{config_fields, snapshot_fields};
use crate::report;
use crate::server::Shared;

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
pub(super) fn finish(command: &str, mut fields: Vec<(String, Json)>) -> Json {
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::admin_http::tests::{get, get_json, shared};

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
}
