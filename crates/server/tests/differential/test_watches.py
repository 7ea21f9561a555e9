"""Watches: one-shot data/child/exists, persistent and persistent-recursive
(addWatch), ordering relative to replies, removeWatches/checkWatches,
setWatches / setWatches2 with a relativeZxid, kazoo's reconnect."""

import threading
import time

from harness import EventRecorder
from rawclient import (
    AddWatchMode,
    Closed,
    Mode,
    Op,
    RawClient,
    WatcherType,
    Xid,
    add_watch_body,
    path_type,
    set_watches_body,
)


def seq(ctx, c):
    """The ordered log of a raw client: replies and events interleaved."""
    out = []
    for m in c.log:
        if hasattr(m, "xid"):
            out.append(f"reply xid={m.xid} {m.errname}")
        else:
            e = ctx.event(m)
            out.append(f"event {e['type']} {e['state']} {e['path']} zxid={e['zxid']}")
    c.log.clear()
    return out


def evs(ctx, c, wait=0.3):
    return [f"{e['type']} {e['path']}" for e in ctx.events(c.drain_events(wait))]


def test_one_shot_watches(diff):
    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        w = ctx.raw()
        c.create(r, b"0")
        c.create(r + "/kid")
        obs = {}
        w.get_data(r, watch=True)
        c.set_data(r, b"1")
        obs["data_first"] = evs(ctx, w)
        c.set_data(r, b"2")
        obs["data_second_no_event"] = evs(ctx, w)
        w.get_children(r, watch=True)
        c.set_data(r, b"3")  # data change does not fire a child watch
        obs["child_watch_on_data_change"] = evs(ctx, w)
        c.create(r + "/k2")
        obs["child_create"] = evs(ctx, w)
        w.get_children2(r, watch=True)
        c.set_data(r + "/kid", b"x")  # grandchild data change: no child event
        c.delete(r + "/k2")
        obs["child_delete"] = evs(ctx, w)
        w.exists(r + "/nope", watch=True)
        c.create(r + "/nope")
        obs["exists_then_create"] = evs(ctx, w)
        w.exists(r + "/nope", watch=True)
        c.set_data(r + "/nope", b"d")
        obs["exists_then_set"] = evs(ctx, w)
        w.exists(r + "/nope", watch=True)
        c.delete(r + "/nope")
        obs["exists_then_delete"] = evs(ctx, w)
        # getData watch on a missing node is not set (NoNode)
        obs["getdata_missing"] = ctx.reply(w.get_data(r + "/later", watch=True))["err"]
        c.create(r + "/later")
        obs["getdata_missing_then_create"] = evs(ctx, w)
        # data + child + exists watches on one node, node deleted: one event?
        c.create(r + "/multi")
        w.get_data(r + "/multi", watch=True)
        w.exists(r + "/multi", watch=True)
        w.get_children(r + "/multi", watch=True)
        c.delete(r + "/multi")
        obs["all_watches_delete"] = evs(ctx, w)
        # child watch + data watch, child created: only child event
        c.create(r + "/p2")
        w.get_data(r + "/p2", watch=True)
        w.get_children(r + "/p2", watch=True)
        c.create(r + "/p2/c")
        obs["child_created_with_both"] = evs(ctx, w)
        c.set_data(r + "/p2", b"z")
        obs["then_data_change"] = evs(ctx, w)
        # setACL does not fire data watches
        w.get_data(r + "/p2", watch=True)
        c.set_acl(r + "/p2", [(31, "world", "anyone")])
        obs["setacl_no_event"] = evs(ctx, w)
        # failed write does not fire
        c.set_data(r + "/p2", b"q", 99)
        obs["failed_set_no_event"] = evs(ctx, w)
        # watches from two clients on the same node
        w2 = ctx.raw()
        w2.get_data(r + "/p2", watch=True)
        c.set_data(r + "/p2", b"both")
        obs["two_clients"] = [evs(ctx, w), evs(ctx, w2)]
        return obs

    diff.check(scenario)


def test_event_before_reply_for_own_write(diff):
    """A client's own write that triggers its own watch: the notification
    is delivered before the write's reply."""

    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        c.create(r, b"0")
        c.log.clear()
        c.get_data(r, watch=True)
        c.get_children(r, watch=True)
        c.exists(r + "/x", watch=True)
        c.set_data(r, b"1")
        c.create(r + "/x")
        c.delete(r + "/x")
        c.drain_events(0.3)
        return seq(ctx, c)

    diff.check(scenario)


