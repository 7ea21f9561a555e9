"""Four-letter words: output shape and whitelist behaviour."""

import json
import re
import socket
import time

from rawclient import Mode
from shapes import HEX, conn_line, vtype


def fourlw(ctx, cmd: str, payload: bytes | None = None, timeout: float = 5.0) -> str:
    with socket.create_connection((ctx.host, ctx.port), timeout=timeout) as s:
        s.sendall(payload if payload is not None else cmd.encode())
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                chunks.append(b"<reset>")
                break
            except socket.timeout:
                chunks.append(b"<still open>")
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


def kv_lines(text, sep):
    out = []
    for line in text.splitlines():
        k, s, v = line.partition(sep)
        out.append([k, v] if s else [line, None])
    return out


def norm_srvr(ctx, text):
    out = []
    for k, v in kv_lines(text, ": "):
        if v is None:
            out.append([k])
        elif k in ("Mode", "Node count", "Outstanding", "Connections"):
            out.append([k, v])
        elif k == "Zxid":
            out.append([k, ctx.zx(int(v, 16)) if HEX.match(v) else vtype(v)])
        elif k == "Latency min/avg/max":
            out.append([k, "/".join(vtype(x) for x in v.split("/"))])
        else:
            out.append([k, vtype(v)])
    return out


def norm_stat(ctx, text):
    out = []
    clients = []
    in_clients = False
    for line in text.splitlines():
        if line == "Clients:":
            in_clients = True
            out.append(["Clients:"])
            continue
        if in_clients:
            if line.startswith(" /"):
                clients.append(conn_line(line))
                continue
            in_clients = False
            out.append(["<clients>", _sorted(clients)])
        out.extend(norm_srvr(ctx, line) if line else [["<blank>"]])
    return out


CONF_EXACT = {"tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout", "serverId", "secureClientPort",
              "clientPortListenBacklog", "initLimit", "syncLimit", "electionAlg", "electionPort", "quorumPort",
              "peerType", "membership"}


def norm_conf(ctx, text):
    out = []
    for k, v in kv_lines(text, "="):
        if v is None:
            out.append([k])
        elif k in CONF_EXACT:
            out.append([k, v])
        elif k == "clientPort":
            out.append([k, "PORT" if v == str(ctx.port) else v])
        elif k in ("dataDir", "dataLogDir"):
            out.append([k, "<dir>/version-2" if v.endswith("/version-2") else v])
        else:
            out.append([k, vtype(v)])
    return out


def _sorted(items):
    return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))


def norm_cons(ctx, text):
    """Connection lines come in hash order: sorted after normalization."""
    lines = text.splitlines()
    conns = [conn_line(l, ctx) for l in lines if l.startswith(" /")]
    others = [l for l in lines if not l.startswith(" /")]
    return {"connections": _sorted(conns), "other_lines": others}


def norm_wchc(ctx, text, key_is_sid=True):
    """wchc: session -> paths; wchp: path -> sessions.  Both sorted."""
    groups = {}
    cur = None
    other = []
    for line in text.splitlines():
        if line.startswith("\t"):
            v = line[1:]
            if not key_is_sid and HEX.match(v):
                v = ctx.sid(int(v, 16))
            if cur is None:
                other.append(line)
            else:
                groups[cur].append(v)
        elif line.strip():
            k = line.strip()
            if key_is_sid and HEX.match(k):
                k = ctx.sid(int(k, 16))
            cur = k
            groups.setdefault(cur, [])
        else:
            other.append(line)
    return {"groups": {k: sorted(v, key=str) for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}, "other": other}


def norm_dump(ctx, text):
    """Session sets are timing buckets: keep the session ids (sorted) and
    the header lines' shape; the ephemeral section is exact."""
    out = {"lines": [], "sessions": [], "ephemerals": {}}
    eph = out["ephemerals"]
    cur = None
    section = None
    for line in text.splitlines():
        if line.startswith("SessionTracker dump"):
            section = "sessions"
            out["lines"].append(line)
        elif line.startswith("ephemeral nodes dump"):
            section = "ephemerals"
            out["lines"].append(line)
        elif line.startswith("Connections dump"):
            section = "connections"
            out["lines"].append(line)
        elif re.match(r"^Session Sets \(\d+\)/\(\d+\):$", line):
            n = re.findall(r"\d+", line)
            out["lines"].append("Session Sets (<int>)/(%s):" % n[1])
        elif re.match(r"^Connections Sets \(\d+\)/\(\d+\):$", line):
            out["lines"].append("Connections Sets (<int>)/(<int>):")
        elif re.match(r"^\d+ expire at .*:$", line):
            pass
        elif section == "sessions" and HEX.match(line.strip()):
            out["sessions"].append(ctx.sid(int(line.strip(), 16)))
        elif section == "ephemerals":
            if line.startswith("Sessions with Ephemerals"):
                out["lines"].append(line)
            elif HEX.match(line.rstrip(":").strip()):
                cur = ctx.sid(int(line.rstrip(":").strip(), 16))
                eph[cur] = []
            elif line.startswith("\t") and cur is not None:
                eph[cur].append(line.strip())
            else:
                out["lines"].append(line)
        elif section == "connections":
            m = re.match(r"^\s*ip: /([0-9.]+):\d+ sessionId: (0x[0-9a-f]+)$", line)
            if m:
                out.setdefault("connections", []).append(ctx.sid(int(m.group(2), 16)))
            else:
                out["lines"].append(line)
        else:
            out["lines"].append(line)
    out["sessions"] = sorted(out["sessions"], key=str)
    out["ephemerals"] = {k: sorted(v) for k, v in sorted(eph.items(), key=lambda kv: str(kv[0]))}
    out["connections"] = sorted(out.get("connections", []), key=str)
    return out


