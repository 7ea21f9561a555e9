"""Shape normalizers for four-letter-word and admin output.

Values that legitimately differ between two correct servers (uptime,
version text, latencies, byte/packet counters, fd counts, ports, paths,
dates) are reduced to their type; structure (keys, line layout, order where
ZooKeeper's order is meaningful) is kept.
"""

from __future__ import annotations

import json
import re

INT = re.compile(r"^-?\d+$")
FLOAT = re.compile(r"^-?\d+\.\d+(E-?\d+)?$")
HEX = re.compile(r"^0x[0-9a-fA-F]+$")


def vtype(v: str) -> str:
    v = v.strip()
    if INT.match(v):
        return "<int>"
    if FLOAT.match(v):
        return "<float>"
    if HEX.match(v):
        return "<hex>"
    if v == "":
        return "<empty>"
    return "<text>"


def json_shape(v, dynamic=(), path=""):
    """Type skeleton of a JSON value.  Dicts whose path is in ``dynamic``
    have data-dependent keys: their keys become ``<key>``."""
    if isinstance(v, dict):
        if path in dynamic:
            if not v:
                return {}
            if all(isinstance(x, list) for x in v.values()):
                merged = [y for x in v.values() for y in x]
                return {"<dynamic>": json_shape(merged, dynamic, path + ".*")}
            seen = {}
            for x in v.values():
                sh = json_shape(x, dynamic, path + ".*")
                seen[json.dumps(sh, sort_keys=True)] = sh
            return {"<dynamic>": [seen[k] for k in sorted(seen)]}
        return {k: json_shape(x, dynamic, f"{path}.{k}" if path else k) for k, x in v.items()}
    if isinstance(v, list):
        # union of the element shapes (element order is often hash order)
        seen = {}
        for x in v:
            sh = json_shape(x, dynamic, path + "[]")
            seen[json.dumps(sh, sort_keys=True)] = sh
        return [seen[k] for k in sorted(seen)]
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if v is None:
        return "null"
    return "string"


CONN_LINE = re.compile(r"^ /(?P<ip>[0-9.:a-fA-F\[\]]+):(?P<port>\d+)\[(?P<flag>\d+)\]\((?P<kv>.*)\)$")


def conn_line(line: str, ctx=None):
    """' /127.0.0.1:1234[1](queued=0,recved=3,sent=3,sid=0x...,lop=PING,...)'"""
    m = CONN_LINE.match(line)
    if not m:
        return {"unparsed": line}
    out = {"ip": m.group("ip"), "flag": m.group("flag"), "fields": []}
    for kv in m.group("kv").split(","):
        k, _, v = kv.partition("=")
        if k == "sid" and ctx is not None and HEX.match(v):
            val = ctx.sid(int(v, 16))
        elif k in ("lop", "to"):
            val = v
        elif k == "lzxid" and ctx is not None and HEX.match(v):
            z = int(v, 16)
            val = z if z in (0, 0xFFFFFFFFFFFFFFFF) else "<zxid>"
        else:
            val = vtype(v)
        out["fields"].append([k, val])
    return out