def test_watch_event_vs_other_client_reply(diff):
    """Notification to a watcher precedes the reply to the watcher's later
    read (a client never sees data newer than its pending notifications)."""

    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        w = ctx.raw()
        c.create(r, b"0")
        w.log.clear()
        w.get_data(r, watch=True)
        c.set_data(r, b"1")
        w.get_data(r)
        w.drain_events(0.2)
        return seq(ctx, w)

    diff.check(scenario)


def add_watch(c, path, mode):
    return c.call(Op.ADD_WATCH, add_watch_body(path, mode))


def test_persistent_watch(diff):
    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        w = ctx.raw()
        c.create(r, b"0")
        obs = {"add": ctx.reply(add_watch(w, r, AddWatchMode.PERSISTENT))}
        obs["add_missing"] = ctx.reply(add_watch(w, r + "/notyet", AddWatchMode.PERSISTENT))
        c.set_data(r, b"1")
        c.set_data(r, b"2")
        c.create(r + "/a")
        c.set_data(r + "/a", b"x")  # child data: not reported to a non-recursive watch
        c.create(r + "/a/b")
        c.delete(r + "/a/b")
        c.delete(r + "/a")
        c.create(r + "/notyet")
        c.set_data(r + "/notyet", b"y")
        c.delete(r + "/notyet")
        c.create(r + "/notyet")
        obs["events"] = evs(ctx, w, 0.5)
        # a one-shot watch on the same path as a persistent one
        w.get_data(r, watch=True)
        c.set_data(r, b"3")
        obs["with_oneshot"] = evs(ctx, w)
        c.set_data(r, b"4")
        obs["after_oneshot"] = evs(ctx, w)
        obs["add_bad_mode"] = ctx.reply(add_watch(w, r, 7))
        obs["add_bad_path"] = ctx.reply(add_watch(w, "bad", AddWatchMode.PERSISTENT))
        return obs

    diff.check(scenario)


def test_persistent_recursive_watch(diff):
    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        w = ctx.raw()
        c.create(r, b"0")
        obs = {"add": ctx.reply(add_watch(w, r, AddWatchMode.PERSISTENT_RECURSIVE))}
        c.set_data(r, b"1")
        c.create(r + "/a")
        c.create(r + "/a/b")
        c.set_data(r + "/a/b", b"x")
        c.create(r + "/a/b/c", flags=Mode.EPHEMERAL)
        c.delete(r + "/a/b/c")
        c.delete(r + "/a/b")
        c.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)
        c.create(ctx.root + "_sibling")  # outside the subtree
        c.delete(ctx.root + "_sibling")
        obs["events"] = evs(ctx, w, 0.5)
        # recursive + one-shot child watch on a subnode
        w.get_children(r + "/a", watch=True)
        c.create(r + "/a/z")
        obs["with_child_watch"] = evs(ctx, w)
        # recursive watch on "/" sees everything (filter to our subtree)
        w2 = ctx.raw()
        add_watch(w2, "/", AddWatchMode.PERSISTENT_RECURSIVE)
        c.set_data(r + "/a/z", b"q")
        obs["root_recursive"] = [e for e in evs(ctx, w2) if e.split(" ", 1)[1].startswith(r)]
        return obs

    diff.check(scenario)