MNTR_EXACT = {
    "zk_server_state",
    "zk_znode_count",
    "zk_ephemerals_count",
    "zk_watch_count",
    "zk_num_alive_connections",
    "zk_outstanding_requests",
    "zk_global_sessions",
    "zk_local_sessions",
}


def norm_mntr(ctx, text):
    keys = {}
    bad = []
    for line in text.splitlines():
        k, s, v = line.partition("\t")
        if not s:
            bad.append(line)
            continue
        keys[k] = v if k in MNTR_EXACT else vtype(v)
    # a dict, so that a missing key shows up as one difference
    return {"values": dict(sorted(keys.items())), "malformed_lines": bad}


def setup_state(ctx):
    r = ctx.root
    c1 = ctx.raw()
    c2 = ctx.raw()
    c1.create(r)
    c1.create(r + "/a", b"a")
    c1.create(r + "/e", flags=Mode.EPHEMERAL)
    c2.create(r + "/e2", flags=Mode.EPHEMERAL)
    c2.get_data(r + "/a", watch=True)
    c2.get_children(r, watch=True)
    c1.exists(r + "/missing", watch=True)
    c1.get_data(r + "/a", watch=True)
    return c1, c2


def test_4lw_outputs(fresh):
    """Every 4lw against a pristine server in a known state."""
    d = fresh({"4lw.commands.whitelist": "*"})

    def scenario(ctx):
        setup_state(ctx)
        time.sleep(0.2)
        obs = {}
        obs["ruok"] = fourlw(ctx, "ruok")
        obs["isro"] = fourlw(ctx, "isro")
        obs["srvr"] = norm_srvr(ctx, fourlw(ctx, "srvr"))
        obs["stat"] = norm_stat(ctx, fourlw(ctx, "stat"))
        obs["conf"] = norm_conf(ctx, fourlw(ctx, "conf"))
        obs["cons"] = norm_cons(ctx, fourlw(ctx, "cons"))
        envi = fourlw(ctx, "envi").splitlines()
        obs["envi"] = [envi[0]] + [l.partition("=")[0] for l in envi[1:]]
        obs["wchs"] = fourlw(ctx, "wchs")
        obs["wchc"] = norm_wchc(ctx, fourlw(ctx, "wchc"))
        obs["wchp"] = norm_wchc(ctx, fourlw(ctx, "wchp"), key_is_sid=False)
        dirs = fourlw(ctx, "dirs")
        obs["dirs"] = [[k, vtype(v) if v is not None else None] for k, v in kv_lines(dirs, ": ")]
        obs["dump"] = norm_dump(ctx, fourlw(ctx, "dump"))
        obs["mntr"] = norm_mntr(ctx, fourlw(ctx, "mntr"))
        obs["gtmk"] = fourlw(ctx, "gtmk")
        obs["crst"] = fourlw(ctx, "crst")
        obs["cons_after_crst"] = norm_cons(ctx, fourlw(ctx, "cons"))
        obs["srst"] = fourlw(ctx, "srst")
        obs["srvr_after_srst"] = norm_srvr(ctx, fourlw(ctx, "srvr"))
        obs["unknown_abcd"] = fourlw(ctx, "abcd")
        obs["uppercase_RUOK"] = fourlw(ctx, "RUOK")
        obs["ruok_with_newline"] = fourlw(ctx, "", b"ruok\n")
        return obs

    d.check(scenario)


def test_4lw_whitelist_subset(configured):
    d = configured({"4lw.commands.whitelist": "ruok, srvr ,mntr"})

    def scenario(ctx):
        obs = {}
        for cmd in ("ruok", "srvr", "mntr", "stat", "conf", "cons", "envi", "wchs", "dump", "isro", "crst", "srst", "dirs", "gtmk", "abcd"):
            out = fourlw(ctx, cmd)
            if cmd == "srvr":
                out = norm_srvr(ctx, out)
            elif cmd == "mntr":
                out = len(norm_mntr(ctx, out)["values"]) > 10
            obs[cmd] = out
        return obs

    d.check(scenario)


def test_4lw_whitelist_default(configured):
    """No 4lw.commands.whitelist at all: ZooKeeper's default."""
    d = configured({"4lw.commands.whitelist": None})

    def scenario(ctx):
        obs = {}
        for cmd in ("ruok", "srvr", "stat", "mntr", "conf", "isro", "envi"):
            out = fourlw(ctx, cmd)
            obs[cmd] = norm_srvr(ctx, out) if cmd == "srvr" else (out if len(out) < 200 else "<long output>")
        return obs

    d.check(scenario)


def test_4lw_whitelist_empty(configured):
    d = configured({"4lw.commands.whitelist": ""})

    def scenario(ctx):
        obs = {cmd: fourlw(ctx, cmd)[:200] for cmd in ("ruok", "stat", "isro")}
        obs["srvr"] = norm_srvr(ctx, fourlw(ctx, "srvr"))
        return obs

    d.check(scenario)


def test_4lw_connection_edge_cases(diff):
    """Partial words, 4lw after a handshake, trailing bytes."""

    def scenario(ctx):
        obs = {}
        obs["two_letters_only"] = fourlw(ctx, "", b"ru", timeout=1.5)
        obs["ruok_plus_garbage"] = fourlw(ctx, "", b"ruokxxxx")
        obs["ruok_twice"] = fourlw(ctx, "", b"ruokruok")
        # a 4lw word after a real handshake is just a malformed frame
        c = ctx.raw()
        c.send_raw(b"ruok")
        obs["after_handshake_closed"] = c.is_closed_by_server(2.0)
        obs["after_handshake_received"] = [getattr(m, "xid", None) for m in c.log]
        return obs

    diff.check(scenario)
