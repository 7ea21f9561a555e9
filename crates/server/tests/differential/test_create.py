"""create / create2 / createContainer / createTTL: modes, Stat, sequences, errors."""

import time

from rawclient import OPEN_ACL_UNSAFE, Mode, Op, Perm, create_body

EXT = {"extendedTypesEnabled": "true"}


def test_create_modes(diff):
    """Every CreateMode through create2: returned path and Stat."""

    def scenario(ctx):
        c = ctx.raw()
        obs = {"root": ctx.r_create2(c.create2(ctx.root, b"root"))}
        for name, flags in [
            ("persistent", Mode.PERSISTENT),
            ("ephemeral", Mode.EPHEMERAL),
            ("pseq", Mode.PERSISTENT_SEQUENTIAL),
            ("eseq", Mode.EPHEMERAL_SEQUENTIAL),
            ("container", Mode.CONTAINER),
        ]:
            obs[name] = ctx.r_create2(c.create2(f"{ctx.root}/{name}", b"v-" + name.encode(), flags=flags))
            obs[name + "_get"] = ctx.r_data(c.get_data(obs[name].get("body", {}).get("path", f"{ctx.root}/{name}")))
        # invalid flag values
        for bad in (7, 8, -1, 100):
            obs[f"flags_{bad}"] = ctx.reply(c.create2(f"{ctx.root}/bad{bad}", b"", flags=bad))
        obs["parent"] = ctx.r_children2(c.get_children2(ctx.root))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


def test_create_plain_response(diff):
    """op 1 (create) returns only the path; op 19 (createContainer)."""

    def scenario(ctx):
        c = ctx.raw()
        obs = {}
        obs["create"] = ctx.r_path(c.create(ctx.root, b"x"))
        obs["create_seq"] = ctx.r_path(c.create(ctx.root + "/s-", b"", flags=Mode.PERSISTENT_SEQUENTIAL))
        obs["create_container_op"] = ctx.r_create2(
            c.call(Op.CREATE_CONTAINER, create_body(ctx.root + "/cont", b"c", flags=Mode.CONTAINER))
        )
        obs["create_container_op_wrong_flags"] = ctx.reply(
            c.call(Op.CREATE_CONTAINER, create_body(ctx.root + "/cont2", b"c", flags=Mode.PERSISTENT))
        )
        obs["create_op_container_flag"] = ctx.r_path(c.create(ctx.root + "/cont3", b"c", flags=Mode.CONTAINER))
        obs["stat_cont3"] = ctx.r_stat(c.exists(ctx.root + "/cont3"))
        obs["create_ttl_flag_via_create"] = ctx.reply(
            c.create(ctx.root + "/ttl", b"c", flags=Mode.PERSISTENT_WITH_TTL)
        )
        obs["null_data"] = ctx.r_create2(c.create2(ctx.root + "/nulldata", None))
        obs["null_data_get"] = ctx.r_data(c.get_data(ctx.root + "/nulldata"))
        obs["empty_data_get"] = ctx.r_data(c.get_data(ctx.root + "/cont3"))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