def test_remove_and_check_watches(diff):
    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        w = ctx.raw()
        c.create(r, b"0")
        c.create(r + "/n")
        obs = {}

        def check(path, t):
            return ctx.reply(w.call(Op.CHECK_WATCHES, path_type(path, t)))["err"]

        def remove(path, t):
            return ctx.reply(w.call(Op.REMOVE_WATCHES, path_type(path, t)))["err"]

        obs["check_none"] = {t: check(r, t) for t in (1, 2, 3, 4, 5)}
        obs["remove_none"] = {t: remove(r, t) for t in (1, 2, 3, 4, 5)}
        w.get_data(r, watch=True)
        obs["check_after_data"] = {t: check(r, t) for t in (1, 2, 3, 4, 5)}
        w.get_children(r, watch=True)
        obs["check_after_both"] = {t: check(r, t) for t in (1, 2, 3, 4, 5)}
        obs["remove_data"] = remove(r, WatcherType.DATA)
        obs["check_after_remove_data"] = {t: check(r, t) for t in (1, 2, 3)}
        obs["remove_data_again"] = remove(r, WatcherType.DATA)
        w.log.clear()
        c.set_data(r, b"1")
        c.create(r + "/m")
        obs["events_after_remove_data"] = evs(ctx, w)
        w.get_data(r, watch=True)
        w.get_children(r, watch=True)
        obs["remove_any"] = remove(r, WatcherType.ANY)
        c.set_data(r, b"2")
        c.create(r + "/m2")
        obs["events_after_remove_any"] = evs(ctx, w)
        w.exists(r + "/missing", watch=True)
        obs["check_exists_watch"] = {t: check(r + "/missing", t) for t in (1, 2, 3)}
        obs["remove_exists_watch"] = remove(r + "/missing", WatcherType.DATA)
        add_watch(w, r + "/n", AddWatchMode.PERSISTENT)
        add_watch(w, r + "/n", AddWatchMode.PERSISTENT_RECURSIVE)
        obs["check_persistent"] = {t: check(r + "/n", t) for t in (1, 2, 3, 4, 5)}
        obs["remove_persistent"] = remove(r + "/n", WatcherType.PERSISTENT)
        obs["check_after_remove_persistent"] = {t: check(r + "/n", t) for t in (1, 2, 3, 4, 5)}
        c.set_data(r + "/n", b"x")
        obs["events_recursive_left"] = evs(ctx, w)
        obs["remove_recursive"] = remove(r + "/n", WatcherType.PERSISTENT_RECURSIVE)
        c.set_data(r + "/n", b"y")
        obs["events_none_left"] = evs(ctx, w)
        obs["remove_bad_type"] = remove(r, 9)
        obs["remove_missing_node"] = remove(r + "/nothing", WatcherType.ANY)
        obs["remove_bad_path"] = remove("bad", WatcherType.ANY)
        # another client's watches are not removable
        w.get_data(r, watch=True)
        other = ctx.raw()
        obs["other_client_remove"] = ctx.reply(other.call(Op.REMOVE_WATCHES, path_type(r, WatcherType.DATA)))["err"]
        obs["other_client_check"] = ctx.reply(other.call(Op.CHECK_WATCHES, path_type(r, WatcherType.DATA)))["err"]
        return obs

    diff.check(scenario)


def test_set_watches_relative_zxid(diff):
    """setWatches (op 101, xid -8) after reconnect: watches whose node
    changed after relativeZxid fire immediately, in ZooKeeper's order."""

    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        c.create(r, b"0")
        for n in ("changed", "same", "deleted", "kids", "kids_same", "del_child_watch"):
            c.create(f"{r}/{n}", b"v")
        c.create(f"{r}/kids_same/k")
        a = ctx.raw(connect=False)
        sess = a.connect(timeout_ms=10000)
        rel = a.exists("/").zxid
        a.close()  # socket only: the session lives on
        c.set_data(f"{r}/changed", b"v2")
        c.delete(f"{r}/deleted")
        c.create(f"{r}/kids/new")
        c.create(f"{r}/appeared")
        c.delete(f"{r}/del_child_watch")
        b = ctx.raw(connect=False)
        b.connect(timeout_ms=10000, session_id=sess.session_id, passwd=sess.passwd, last_zxid=rel)
        body = set_watches_body(
            rel,
            data=[f"{r}/changed", f"{r}/same", f"{r}/deleted", f"{r}/never_existed"],
            exist=[f"{r}/appeared", f"{r}/still_missing", f"{r}/same"],
            child=[f"{r}/kids", f"{r}/kids_same", f"{r}/del_child_watch"],
        )
        b.send(Op.SET_WATCHES, body, xid=Xid.SET_WATCHES)
        b.wait_reply(Xid.SET_WATCHES, timeout=5)
        b.drain_events(0.3)
        obs = {"sequence": seq(ctx, b)}
        # the surviving watches are live: "same" fires on the next change
        c.set_data(f"{r}/same", b"v3")
        c.create(f"{r}/kids_same/k2")
        c.create(f"{r}/still_missing")
        obs["later"] = sorted(evs(ctx, b, 0.5))
        # relativeZxid in the future: nothing fires
        d = ctx.raw()
        d.send(Op.SET_WATCHES, set_watches_body(rel + 10**6, data=[f"{r}/changed"], exist=[f"{r}/nothing2"]), xid=Xid.SET_WATCHES)
        d.wait_reply(Xid.SET_WATCHES)
        obs["future_rel"] = seq(ctx, d)
        # setWatches with a normal xid
        e = ctx.raw()
        x = e.send(Op.SET_WATCHES, set_watches_body(0, data=[f"{r}/changed"]), xid=55)
        try:
            e.read_message(2)
            e.drain_events(0.3)
        except Exception:  # noqa: BLE001
            pass
        obs["normal_xid"] = seq(ctx, e)
        return obs

    diff.check(scenario)


