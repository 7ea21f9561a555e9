"""Stat relations, versions, delete/setData/getData/exists/getChildren/ACL
basics, getEphemerals, getAllChildrenNumber, sync."""

import time

from rawclient import OPEN_ACL_UNSAFE, Mode, Op, Perm, R, W, path_only


def tick():
    """Make sure the next write gets a later millisecond timestamp."""
    time.sleep(0.01)


def test_stat_lifecycle(diff):
    """Every Stat field after create / setData / child create / child delete
    / setACL, with explicit time relations."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        obs = []
        raw_stats = []

        def snap(label):
            st = c.exists(r).reader().stat()
            raw_stats.append(st)
            obs.append({label: ctx.stat(st)})

        c.create(r, b"12345")
        snap("created")
        tick()
        obs.append({"set": ctx.r_stat(c.set_data(r, b"abc"))})
        snap("after_set")
        tick()
        obs.append({"set_same": ctx.r_stat(c.set_data(r, b"abc"))})
        tick()
        obs.append({"child": ctx.r_create2(c.create2(r + "/c1", b""))})
        snap("after_child_create")
        tick()
        obs.append({"child2": ctx.r_create2(c.create2(r + "/c2", b"z", flags=Mode.EPHEMERAL))})
        snap("after_child2_create")
        tick()
        obs.append({"set_child": ctx.r_stat(c.set_data(r + "/c1", b"child data"))})
        snap("after_child_set")  # parent unaffected
        tick()
        obs.append({"delete_child": ctx.reply(c.delete(r + "/c1"))})
        snap("after_child_delete")
        tick()
        obs.append({"setacl": ctx.r_stat(c.set_acl(r, [(Perm.ALL, "world", "anyone")], 0))})
        snap("after_setacl")
        obs.append({"setacl_again": ctx.r_stat(c.set_acl(r, [(Perm.ALL, "world", "anyone")], -1))})
        snap("after_setacl_again")
        obs.append({"set_empty": ctx.r_stat(c.set_data(r, b""))})
        obs.append({"set_null": ctx.r_stat(c.set_data(r, None))})
        obs.append({"get_null": ctx.r_data(c.get_data(r))})
        obs.append({"children2": ctx.r_children2(c.get_children2(r))})
        # time relations between snapshots (ctime fixed, mtime moves on data changes only)
        obs.append(
            {
                "mtime_rel": [ctx.trel(raw_stats[i]["mtime"], raw_stats[i + 1]["mtime"]) for i in range(len(raw_stats) - 1)],
                "ctime_rel": [ctx.trel(raw_stats[i]["ctime"], raw_stats[i + 1]["ctime"]) for i in range(len(raw_stats) - 1)],
            }
        )
        return obs

    diff.check(scenario)


def test_versions_and_conditional_ops(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r, b"v0")
        obs = {}
        tick()
        obs["set_v0"] = ctx.r_stat(c.set_data(r, b"v1", 0))
        obs["set_v0_again"] = ctx.reply(c.set_data(r, b"v2", 0))
        obs["set_v5"] = ctx.reply(c.set_data(r, b"v2", 5))
        obs["set_v-2"] = ctx.reply(c.set_data(r, b"v2", -2))
        obs["set_v1"] = ctx.r_stat(c.set_data(r, b"v2", 1))
        obs["set_missing"] = ctx.reply(c.set_data(r + "/missing", b"x"))
        obs["set_missing_badversion"] = ctx.reply(c.set_data(r + "/missing", b"x", 7))
        c.create(r + "/child")
        obs["delete_notempty"] = ctx.reply(c.delete(r))
        obs["delete_notempty_badversion"] = ctx.reply(c.delete(r, 99))
        obs["delete_child_badversion"] = ctx.reply(c.delete(r + "/child", 1))
        obs["delete_child_v-2"] = ctx.reply(c.delete(r + "/child", -2))
        obs["delete_child_v0"] = ctx.reply(c.delete(r + "/child", 0))
        obs["delete_child_again"] = ctx.reply(c.delete(r + "/child", 0))
        obs["delete_missing_deep"] = ctx.reply(c.delete(r + "/a/b/c"))
        obs["getdata_missing"] = ctx.reply(c.get_data(r + "/missing"))
        obs["exists_missing"] = ctx.reply(c.exists(r + "/missing"))
        obs["children_missing"] = ctx.reply(c.get_children(r + "/missing"))
        obs["children2_missing"] = ctx.reply(c.get_children2(r + "/missing"))
        obs["acl_missing"] = ctx.reply(c.get_acl(r + "/missing"))
        obs["setacl_missing"] = ctx.reply(c.set_acl(r + "/missing", OPEN_ACL_UNSAFE))
        obs["setacl_badversion"] = ctx.reply(c.set_acl(r, OPEN_ACL_UNSAFE, 3))
        obs["setacl_v0"] = ctx.r_stat(c.set_acl(r, OPEN_ACL_UNSAFE, 0))
        obs["setacl_v0_again"] = ctx.reply(c.set_acl(r, OPEN_ACL_UNSAFE, 0))
        obs["getacl"] = ctx.r_acl(c.get_acl(r))
        obs["setacl_empty"] = ctx.reply(c.set_acl(r, []))
        obs["setacl_null"] = ctx.reply(c.set_acl(r, None))
        obs["setacl_badscheme"] = ctx.reply(c.set_acl(r, [(Perm.ALL, "bogus", "x")]))
        obs["delete_v2"] = ctx.reply(c.delete(r, 2))
        obs["exists_after"] = ctx.reply(c.exists(r))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


def test_data_sizes(diff):
    """Binary data round trip, empty vs null, ~1 MB values."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        obs = {}
        obs["create_binary"] = ctx.r_create2(c.create2(r, bytes(range(256))))
        rep = c.get_data(r)
        rd = rep.reader()
        obs["binary_roundtrip"] = rd.buffer() == bytes(range(256))
        obs["create_empty"] = ctx.r_create2(c.create2(r + "/empty", b""))
        obs["get_empty"] = ctx.r_data(c.get_data(r + "/empty"))
        obs["create_null"] = ctx.r_create2(c.create2(r + "/null", None))
        obs["get_null"] = ctx.r_data(c.get_data(r + "/null"))
        big = b"x" * (1024 * 1000)
        obs["set_1000k"] = ctx.r_stat(c.set_data(r + "/empty", big))
        rep = c.get_data(r + "/empty")
        obs["get_1000k_len"] = len(rep.reader().buffer())
        return obs

    diff.check(scenario)


