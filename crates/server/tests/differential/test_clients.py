"""Real clients: kazoo with a chroot, zkCli.sh (Java), cli_mt (C)."""

import os
import re
import subprocess
import threading
import time

from harness import EventRecorder, attempt

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"


def test_kazoo_chroot(diff):
    def scenario(ctx):
        base = ctx.root + "/jail"
        setup = ctx.raw()
        setup.create(ctx.root)
        setup.create(base)
        k = ctx.kazoo(chroot=base)
        ev = EventRecorder()
        obs = {}
        obs["create"] = attempt(k.create, "/a", b"1")
        obs["create_seq"] = attempt(k.create, "/s-", b"", sequence=True)
        obs["ensure_deep"] = attempt(k.ensure_path, "/x/y/z")
        obs["children_root"] = sorted(k.get_children("/"))
        k.get("/a", watch=ev)
        k.get_children("/", watch=ev)
        setup.set_data(base + "/a", b"2")
        setup.create(base + "/b")
        ev.wait(2, timeout=3)
        obs["events"] = sorted((e["type"], e["path"]) for e in ev.items)
        t = k.transaction()
        t.create("/t1")
        t.create("/t2", sequence=True) if False else t.create("/t2")
        obs["transaction"] = t.commit()
        # setup may be connected to another server than k: ZooKeeper promises
        # a second client the first one's writes only after a sync.
        setup.sync(base)
        obs["outside_view"] = ctx.r_children(setup.get_children(base))
        obs["exists_missing"] = attempt(k.exists, "/nope")
        obs["delete"] = attempt(k.delete, "/x", recursive=True)
        # a chroot that does not exist: operations fail with NoNode
        k2 = ctx.kazoo(chroot=ctx.root + "/missing")
        obs["missing_chroot_create"] = attempt(k2.create, "/a")
        obs["missing_chroot_get_children"] = attempt(k2.get_children, "/")
        return obs

    diff.check(scenario)


# ------------------------------------------------------------------ zkCli.sh
DATE = re.compile(r"^(ctime|mtime) = .*$")
ZXID_LINE = re.compile(r"^(cZxid|mZxid|pZxid) = (0x[0-9a-f]+)$")
OWNER_LINE = re.compile(r"^ephemeralOwner = (0x[0-9a-f]+)$")
NOISE = (
    "SLF4J:",
    "Connecting to",
    "Welcome to ZooKeeper!",
    "JLine support",
    "WATCHER::",
    "WatchedEvent state:",
    "log4j:",
)