def test_set_watches2_persistent(diff):
    """setWatches2 (op 105) re-registers persistent and recursive watches."""

    def scenario(ctx):
        r = ctx.root
        c = ctx.raw()
        c.create(r, b"0")
        c.create(r + "/p")
        c.create(r + "/rec")
        a = ctx.raw()
        rel = a.exists("/").zxid
        c.set_data(r + "/p", b"changed-before")  # persistent watches do not replay
        body = set_watches_body(
            rel,
            data=[r],
            exist=[],
            child=[],
            persistent=[r + "/p"],
            recursive=[r + "/rec"],
        )
        a.send(Op.SET_WATCHES2, body, xid=Xid.SET_WATCHES)
        a.wait_reply(Xid.SET_WATCHES)
        a.drain_events(0.3)
        obs = {"sequence": seq(ctx, a)}
        c.set_data(r + "/p", b"1")
        c.set_data(r + "/p", b"2")
        c.create(r + "/rec/x")
        c.set_data(r + "/rec/x", b"3")
        c.set_data(r, b"4")
        c.set_data(r, b"5")
        obs["after"] = evs(ctx, a, 0.5)
        obs["check_persistent"] = ctx.reply(a.call(Op.CHECK_WATCHES, path_type(r + "/p", WatcherType.PERSISTENT)))["err"]
        obs["check_recursive"] = ctx.reply(
            a.call(Op.CHECK_WATCHES, path_type(r + "/rec", WatcherType.PERSISTENT_RECURSIVE))
        )["err"]
        return obs

    diff.check(scenario)


def test_kazoo_watch_recipes_and_reconnect(diff):
    """kazoo DataWatch/ChildrenWatch plus a forced reconnect: kazoo sends
    setWatches with its last zxid; changes made while it was disconnected
    are delivered."""

    def scenario(ctx):
        r = ctx.root
        k = ctx.kazoo(connection_retry=dict(max_tries=-1, delay=1.0, max_delay=1.0, max_jitter=0.01))
        writer = ctx.raw()
        writer.create(r, b"0")
        writer.create(r + "/c1")
        data_seen, kids_seen, raw_events = [], [], EventRecorder()
        k.DataWatch(r, lambda d, st: data_seen.append(None if d is None else d.decode()))
        k.ChildrenWatch(r, lambda ch: kids_seen.append(sorted(ch)))
        k.exists(r + "/gone", watch=raw_events)
        k.get(r + "/c1", watch=raw_events)
        writer.set_data(r, b"1")
        writer.create(r + "/c2")
        time.sleep(0.5)
        obs = {"before": {"data": list(data_seen), "kids": list(kids_seen)}}
        states = []
        k.add_listener(lambda s: states.append(str(s)))
        # steal the session's connection: kazoo's socket is closed by the server
        sid, pw = k.client_id
        thief = RawClient(ctx.host, ctx.port)
        thief.connect(timeout_ms=10000, session_id=sid, passwd=pw)
        # while kazoo waits ~1 s before reconnecting, change things
        thief.set_data(r, b"while-away")
        thief.create(r + "/c3")
        thief.create(r + "/gone")
        thief.set_data(r + "/c1", b"x")
        thief.close()
        deadline = time.time() + 10
        while time.time() < deadline and (len(raw_events.items) < 2 or "while-away" not in data_seen):
            time.sleep(0.1)
        time.sleep(0.5)
        obs["after"] = {
            "data": data_seen,
            "kids": kids_seen,
            "raw_events": sorted((e["type"], e["path"]) for e in raw_events.items),
            "states": states,
            "same_session": k.client_id[0] == sid,
        }
        return obs

    diff.check(scenario)