def test_children_listing(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        names = ["b", "a", "c", "a-1", "Z", "é", "0"]
        for n in names:
            c.create(f"{r}/{n}")
        c.create(f"{r}/a/deep")
        obs = {
            "children": ctx.r_children(c.get_children(r)),
            "children2": ctx.r_children2(c.get_children2(r)),
            "leaf": ctx.r_children2(c.get_children2(f"{r}/b")),
            "root_has_it": ctx.root[1:] in (c.get_children("/").reader().strings() or []),
        }
        return obs

    diff.check(scenario)


def get_ephemerals(c, prefix):
    return c.call(Op.GET_EPHEMERALS, path_only(prefix))


def all_children_number(c, path):
    return c.call(Op.GET_ALL_CHILDREN_NUMBER, path_only(path))


def test_get_ephemerals_and_all_children_number(diff):
    def scenario(ctx):
        c = ctx.raw()
        other = ctx.raw()
        r = ctx.root
        c.create(r)
        c.create(r + "/p")
        c.create(r + "/p/q")
        c.create(r + "/e1", flags=Mode.EPHEMERAL)
        c.create(r + "/p/e2", flags=Mode.EPHEMERAL)
        c.create(r + "/es-", flags=Mode.EPHEMERAL_SEQUENTIAL)
        other.create(r + "/other", flags=Mode.EPHEMERAL)

        def eph(cl, prefix):
            rep = get_ephemerals(cl, prefix)
            return ctx.reply(rep, lambda rd: sorted(rd.strings()))

        def num(path):
            return ctx.reply(all_children_number(c, path), lambda rd: rd.int())

        obs = {
            "eph_root_prefix": eph(c, r),
            "eph_slash": eph(c, "/"),
            "eph_partial_prefix": eph(c, r + "/e"),
            "eph_p": eph(c, r + "/p"),
            "eph_other": eph(other, r),
            "eph_missing": eph(c, r + "/nothing"),
            "eph_empty": eph(c, ""),
            "eph_trailing": eph(c, r + "/"),
            "num_root": num(r),
            "num_p": num(r + "/p"),
            "num_leaf": num(r + "/p/q"),
            "num_missing": num(r + "/nothing"),
        }
        return obs

    diff.check(scenario)


def test_sync(diff):
    def scenario(ctx):
        c = ctx.raw()
        c.create(ctx.root)
        return {
            "sync_root": ctx.r_path(c.sync(ctx.root)),
            "sync_missing": ctx.r_path(c.sync(ctx.root + "/missing")),
            "sync_slash": ctx.r_path(c.sync("/")),
            "sync_bad": ctx.r_path(c.sync("bad")),
        }

    diff.check(scenario)


def test_kazoo_basic_workflow(diff):
    """The same through kazoo (a real client library)."""

    def scenario(ctx):
        from harness import attempt

        k = ctx.kazoo()
        r = ctx.root
        obs = {}
        obs["ensure"] = attempt(k.ensure_path, r + "/x/y")
        obs["create"] = attempt(k.create, r + "/node", b"hello")
        obs["create_dup"] = attempt(k.create, r + "/node", b"hello")
        obs["create_seq"] = attempt(k.create, r + "/seq-", b"", sequence=True)
        obs["create_eph_seq"] = attempt(k.create, r + "/eseq-", b"", ephemeral=True, sequence=True)
        ok, (data, st) = attempt(k.get, r + "/node")
        obs["get"] = [data.decode(), ctx.stat(st)]
        ok, st = attempt(k.set, r + "/node", b"world")
        obs["set"] = ctx.stat(st)
        obs["set_badversion"] = attempt(k.set, r + "/node", b"x", version=7)
        obs["children"] = sorted(k.get_children(r))
        obs["exists_missing"] = attempt(k.exists, r + "/nope")
        obs["delete_notempty"] = attempt(k.delete, r + "/x")
        obs["delete_recursive"] = attempt(k.delete, r + "/x", recursive=True)
        obs["get_missing"] = attempt(k.get, r + "/x")
        acls, st = k.get_acls(r + "/node")
        obs["acls"] = [[a.perms, a.id.scheme, a.id.id] for a in acls]
        t = k.transaction()
        t.create(r + "/t1", b"1")
        t.set_data(r + "/node", b"t", version=1)
        t.check(r + "/node", 2)
        t.delete(r + "/seq-0000000003")
        obs["transaction"] = [repr(x) if isinstance(x, Exception) else x for x in t.commit()]
        t = k.transaction()
        t.create(r + "/t2", b"1")
        t.check(r + "/node", 99)
        t.create(r + "/t3", b"1")
        obs["transaction_fail"] = [type(x).__name__ if isinstance(x, Exception) else x for x in t.commit()]
        obs["final_children"] = sorted(k.get_children(r))
        obs["server_version_shape"] = attempt(lambda: len(k.server_version()) >= 3)
        return obs

    diff.check(scenario)