def test_sequential_numbering_and_cversion(diff):
    """Sequence suffix = parent cversion: deletes bump it, never reset it."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        obs = []
        obs.append(ctx.r_path(c.create(r + "/a")))
        obs.append(ctx.r_path(c.create(r + "/b")))
        obs.append(ctx.r_path(c.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.reply(c.delete(r + "/a")))
        obs.append(ctx.r_path(c.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.r_path(c.create(r + "/", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.r_path(c.create(r + "/e-", flags=Mode.EPHEMERAL_SEQUENTIAL)))
        obs.append(ctx.reply(c.create(r + "/b")))  # NodeExists: does it bump cversion?
        obs.append(ctx.r_path(c.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.reply(c.set_data(r, b"changed")))
        obs.append(ctx.r_path(c.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.reply(c.set_acl(r, OPEN_ACL_UNSAFE)))
        obs.append(ctx.r_path(c.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.r_children2(c.get_children2(r)))
        # Sequential create of a path that already exists with that number.
        c.create(r + "/x")
        c.create(r + "/dup0000000001")
        st = c.get_children2(r)
        obs.append(ctx.r_children2(st))
        obs.append(ctx.r_path(c.create(r + "/dup", flags=Mode.PERSISTENT_SEQUENTIAL)))
        # nested parent: sequence restarts per parent
        c.create(r + "/n")
        obs.append(ctx.r_path(c.create(r + "/n/", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.r_path(c.create(r + "/n/q", flags=Mode.PERSISTENT_SEQUENTIAL)))
        return obs

    diff.check(scenario)


def test_sequential_collision(diff):
    """A sequential create whose generated name already exists → NodeExists,
    and the counter still moves on."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        obs = [ctx.r_path(c.create(r + "/q0000000001"))]
        obs.append(ctx.reply(c.create(r + "/q", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.r_children2(c.get_children2(r)))
        obs.append(ctx.r_path(c.create(r + "/q", flags=Mode.PERSISTENT_SEQUENTIAL)))
        obs.append(ctx.zxid_now())
        return obs

    diff.check(scenario)


def test_create_errors(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        obs = {}
        obs["root"] = ctx.r_path(c.create(r))
        obs["exists"] = ctx.reply(c.create(r))
        obs["exists_create2"] = ctx.reply(c.create2(r))
        obs["no_parent"] = ctx.reply(c.create(r + "/missing/child"))
        obs["no_parent_seq"] = ctx.reply(c.create(r + "/missing/child", flags=Mode.PERSISTENT_SEQUENTIAL))
        c.create(r + "/eph", flags=Mode.EPHEMERAL)
        obs["child_of_ephemeral"] = ctx.reply(c.create(r + "/eph/child"))
        obs["seq_child_of_ephemeral"] = ctx.reply(c.create(r + "/eph/c", flags=Mode.PERSISTENT_SEQUENTIAL))
        obs["eph_child_of_ephemeral"] = ctx.reply(c.create(r + "/eph/c", flags=Mode.EPHEMERAL))
        obs["eph_dup"] = ctx.reply(c.create(r + "/eph", flags=Mode.EPHEMERAL))
        obs["root_create"] = ctx.reply(c.create("/"))
        obs["zookeeper_create"] = ctx.reply(c.create("/zookeeper"))
        obs["zookeeper_child"] = ctx.reply(c.create("/zookeeper/" + r.strip("/")))
        obs["zookeeper_quota_child"] = ctx.reply(c.create("/zookeeper/quota/" + r.strip("/")))
        obs["zookeeper_config_child"] = ctx.reply(c.create("/zookeeper/config/x"))
        obs["empty_acl"] = ctx.reply(c.create(r + "/emptyacl", acl=[]))
        obs["null_acl"] = ctx.reply(c.create(r + "/nullacl", acl=None))
        obs["bad_scheme_acl"] = ctx.reply(c.create(r + "/badscheme", acl=[(Perm.ALL, "nosuch", "x")]))
        obs["bad_world_id"] = ctx.reply(c.create(r + "/badworld", acl=[(Perm.ALL, "world", "someone")]))
        obs["auth_acl_no_auth"] = ctx.reply(c.create(r + "/authacl", acl=[(Perm.ALL, "auth", "")]))
        obs["bad_digest_id"] = ctx.reply(c.create(r + "/baddigest", acl=[(Perm.ALL, "digest", "nocolon")]))
        obs["bad_ip_id"] = ctx.reply(c.create(r + "/badip", acl=[(Perm.ALL, "ip", "300.1.1.1")]))
        obs["bad_ip_mask"] = ctx.reply(c.create(r + "/badipmask", acl=[(Perm.ALL, "ip", "127.0.0.1/33")]))
        obs["ip_ok"] = ctx.reply(c.create(r + "/ipok", acl=[(Perm.ALL, "ip", "127.0.0.1/8")]))
        obs["perms_zero"] = ctx.reply(c.create(r + "/permszero", acl=[(0, "world", "anyone")]))
        obs["perms_big"] = ctx.reply(c.create(r + "/permsbig", acl=[(255, "world", "anyone")]))
        obs["acl_permsbig"] = ctx.r_acl(c.get_acl(r + "/permsbig"))
        obs["dup_acl"] = ctx.reply(
            c.create(r + "/dupacl", acl=[(Perm.ALL, "world", "anyone"), (Perm.ALL, "world", "anyone")])
        )
        obs["acl_dupacl"] = ctx.r_acl(c.get_acl(r + "/dupacl"))
        obs["children"] = ctx.r_children(c.get_children(r))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


# Paths relative to the scenario root ("R"), plus some absolute ones.  The
# parent of each path exists where it matters, so that path validation (not
# the parent lookup) decides.
BAD_PATHS = [
    "",
    "noslash",
    "/",
    "//",
    "///",
    "/zookeeper/",
    "/.",
    "/..",
    "R/",
    "R//",
    "R//b",
    "R/.",
    "R/..",
    "R/./b",
    "R/../b",
    "R/ok/.",
    "R/ok/..",
    "R/ok/",
    "R/ctl\u0001x",
    "R/ctl\u001fx",
    "R/del\u007fx",
    "R/nul\u0000x",
    "R/c1\u0085x",
    "R/c1\u009fx",
    "R/bom\ufeffx",
    "R/priv\ue000x",
    "R/nonchar\ufffex",
    "R/surr\U0001f600x",
    "R/ok.dot",
    "R/...",
    "R/.hidden",
    "R/sp ace",
    "R/unicod\u00e9",
    "R/zookeeper",
]


def test_invalid_paths(diff):
    """Path validation on every path-taking op (reads do not validate)."""

    def scenario(ctx):
        c = ctx.raw()
        c.create(ctx.root)
        c.create(ctx.root + "/ok")
        obs = {}
        for p in BAD_PATHS:
            q = ctx.root + p[1:] if p.startswith("R") else p
            row = {
                "create": ctx.reply(c.create(q)),
                "exists": ctx.reply(c.exists(q)),
                "getData": ctx.reply(c.get_data(q)),
                "getChildren": ctx.reply(c.get_children(q)),
                "getACL": ctx.reply(c.get_acl(q)),
                "sync": ctx.reply(c.sync(q)),
            }
            if p.startswith("R"):
                # mutations only below the scenario root (keep "/" pristine)
                row["create_seq"] = ctx.reply(c.create(q, flags=Mode.PERSISTENT_SEQUENTIAL))
                row["setData"] = ctx.reply(c.set_data(q, b"x"))
                row["setACL"] = ctx.reply(c.set_acl(q, OPEN_ACL_UNSAFE, 0))
                row["delete"] = ctx.reply(c.delete(q))
                row["delete_seq"] = ctx.reply(c.delete(q + "0000000000"))
            elif p != "/":
                row["setData"] = ctx.reply(c.set_data(q, b"x", 12345))
                row["setACL"] = ctx.reply(c.set_acl(q, OPEN_ACL_UNSAFE, 12345))
                row["delete"] = ctx.reply(c.delete(q, 12345))
            obs[repr(p)] = row
        obs["children"] = ctx.r_children2(c.get_children2(ctx.root))
        obs["still_alive"] = ctx.reply(c.exists("/"))
        return obs

    diff.check(scenario)


def test_null_and_garbage_path(diff):
    """A null path (length -1) and a non-UTF-8 path."""

    def scenario(ctx):
        obs = {}
        for label, body in [
            ("null_path_exists", b"\xff\xff\xff\xff\x00"),
            ("invalid_utf8_exists", b"\x00\x00\x00\x03/\xff\xfe\x00"),
        ]:
            c = ctx.raw()
            xid = c.send(Op.EXISTS, body)
            try:
                rep = c.wait_reply(xid, timeout=3)
                obs[label] = ctx.reply(rep)
            except Exception as e:  # noqa: BLE001
                obs[label] = type(e).__name__
            obs[label + "_closed"] = c.is_closed_by_server(1.0)
        return obs

    diff.check(scenario)


def test_ttl_disabled(diff):
    """TTL nodes without extendedTypesEnabled → Unimplemented."""

    def scenario(ctx):
        c = ctx.raw()
        c.create(ctx.root)
        obs = {}
        obs["createTTL"] = ctx.reply(
            c.call(Op.CREATE_TTL, create_body(ctx.root + "/t", b"x", flags=Mode.PERSISTENT_WITH_TTL, ttl=5000))
        )
        obs["createTTL_seq"] = ctx.reply(
            c.call(
                Op.CREATE_TTL,
                create_body(ctx.root + "/t", b"x", flags=Mode.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=5000),
            )
        )
        obs["create2_ttl_flag"] = ctx.reply(c.create2(ctx.root + "/t2", b"x", flags=Mode.PERSISTENT_WITH_TTL))
        obs["after"] = ctx.r_children2(c.get_children2(ctx.root))
        obs["zxid_end"] = ctx.zxid_now()
        obs["alive"] = not c.is_closed_by_server(0.5)
        return obs

    diff.check(scenario)


def test_ttl_enabled(configured):
    """TTL nodes with extendedTypesEnabled: creation, Stat (ephemeralOwner
    encodes the TTL), validation, and expiry."""
    d = configured(EXT)

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        obs = {}

        def ttl(path, flags, t, data=b"x"):
            return c.call(Op.CREATE_TTL, create_body(path, data, flags=flags, ttl=t))

        obs["ttl"] = ctx.r_create2(ttl(r + "/t", Mode.PERSISTENT_WITH_TTL, 500))
        # ephemeralOwner of a TTL node is 0xFF00000000000000 | ttl: keep literal
        st = c.exists(r + "/t").reader().stat()
        obs["ttl_owner_hex"] = hex(st["ephemeralOwner"] & 0xFFFFFFFFFFFFFFFF)
        obs["ttl_seq"] = ctx.r_create2(ttl(r + "/ts-", Mode.PERSISTENT_SEQUENTIAL_WITH_TTL, 500))
        obs["ttl_zero"] = ctx.reply(ttl(r + "/t0", Mode.PERSISTENT_WITH_TTL, 0))
        obs["ttl_negative"] = ctx.reply(ttl(r + "/tn", Mode.PERSISTENT_WITH_TTL, -5))
        obs["ttl_too_big"] = ctx.reply(ttl(r + "/tb", Mode.PERSISTENT_WITH_TTL, 1 << 40))
        obs["ttl_max"] = ctx.reply(ttl(r + "/tm", Mode.PERSISTENT_WITH_TTL, 0xFFFFFFFFFF))
        obs["ttl_with_plain_flag"] = ctx.reply(ttl(r + "/tp", Mode.PERSISTENT, 500))
        obs["ttl_with_ephemeral_flag"] = ctx.reply(ttl(r + "/te", Mode.EPHEMERAL, 500))
        obs["ttl_with_container_flag"] = ctx.reply(ttl(r + "/tc", Mode.CONTAINER, 500))
        obs["create2_ttl_flag"] = ctx.reply(c.create2(r + "/t2", b"x", flags=Mode.PERSISTENT_WITH_TTL))
        obs["exists_t"] = ctx.reply(ttl(r + "/t", Mode.PERSISTENT_WITH_TTL, 500))
        obs["children"] = ctx.r_children(c.get_children(r))
        # child under TTL node is allowed (TTL nodes are persistent)
        obs["ttl_child"] = ctx.r_path(c.create(r + "/t/child"))
        obs["zxid"] = ctx.zxid_now()
        return obs

    d.check(scenario)


def test_ttl_expiry(fresh):
    """An unmodified childless TTL node is deleted by the container manager
    after its TTL; one with a child survives."""
    d = fresh(
        dict(
            EXT,
            **{
                "znode.container.checkIntervalMs": "200",
            },
        )
    )

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        c.call(Op.CREATE_TTL, create_body(r + "/gone", b"", flags=Mode.PERSISTENT_WITH_TTL, ttl=300))
        c.call(Op.CREATE_TTL, create_body(r + "/kept", b"", flags=Mode.PERSISTENT_WITH_TTL, ttl=300))
        c.create(r + "/kept/child")
        c.call(Op.CREATE_TTL, create_body(r + "/long", b"", flags=Mode.PERSISTENT_WITH_TTL, ttl=60000))
        w = ctx.raw()
        w.exists(r + "/gone", watch=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if c.exists(r + "/gone").err != 0:
                break
            time.sleep(0.1)
        time.sleep(0.8)
        # zxids left out: the reaper's timing decides them
        return {
            "children": sorted(c.get_children(r).reader().strings()),
            "kept_children": sorted(c.get_children(r + "/kept").reader().strings()),
            "watch_events": [e["type"] + ":" + e["path"] for e in ctx.events(w.drain_events(0.5))],
        }

    d.check(scenario)


def test_container_reaping(fresh):
    """Container nodes (op 19 createContainer): removed once their last child
    goes (after having had one); an empty never-used container stays
    (maxNeverUsedIntervalMs=0).  ZooKeeper 3.8 quirk: create/create2 (op 1/15)
    with the CONTAINER flag make a plain persistent node, never reaped."""
    d = fresh({"znode.container.checkIntervalMs": "200"})

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)

        def container(p):
            return ctx.r_create2(c.call(Op.CREATE_CONTAINER, create_body(p, b"", flags=Mode.CONTAINER)))

        obs = {
            "used": container(r + "/used"),
            "never": container(r + "/never"),
            "full": container(r + "/full"),
            "via_create2": ctx.r_create2(c.create2(r + "/via_create2", flags=Mode.CONTAINER)),
            "via_create": ctx.r_path(c.create(r + "/via_create", flags=Mode.CONTAINER)),
        }
        for p in ("used", "full", "via_create2", "via_create"):
            c.create(f"{r}/{p}/a")
        w = ctx.raw()
        w.exists(r + "/used", watch=True)
        w.get_children(r, watch=True)
        for p in ("via_create2", "via_create", "used"):
            c.delete(f"{r}/{p}/a")
        deadline = time.time() + 10
        while time.time() < deadline:
            if c.exists(r + "/used").err != 0:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        # The reaper runs on a timer: the zxid of the deletion (and of any
        # failed reaping attempt) is timing-dependent, so zxids are left out.
        st = c.get_children2(r)
        rd = st.reader()
        obs["children"] = sorted(rd.strings())
        stat = rd.stat()
        obs["root_cversion_numChildren"] = [stat["cversion"], stat["numChildren"]]
        obs["events"] = [(e["type"], e["path"]) for e in ctx.events(w.drain_events(0.5))]
        return obs

    d.check(scenario)
