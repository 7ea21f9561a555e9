"""AdminServer HTTP (/commands/<name>): status, content type, JSON keys."""

import json
import re
import socket
import time
import urllib.error
import urllib.request

from rawclient import Mode
from shapes import json_shape

# dicts whose keys are data (session ids, paths, times, property names)
DYNAMIC = {
    "expiry_time_to_session_ids",
    "session_id_to_ephemeral_paths",
    "session_id_to_watched_paths",
    "path_to_session_ids",
}

PRIMARY = [
    "configuration",
    "connection_stat_reset",
    "connections",
    "dirs",
    "dump",
    "environment",
    "get_trace_mask",
    "hash",
    "initial_configuration",
    "is_read_only",
    "last_snapshot",
    "leader",
    "monitor",
    "observer_connection_stat_reset",
    "observers",
    "ruok",
    "server_stats",
    "set_trace_mask",
    "stat_reset",
    "stats",
    "system_properties",
    "voting_view",
    "watch_summary",
    "watches",
    "watches_by_path",
]

ALIASES = ["conf", "crst", "cons", "dump", "envi", "gtmk", "hash", "isro", "lsnp", "lead", "mntr", "obsr", "orst",
           "srvr", "stmk", "srst", "stat", "sysp", "wchs", "wchc", "wchp", "icfg", "voting_view", "dirs"]


def get(ctx, path, method="GET"):
    url = f"http://{ctx.host}:{ctx.server.admin_port}{path}"
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


def wait_admin(ctx, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((ctx.host, ctx.server.admin_port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def ctype(ct):
    return ct.split(";")[0].strip().lower()


def safe(fn):
    """Evaluate an extraction; an unexpected structure becomes a value."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return f"<unexpected structure: {type(e).__name__}>"


def command_view(ctx, name):
    status, ct, body = get(ctx, f"/commands/{name}")
    out = {"status": status, "content_type": ctype(ct)}
    try:
        data = json.loads(body)
    except ValueError:
        out["body"] = "<not json>"
        return out, None
    out["command"] = data.get("command")
    out["error"] = data.get("error")
    if out["command"] == "system_properties":
        out["shape"] = "<dict of %s>" % sorted({type(v).__name__ for v in data.values()})
    elif out["command"] == "monitor":
        out["types"] = {k: json_shape(v) for k, v in sorted(data.items())}
    else:
        out["shape"] = json_shape(data, DYNAMIC)
    return out, data


def test_admin_commands(fresh):
    d = fresh({})

    def scenario(ctx):
        assert wait_admin(ctx)
        r = ctx.root
        c = ctx.raw()
        w = ctx.raw()
        c.create(r)
        c.create(r + "/e", flags=Mode.EPHEMERAL)
        w.get_data(r, watch=True)
        w.exists(r + "/x", watch=True)
        obs = {}
        status, ct, body = get(ctx, "/commands")
        obs["index"] = {
            "status": status,
            "content_type": ctype(ct),
            "links": re.findall(r'href="([^"]+)"', body),
        }
        for name in PRIMARY:
            obs[name], data = command_view(ctx, name)
            if data is None:
                continue
            if name == "watches":
                obs[name]["value"] = safe(lambda: {
                    str(ctx.sid(int(k))): sorted(v) for k, v in data["session_id_to_watched_paths"].items()
                })
            elif name == "watches_by_path":
                obs[name]["value"] = safe(lambda: {
                    k: sorted(str(ctx.sid(int(s))) for s in v) for k, v in data["path_to_session_ids"].items()
                })
            elif name == "watch_summary":
                obs[name]["value"] = {k: v for k, v in data.items()}
            elif name == "dump":
                obs[name]["ephemerals"] = safe(lambda: {
                    str(ctx.sid(int(k))): sorted(v) for k, v in data["session_id_to_ephemeral_paths"].items()
                })
                obs[name]["sessions"] = safe(lambda: sorted(
                    str(ctx.sid(int(s))) for v in data["expiry_time_to_session_ids"].values() for s in v
                ))
            elif name in ("ruok", "is_read_only", "get_trace_mask", "observers", "voting_view", "hash", "leader", "set_trace_mask"):
                obs[name]["value"] = data
            elif name == "configuration":
                obs[name]["value"] = {
                    k: v
                    for k, v in data.items()
                    if k in ("tick_time", "max_client_cnxns", "min_session_timeout", "max_session_timeout", "server_id", "client_port_listen_backlog")
                }
                obs[name]["client_port_ok"] = data.get("client_port") == ctx.port
            elif name in ("server_stats", "stats"):
                obs[name]["node_count"] = data.get("node_count")
                obs[name]["state"] = safe(lambda: data["server_stats"]["server_state"])
                obs[name]["last_processed_zxid"] = safe(lambda: ctx.zx(data["server_stats"]["last_processed_zxid"]))
            elif name == "monitor":
                obs[name]["values"] = {
                    k: data.get(k)
                    for k in ("server_state", "znode_count", "ephemerals_count", "watch_count", "num_alive_connections")
                }
        for alias in ALIASES:
            v, _ = command_view(ctx, alias)
            obs["alias_" + alias] = {"status": v["status"], "command": v.get("command"), "error": v.get("error")}
        obs["unknown"] = command_view(ctx, "nosuchcommand")[0]
        status, ct, _ = get(ctx, "/")
        obs["root"] = {"status": status}
        status, ct, _ = get(ctx, "/commands/ruok", method="POST")
        obs["post_ruok"] = {"status": status, "content_type": ctype(ct)}
        status, ct, body = get(ctx, "/commands/set_trace_mask?traceMask=306")
        obs["set_trace_mask_arg"] = {"status": status, "body": json.loads(body) if status == 200 else None}
        return obs

    d.check(scenario)


def test_admin_disabled(configured):
    d = configured({"admin.enableServer": "false"})

    def scenario(ctx):
        try:
            with socket.create_connection((ctx.host, ctx.server.admin_port), timeout=2):
                return {"admin_port": "open"}
        except OSError as e:
            return {"admin_port": type(e).__name__}

    d.check(scenario)