def run_zkcli(ctx, commands, extra_env=None):
    script = "\n".join(commands + ["quit"]) + "\n"
    env = dict(os.environ)
    env["ZOO_LOG_DIR"] = str(ctx.server.dir)
    env["CLIENT_JVMFLAGS"] = "-XX:TieredStopAtLevel=1 -Xshare:auto -XX:+UseSerialGC"
    p = subprocess.run(
        [ZKCLI, "-server", ctx.server.hosts],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return p.stdout + p.stderr


def norm_zkcli(ctx, text):
    out = []
    whoami = False
    for line in text.splitlines():
        if whoami and re.match(r"^[A-Za-z0-9_-]+: ", line):
            # whoami lines come in the server's (hash) order: sorted below
            out.append(("WHOAMI", line))
            continue
        whoami = line.startswith("Auth scheme: User")
        line = line.rstrip()
        if not line or line.startswith(NOISE):
            continue
        if DATE.match(line):
            out.append(line.split(" = ")[0] + " = <date>")
            continue
        m = ZXID_LINE.match(line)
        if m:
            out.append(f"{m.group(1)} = {ctx.zx(int(m.group(2), 16))}")
            continue
        m = OWNER_LINE.match(line)
        if m:
            out.append(f"ephemeralOwner = {ctx.sid(int(m.group(1), 16))}")
            continue
        if line.startswith("[") and line.endswith("]"):
            items = [x.strip() for x in line[1:-1].split(",") if x.strip()]
            out.append("[" + ", ".join(sorted(items)) + "]")
            continue
        out.append(line)
    # sort each run of whoami lines
    return sort_tagged_runs(out)


def sort_tagged_runs(items):
    """``items`` with each run of (tag, line) tuples replaced by its lines,
    sorted (for output a server prints in hash order)."""
    res, block = [], []
    for item in items + [None]:
        if isinstance(item, tuple):
            block.append(item[1])
            continue
        res.extend(sorted(block))
        block = []
        if item is not None:
            res.append(item)
    return res


def test_zkcli_session(diff):
    """One zkCli.sh process running a batch of commands from stdin."""

    def scenario(ctx):
        r = ctx.root
        cmds = [
            f"create {r} rootdata",
            f"create {r}/a hello",
            f"create -s {r}/seq- x",
            f"create -e {r}/eph y",
            f"create -c {r}/cont",
            f"create {r}/a again",
            f"create {r}/missing/child x",
            f"ls {r}",
            f"ls -s {r}",
            f"get {r}/a",
            f"get -s {r}/a",
            f"stat {r}/a",
            f"set {r}/a world",
            f"set -v 0 {r}/a stale",
            f"set -s {r}/a world2",
            f"get {r}/a",
            f"getAcl {r}/a",
            f"setAcl {r}/a world:anyone:r",
            f"getAcl {r}/a",
            f"set {r}/a denied",
            "addauth digest alice:secret",
            f"create {r}/priv secret auth::cdrwa",
            f"getAcl {r}/priv",
            f"setAcl -s {r}/priv digest:bob:Xn6uKIKWm0gsZQwcOKnnOP5kSy4=:rw",
            f"getAcl {r}/priv",
            f"get {r}/priv",
            f"delete {r}",
            f"delete -v 5 {r}/a",
            f"delete {r}/a",
            f"delete {r}/nonexistent",
            f"getEphemerals {r}",
            f"getAllChildrenNumber {r}",
            f"sync {r}",
            "whoami",
            f"stat {r}/nonexistent",
            f"deleteall {r}",
            f"ls {r}",
        ]
        return norm_zkcli(ctx, run_zkcli(ctx, cmds))

    diff.check(scenario)


RECONFIG_PORTS = (41791, 41792, 41793)  # a joining observer that never runs
SERVER_LINE = re.compile(r"^server\.(\d+)=([^:]+):(\d+):(\d+)(.*)$")
VERSION_LINE = re.compile(r"^version=([0-9a-f]+)$")


def norm_reconfig(text, names):
    """zkCli output with servers named by their part in the scenario
    (``names``: id -> name; the two ensembles listen on different ports and
    may elect different leaders), config versions named in order of
    appearance (their first leader's epoch differs), each run of server
    lines sorted (ZooKeeper prints them in hash order), and `sync`'s
    outcome left out (a server may drop its clients when the membership
    changes; zkCli then reconnects)."""
    versions, out = {}, []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith(NOISE) or line.startswith("Sync "):
            continue
        m = VERSION_LINE.match(line)
        if m:
            v = versions.setdefault(m.group(1), f"V{len(versions) + 1}")
            out.append(f"version={v}")
            continue
        m = SERVER_LINE.match(line)
        if m:
            sid, host, _, _, rest = m.groups()
            name = names.get(int(sid), sid)
            if name == "joiner":
                out.append(("SERVER", line))
            else:
                out.append(("SERVER", f"server.<{name}>={host}:<q>:<e>{rest}"))
            continue
        out.append(line)
    return sort_tagged_runs(out)


def leader_id(ensemble):
    for i, m in enumerate(ensemble.members, start=1):
        if "Mode: leader" in m.four_letter("srvr"):
            return i
    return None


def test_zkcli_reconfig(fresh):
    """zkCli.sh's reconfig and config commands: an observer joins and
    leaves, a stale version is refused, a follower leaves (standalone: both
    servers refuse the same way). zkCli talks to server 1, and the follower
    that leaves is neither server 1 nor the leader: how a leader leaves
    differs by design (ZooKeeper commits, then re-elects and drops every
    client; Conclave hands leadership over first)."""
    d = fresh({"reconfigEnabled": "true", "skipACL": "yes"})

    def scenario(ctx):
        members = getattr(ctx.server, "members", None)
        if members:
            leader = leader_id(ctx.server)
            victim = max(i for i in (2, 3) if i != leader)
            stays = 5 - victim
            names = {1: "one", victim: "leaves", stays: "stays", 9: "joiner"}
            one = members[0]
        else:
            victim, names, one = 3, {}, ctx.server
        p1, p2, p3 = RECONFIG_PORTS
        cmds = [
            "config",
            f"reconfig -add server.9=127.0.0.1:{p1}:{p2}:observer;0.0.0.0:{p3}",
            "sync /",
            "config",
            "reconfig -remove 9",
            f"reconfig -v 1 -remove {victim}",
            f"reconfig -remove {victim}",
            "sync /",
            "config",
        ]

        class One:
            hosts = one.hosts
            dir = one.dir

        return norm_reconfig(run_zkcli(type("C", (), {"server": One}), cmds), names)

    d.check(scenario)


# -------------------------------------------------------------------- cli_mt
def run_cli_mt(ctx, commands, pause=0.3):
    p = subprocess.Popen(
        [CLI_MT, "-h", ctx.server.hosts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    chunks = []

    def reader():
        for line in p.stdout:
            chunks.append(line)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.8)  # connect
    for c in commands:
        p.stdin.write(c + "\n")
        p.stdin.flush()
        time.sleep(pause)
    p.stdin.write("quit\n")
    p.stdin.flush()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    t.join(2)
    return "".join(chunks)


def norm_cli_mt(ctx, text):
    out = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or re.match(r"^time = -?\d+ msec$", line):
            continue
        m = re.match(r"^Got a new session id: 0x([0-9a-f]+)$", line)
        if m:
            out.append(f"Got a new session id: {ctx.sid(int(m.group(1), 16))}")
            continue
        m = re.match(r"^session Id = ([0-9a-f]+)$", line)
        if m:
            out.append(f"session Id = {ctx.sid(int(m.group(1), 16))}")
            continue
        m = re.match(r"^(\s*)(ctime|mtime)\s*=\s*.*$", line)
        if m:
            out.append(f"{m.group(1)}{m.group(2)} = <date>")
            continue
        m = re.match(r"^(\s*)(czxid|mzxid)=([0-9a-f]+)$", line)
        if m:
            out.append(f"{m.group(1)}{m.group(2)}={ctx.zx(int(m.group(3), 16))}")
            continue
        m = re.match(r"^(\s*)ephemeralOwner = ([0-9a-f]+)$", line)
        if m:
            out.append(f"{m.group(1)}ephemeralOwner = {ctx.sid(int(m.group(2), 16))}")
            continue
        out.append(line)
    return out


def test_cli_mt_session(diff):
    """The C client's shell (synchronous commands, one at a time)."""

    def scenario(ctx):
        r = ctx.root
        cmds = [
            f"create {r}",
            f"set {r} hello",
            f"get {r}",
            f"create +s {r}/s",
            f"create +e {r}/e",
            f"create2 {r}/c2",
            f"ls {r}",
            f"exists {r}",
            f"exists {r}/nonexistent",
            f"get {r}/nonexistent",
            f"delete {r}",
            f"delete {r}/c2",
            f"sync {r}",
            "addauth digest u:p",
        ]
        text = run_cli_mt(ctx, cmds)
        lines = norm_cli_mt(ctx, text)
        # children of "ls" come in server order: sort each indented block
        out, block = [], []
        for line in lines + [None]:
            if line is not None and re.match(r"^\t[^=\s]+$", line):
                block.append(line)
                continue
            out.extend(sorted(block))
            block = []
            if line is not None:
                out.append(line)
        return out

    diff.check(scenario)
