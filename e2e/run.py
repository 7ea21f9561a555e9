#!/usr/bin/env python3
"""End-to-end test of conclave-operator on a real cluster (KUBECONFIG).

One scenario, in order, with status checked against the ensemble at every
step:
  install the CRD and the operator; create a three-server cluster; wait for
  Ready; write and read through the client Service's DNS name from a pod;
  start a writer that creates znodes one at a time for the rest of the run;
  scale 3 -> 5 (deleting the operator's pod while a server is being added)
  -> 3; roll a new image (the leader last); roll back to the first image
  and ask for a fourth server while the roll is under way, then 3 again;
  delete the leader pod; lose a follower's volume, then the leader's (each
  server comes back empty under its id and restores itself from the
  others); turn on TLS (waiting for its Secret, then rolling the pods) and talk
  TLS to the client Service with and without a client certificate; add an
  observer, promote it, demote a participant, remove the observer; then
  check that no acknowledged write was lost.

Runs unchanged on kind and on ../shared/k8s (see e2e/README.md). Needs
python3, kubectl and openssl, and a host that reaches Service IPs (true on a
cluster's node; with kind, run it where `docker exec` reaches the node, or
set E2E_TLS=0 to skip the TLS step). Environment:
  E2E_IMAGE      image to test (default conclave:e2e); E2E_IMAGE_B, a second
                 tag of it, is what the roll moves to (default <image>-b)
  E2E_NAMESPACE  namespace for the cluster (default conclave-e2e)
  E2E_KEEP=1     leave everything in place at the end
"""

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.environ.get("E2E_IMAGE", "conclave:e2e")
IMAGE_B = os.environ.get("E2E_IMAGE_B", IMAGE + "-b")
NS = os.environ.get("E2E_NAMESPACE", "conclave-e2e")
NAME = "zk"
CLIENT = f"{NAME}-client.{NS}.svc.cluster.local:2181"
STARTED = time.time()
STARTED_RFC3339 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(STARTED))


def log(msg):
    print(f"[e2e {time.time() - STARTED:7.1f}s] {msg}", flush=True)


def kubectl(*args, stdin=None, check=True):
    proc = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def get_json(*args):
    return json.loads(kubectl("get", "-o", "json", *args))


def wait(what, predicate, timeout=600, interval=3):
    """Polls predicate() until it returns a true value; fails with the last
    observation otherwise. Never moves on because time passed."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            result = predicate()
        except Exception as e:  # an API hiccup is retried
            result, last = None, f"error: {e}"
        if result:
            log(f"ok: {what}")
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last}; status: {status_summary()}")


def cluster():
    return get_json("-n", NS, "coordinationcluster", NAME)


def status_summary():
    try:
        s = cluster().get("status", {})
        return json.dumps(
            {k: s.get(k) for k in ("phase", "readyReplicas", "leader", "operation", "members")}
            | {"conditions": [(c["type"], c["status"], c["reason"]) for c in s.get("conditions", [])]}
        )
    except Exception as e:
        return f"(unreadable: {e})"


def operation():
    """The operation in flight that status records, or None."""
    return cluster().get("status", {}).get("operation") or None


def condition(status, type_):
    for c in status.get("conditions", []):
        if c["type"] == type_:
            return c
    return {}


def pods():
    items = get_json("-n", NS, "pods", "-l", f"app.kubernetes.io/instance={NAME}")["items"]
    return {p["metadata"]["name"]: p for p in items}


def pod_ready(p):
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in p.get("status", {}).get("conditions", [])
    )


def claims():
    items = get_json("-n", NS, "pvc")["items"]
    return {c["metadata"]["name"]: c for c in items}


def peer_address(sid):
    """Server `sid`'s client port, through its own pod DNS name."""
    return f"{NAME}-{sid - 1}.{NAME}-peers.{NS}.svc.cluster.local:2181"


def ensemble_state(p):
    """`server_state` from the pod's own GET /ensemble (admin port), where
    this host reaches pod IPs (a cluster node); None otherwise."""
    ip = p.get("status", {}).get("podIP")
    if not ip:
        return None
    # HTTPS once internal TLS is on (the certificate is checked in
    # check_internal_tls; here only the state is wanted), else plain.
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    for url, context in ((f"https://{ip}:8080/ensemble", insecure),
                         (f"http://{ip}:8080/ensemble", None)):
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as r:
                return json.load(r).get("server_state")
        except Exception:  # not up yet, not serving the report, the other scheme, or unreachable
            continue
    return None


def loadgen(*args, stdin=None, name="e2e-client", attempts=1):
    """Runs conclave-loadgen in a pod of the cluster (it reaches the client
    Service by its DNS name) and returns its output. A read-only command may
    be run again when its output was lost (`kubectl run -i` can miss the
    output of a pod that ends quickly)."""
    if stdin is None:
        # Nothing to feed it: run it detached and read its whole log once it
        # has ended (an attached `kubectl run -i` may miss early output).
        kubectl("-n", NS, "delete", "pod", name, "--ignore-not-found", "--wait=true")
        kubectl("-n", NS, "run", name, "--image", IMAGE, "--image-pull-policy=IfNotPresent",
                "--restart=Never", "--command", "--", "conclave-loadgen", *args)
        def ended():
            phase = get_json("-n", NS, "pod", name).get("status", {}).get("phase")
            return phase if phase in ("Succeeded", "Failed") else None
        phase = wait(f"{name} ends", ended, timeout=300)
        out = kubectl("-n", NS, "logs", name)
        kubectl("-n", NS, "delete", "pod", name, "--wait=false")
        assert phase == "Succeeded", out
        return out
    for attempt in range(attempts):
        kubectl("-n", NS, "delete", "pod", name, "--ignore-not-found", "--wait=true")
        cmd = ["-n", NS, "run", name, "--image", IMAGE, "--image-pull-policy=IfNotPresent",
               "--restart=Never", "--quiet", "--rm", "-i", "--command", "--",
               "conclave-loadgen", *args]
        out = kubectl(*cmd, stdin=stdin, check=attempt == attempts - 1)
        if out.strip():
            return out
    return out


def server_states():
    """Each server's role as its own `mntr` says, through its pod DNS name,
    from one pod in the cluster. Retried: `kubectl run -i` may lose the
    output of a pod that ends quickly."""
    names = sorted(pods())
    hosts = " ".join(f"{n}.{NAME}-peers.{NS}.svc.cluster.local:2181" for n in names)
    # The image has a shell and no text tools: mntr is parsed here.
    script = f"for h in {hosts}; do echo \"== $h\"; conclave-loadgen mntr --server $h; done"
    states = {}
    for _ in range(5):
        kubectl("-n", NS, "delete", "pod", "e2e-mntr", "--ignore-not-found", "--wait=true")
        out = kubectl("-n", NS, "run", "e2e-mntr", "--image", IMAGE,
                      "--image-pull-policy=IfNotPresent", "--restart=Never", "--quiet",
                      "--rm", "-i", "--command", "--", "/bin/sh", "-c", script, check=False)
        host = None
        for line in out.splitlines():
            if line.startswith("== "):
                host = line[3:].strip()
            elif host and line.startswith("zk_server_state\t"):
                ordinal = int(host.split(".")[0].rsplit("-", 1)[1])
                states[ordinal + 1] = line.split("\t", 1)[1].strip()
        if len(states) == len(names):
            break
        time.sleep(2)
    return states


def healthy(replicas, image=None, observers=0):
    """The cluster is Ready, not Degraded, with `replicas` participants and
    `observers` observers and as many pods, all Ready, nothing in flight,
    and (if given) every pod runs `image`: as status says it and as the
    pods are."""
    total = replicas + observers
    def check():
        cc = cluster()
        s = cc.get("status", {})
        if s.get("observedGeneration") != cc["metadata"]["generation"]:
            return None
        if condition(s, "Ready").get("status") != "True":
            return None
        if s.get("operation") or condition(s, "Progressing").get("status") != "False":
            return None
        if condition(s, "Degraded").get("status") != "False" or s.get("readyReplicas") != total:
            return None
        ps = pods()
        if len(s.get("members", [])) != total or len(ps) != total:
            return None
        if sum(1 for m in s["members"] if m["role"] == "observer") != observers:
            return None
        if not all(pod_ready(p) for p in ps.values()):
            return None
        if image and s.get("currentVersion") != image:
            return None
        sts = get_json("-n", NS, "statefulset", NAME)
        if sts["spec"]["replicas"] != total:
            return None
        return s
    return check


def status_tells_the_truth(s, replicas, observers=0):
    """Status against the servers themselves: the leader it names is the one
    whose mntr says leader, the others follow, and the counts match. The
    first look may straddle a change of leader: it is repeated once after a
    fresh read of status."""
    try:
        check_status(s, replicas, observers)
    except AssertionError as e:
        log(f"status and servers disagreed once ({e}); looking again")
        time.sleep(5)
        check_status(cluster()["status"], replicas, observers)


def check_status(s, replicas, observers=0):
    total = replicas + observers
    states = server_states()
    leaders = [sid for sid, st in states.items() if st == "leader"]
    assert leaders == [s["leader"]], f"status leader {s['leader']}, servers say {states}"
    assert sorted(m["id"] for m in s["members"]) == list(range(1, total + 1)), s["members"]
    assert sum(1 for m in s["members"] if m["role"] == "leader") == 1, s["members"]
    status_observers = sorted(m["id"] for m in s["members"] if m["role"] == "observer")
    server_observers = sorted(sid for sid, st in states.items() if st == "observer")
    assert status_observers == server_observers and len(server_observers) == observers, \
        (s["members"], states)
    assert s["readyReplicas"] == total == len(states), (s["readyReplicas"], states)
    assert s["connectionString"] == CLIENT, s["connectionString"]
    log(f"ok: status matches the servers ({states})")


def check_acked(server, writer_log, tries=1):
    """Every write acknowledged in `writer_log` is present, read through
    `server` (the client Service, or one server's own address). A server
    that follows may not have applied the newest writes yet: with `tries`
    it looks again. Returns how many were checked."""
    acked = writer_log.count("acked ")
    for attempt in range(tries):
        if attempt:
            time.sleep(3)
        out = loadgen("check-acked", "--server", server, "--path", "/e2e", stdin=writer_log,
                      attempts=3)
        if f"all {acked} acknowledged writes are present" in out:
            return acked
    raise AssertionError(f"acknowledged writes missing through {server}: {out}")


def events(reason):
    """How many times the operator published `reason` (Events of the same
    kind about the same object are folded into one with a series count)."""
    items = get_json("-n", NS, "events.v1.events.k8s.io")["items"]
    return sum((e.get("series") or {}).get("count", 1)
               for e in items if e.get("reason") == reason)


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True,
                          timeout=30)


def make_certificates(d):
    """A CA, a server certificate for the client Service and the pods, and a
    client certificate, in directory `d`."""
    names = [f"{NAME}-client.{NS}.svc.cluster.local", f"*.{NAME}-peers.{NS}.svc.cluster.local"]
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2e CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", f"{d}/ca.key",
         "-out", f"{d}/ca.crt"],
    ]
    for who, ext in (("server", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names)),
                     ("client", "extendedKeyUsage=clientAuth")):
        with open(f"{d}/{who}.ext", "w") as f:
            f.write(ext + "\n")
        steps += [
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=e2e {who}",
             "-keyout", f"{d}/{who}.key", "-out", f"{d}/{who}.csr"],
            ["x509", "-req", "-in", f"{d}/{who}.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{d}/{who}.ext", "-out", f"{d}/{who}.crt"],
        ]
    for step in steps:
        done = openssl(*step)
        assert done.returncode == 0, done.stderr


def tls_ruok(address, d, with_certificate):
    """`ruok` over TLS to `address`; the answer, or what went wrong."""
    args = ["s_client", "-connect", address, "-quiet", "-verify_return_error",
            "-CAfile", f"{d}/ca.crt", "-servername", f"{NAME}-client.{NS}.svc.cluster.local",
            "-verify_hostname", f"{NAME}-client.{NS}.svc.cluster.local"]
    if with_certificate:
        args += ["-cert", f"{d}/client.crt", "-key", f"{d}/client.key"]
    done = openssl(*args, stdin="ruok")
    return done.stdout + done.stderr


def check_tls():
    """spec.tls: waits, naming the missing Secret, without touching a pod;
    then rolls the pods onto the secure port once the Secret exists."""
    uids = {name: p["metadata"]["uid"] for name, p in pods().items()}
    rolled = events("PodRolled")
    set_spec({"tls": {"secretName": f"{NAME}-tls"}})
    wait("the missing TLS Secret is named in status", lambda: "does not exist" in condition(
        cluster().get("status", {}), "Ready").get("message", ""))
    assert {n: p["metadata"]["uid"] for n, p in pods().items()} == uids, "pods changed"
    with tempfile.TemporaryDirectory() as d:
        make_certificates(d)
        kubectl("-n", NS, "create", "secret", "generic", f"{NAME}-tls",
                f"--from-file=tls.crt={d}/server.crt", f"--from-file=tls.key={d}/server.key",
                f"--from-file=ca.crt={d}/ca.crt")
        def rolled_onto_tls():
            ps = pods()
            if any(p["metadata"]["uid"] in uids.values() for p in ps.values()):
                return None
            return healthy(3)()
        s = wait("every pod rolled onto the secure port", rolled_onto_tls, timeout=900)
        status_tells_the_truth(s, 3)
        assert events("PodRolled") >= rolled + 3, "PodRolled events for the TLS roll"
        assert s["secureConnectionString"] == f"{NAME}-client.{NS}.svc.cluster.local:2281", s
        ip = get_json("-n", NS, "service", f"{NAME}-client")["spec"]["clusterIP"]
        answer = tls_ruok(f"{ip}:2281", d, with_certificate=True)
        assert "imok" in answer, answer
        answer = tls_ruok(f"{ip}:2281", d, with_certificate=False)
        assert "imok" not in answer, answer
    log("ok: TLS through the client Service: a client with a certificate is served, "
        "one without is refused")


def check_recovery(writer_log, acked):
    """A quorum lost for good: two servers' data destroyed. A person names
    the survivor; the operator restarts every pod with the recovery, the
    survivor leads alone with every acknowledged write, and the other two
    are added back empty and caught up."""
    s = cluster()["status"]
    survivor = next(m["id"] for m in s["members"] if m["role"] == "follower")
    check_acked(peer_address(survivor), writer_log, tries=10)
    log(f"ok: server {survivor}, the survivor to be, has every acknowledged write")

    lost = [f"{NAME}-{i}" for i in range(3) if i + 1 != survivor]
    # Both stores go first, then both pods at once: one at a time, the
    # other two would elect a leader in between, which would take the
    # first one back by snapshot.
    for pod in lost:
        kubectl("-n", NS, "exec", pod, "-c", "conclave", "--", "rm", "-rf", "/data/store")
    kubectl("-n", NS, "delete", "pod", *lost, "--wait=false")
    wait("the quorum is lost", lambda: condition(
        cluster().get("status", {}), "Ready").get("status") == "False", timeout=300)
    log(f"quorum lost: {', '.join(lost)} restarted with empty stores")

    kubectl("-n", NS, "annotate", "coordinationcluster", NAME,
            f"conclave.dev/recover-from={survivor}")
    s = wait("recovered from the survivor, the others added back", healthy(3), timeout=900)
    status_tells_the_truth(s, 3)
    assert events("QuorumRecoveryStarted") >= 1, "QuorumRecoveryStarted events"
    assert events("QuorumRecovered") >= 1, "QuorumRecovered events"
    annotations = cluster()["metadata"].get("annotations", {})
    assert "conclave.dev/recover-from" not in annotations, annotations
    recovery = s.get("recovery") or {}
    assert recovery.get("server") == survivor, s.get("recovery")
    token = recovery["token"]
    for pod in lost:
        listing = kubectl("-n", NS, "exec", pod, "-c", "conclave", "--", "ls", "/data")
        assert f"recovered-{token}" in listing, (pod, listing)
    check_acked(CLIENT, writer_log)
    log(f"ok: recovered from server {survivor} with all {acked} acknowledged writes")


def check_roll_with_a_pod_stuck_pending():
    """A template no node can run (a CPU request larger than any node):
    the roll deletes one pod, which stays Pending, and goes no further: the
    others keep serving on the old template. Reverting the spec replaces
    the Pending pod first, and the cluster is whole again."""
    rolled_before = events("PodRolled")
    version = cluster()["status"]["configVersion"]
    set_spec({"resources": {"requests": {"cpu": "512"}}})

    def one_pending():
        ps = pods()
        pending = [n for n, p in ps.items() if p.get("status", {}).get("phase") == "Pending"]
        return pending if len(pending) == 1 else None
    pending = wait("a rolled pod is stuck Pending", one_pending, timeout=300)[0]
    # Long enough for several reconciles (every 5 s while something waits).
    time.sleep(30)
    ps = pods()
    ready = sorted(n for n, p in ps.items() if pod_ready(p))
    assert len(ready) == 2 and pending not in ready, (pending, ready)
    s = cluster()["status"]
    assert condition(s, "Ready").get("status") == "True", condition(s, "Ready")
    assert condition(s, "Progressing").get("reason") == "RollWaitingForPod", \
        condition(s, "Progressing")
    assert events("PodRolled") == rolled_before + 1, "the roll went past a Pending pod"
    log(f"ok: the roll waits on {pending} (Pending); two servers still serve")

    kubectl("-n", NS, "patch", "coordinationcluster", NAME, "--type", "json",
            "-p", json.dumps([{"op": "remove", "path": "/spec/resources"}]))
    s = wait("whole again after the spec was reverted", healthy(3), timeout=600)
    status_tells_the_truth(s, 3)
    assert s["configVersion"] == version, "a roll changes no membership"


EMPTY_BUT_MEMBER = "this server's store is empty but the ensemble knows it as a member"
RESTORED = "restored: this server holds everything committed before it came back"


def check_volume_lost(role):
    """A server's volume lost, as when its disk dies, while the writer
    writes: its claim and its pod deleted (the `role` server: "follower" or
    "leader"). The StatefulSet makes both again, and the server, empty under
    its old id, learns from the others that the ensemble knows it as a
    member: it takes its state back from the leader ("restoring") and votes
    again once it holds everything committed before it came back. No
    operator action and no membership change; no acknowledged write lost,
    read through that very server."""
    s = cluster()["status"]
    version = s["configVersion"]
    added, removed = events("MemberAdded"), events("MemberRemoved")
    states = server_states()
    if role == "leader":
        victim = s["leader"]
    else:
        victim = min(sid for sid, st in states.items() if st == "follower")
    assert states.get(victim) == role, f"server {victim} is not the {role}: {states}"
    pod, claim = f"{NAME}-{victim - 1}", f"data-{NAME}-{victim - 1}"
    ps = pods()
    old_pod = ps[pod]["metadata"]["uid"]
    others = {n: p["metadata"]["uid"] for n, p in ps.items() if n != pod}
    old_claim = claims()[claim]
    old_claim_uid, old_volume = old_claim["metadata"]["uid"], old_claim["spec"]["volumeName"]
    # Every write acknowledged so far was committed before the server comes back.
    before = kubectl("-n", NS, "logs", "e2e-writer")

    deleted = time.time()
    # The claim first, without waiting: its pvc-protection finalizer holds
    # it until the pod that mounts it is gone.
    kubectl("-n", NS, "delete", "pvc", claim, "--wait=false")
    kubectl("-n", NS, "delete", "pod", pod, "--wait=false")
    log(f"deleted the {role}'s (server {victim}) claim {claim} and pod {pod}")

    redeleted = 0
    def recreated():
        nonlocal redeleted
        p = pods().get(pod)
        c = claims().get(claim)  # listed after the pods
        if c and c["metadata"]["uid"] == old_claim_uid:
            return None  # the old claim is still terminating
        if not p or p["metadata"]["uid"] == old_pod or p["metadata"].get("deletionTimestamp"):
            return None
        if c is None:
            # The StatefulSet made this pod while the old claim was still
            # there, so it made no claim for it, and it makes none for a pod
            # that exists (Kubernetes 1.20): the pod would stay Pending. A
            # person would delete the pod once more; so does the test.
            kubectl("-n", NS, "delete", "pod", pod, "--wait=false")
            redeleted += 1
            return None
        return p["metadata"]["uid"]
    new_pod = wait(f"{pod} and {claim} are made again", recreated, timeout=300, interval=1)

    seen = []  # the server's states on its own /ensemble, in order
    def ready():
        p = pods().get(pod, {})
        if p.get("metadata", {}).get("uid") != new_pod:
            raise AssertionError(f"{pod} was replaced again")
        state = ensemble_state(p)
        if state and (not seen or seen[-1] != state):
            seen.append(state)
        return p if pod_ready(p) else None
    p = wait(f"{pod} is Ready again with an empty volume", ready, timeout=600, interval=1)
    took = time.time() - deleted

    new_claim = claims()[claim]
    assert new_claim["metadata"]["uid"] != old_claim_uid, "the claim was not made again"
    assert new_claim["spec"]["volumeName"] != old_volume, (old_volume, new_claim["spec"])
    restarts = {c["name"]: c.get("restartCount", 0)
                for c in p["status"].get("containerStatuses", [])}
    if restarts.get("conclave"):
        previous = kubectl("-n", NS, "logs", pod, "-c", "conclave", "--previous", check=False)
        raise AssertionError(f"{pod}'s server restarted {restarts['conclave']} times; last "
                             "run's log ends:\n" + "\n".join(previous.splitlines()[-30:]))
    server_log = kubectl("-n", NS, "logs", pod, "-c", "conclave")
    for line in (EMPTY_BUT_MEMBER, RESTORED):
        assert line in server_log, f"{pod}'s log lacks {line!r}:\n" + \
            "\n".join(server_log.splitlines()[-30:])

    s = wait(f"whole again after the {role}'s volume was lost", healthy(3), timeout=600)
    status_tells_the_truth(s, 3)
    assert s["configVersion"] == version, "a lost volume is no membership change"
    assert (events("MemberAdded"), events("MemberRemoved")) == (added, removed), \
        "a lost volume is no membership change"
    assert {n: p["metadata"]["uid"] for n, p in pods().items() if n != pod} == others, \
        "the other pods were touched"
    states = server_states()
    assert states.get(victim) == "follower", f"server {victim} came back as {states}"
    if role == "leader":
        assert s["leader"] != victim, f"server {victim} still leads: {states}"

    # Through that very server: everything acknowledged before it lost its
    # volume at once (it holds everything committed before it came back),
    # then everything acknowledged until now (it may lag a little behind).
    early = check_acked(peer_address(victim), before)
    writer_log = kubectl("-n", NS, "logs", "e2e-writer")
    acked = check_acked(peer_address(victim), writer_log, tries=10)
    assert acked > early, f"the writer got no write through while {pod} was away ({acked})"
    log(f"ok: server {victim} ({role}) lost its volume: {pod} Ready again {took:.1f}s after "
        f"its deletion (pod deleted again for its claim: {redeleted}), restored with no "
        f"membership change, /ensemble states seen: {seen or 'none'}; follows "
        f"{'under a new leader, ' if role == 'leader' else ''}"
        f"and reads all {early} writes acknowledged before the loss and all {acked} until now")


def check_two_pods_deleted():
    """Two of three pods deleted at once: both come back under their ids
    and volumes, with no membership change."""
    s = cluster()["status"]
    version = s["configVersion"]
    victims = [f"{NAME}-0", f"{NAME}-1"]
    kubectl("-n", NS, "delete", "pod", *victims, "--wait=false")
    s = wait("Ready again after two of three pods were deleted", healthy(3), timeout=600)
    status_tells_the_truth(s, 3)
    assert s["configVersion"] == version, "deleted pods are restarts, not membership changes"


def kill_the_operator_mid_step():
    """Deletes the operator's pod while a server is being added (status
    records the step): its replacement takes the Lease and carries the step
    on from status, instead of starting another."""
    op = wait("a server is being added", operation, timeout=300, interval=1)
    assert op["kind"] == "AddServer", op
    kubectl("-n", "conclave-system", "delete", "pod", "-l",
            "app.kubernetes.io/name=conclave-operator", "--wait=false")
    log(f"deleted the operator's pod during {op['kind']} of server {op['server']} "
        f"(step {op.get('step')})")
    wait("the operator's replacement is available", lambda: get_json(
        "-n", "conclave-system", "deployment", "conclave-operator"
    ).get("status", {}).get("availableReplicas", 0) >= 1, timeout=300)


def check_scale_during_a_roll():
    """A roll back to the first image, and a fourth server asked for while
    a pod is being rolled: the step in flight finishes first, then both are
    done one step at a time; then back to three servers."""
    rolled = events("PodRolled")
    set_spec({"image": IMAGE})
    wait("a pod is being rolled", lambda: (operation() or {}).get("kind") == "RollPod",
         timeout=300, interval=1)
    set_spec({"replicas": 4})
    s = wait(f"4 servers, every pod on {IMAGE}", healthy(4, image=IMAGE), timeout=900)
    status_tells_the_truth(s, 4)
    assert events("PodRolled") >= rolled + 3, "every old pod rolled"
    set_spec({"replicas": 3})
    s = wait("back to 3 servers after the roll", healthy(3, image=IMAGE), timeout=900)
    status_tells_the_truth(s, 3)
    return cluster()["status"]


def check_network_policy():
    """The NetworkPolicy the operator made by default: the quorum and
    election ports take the cluster's pods only, the admin port the
    operator's pods only. (This single-node cluster's network plugin may not
    enforce it: the objects are checked here, their logic in unit tests.)"""
    policy = get_json("-n", NS, "networkpolicy", NAME)
    spec = policy["spec"]
    own = {"podSelector": {"matchLabels": spec["podSelector"]["matchLabels"]}}

    def sources(port):
        return [peer for rule in spec["ingress"] if any(p["port"] == port for p in rule["ports"])
                for peer in rule["from"]]
    assert sources(2888) == [own] and sources(3888) == [own], spec
    admin = sources(8080)
    assert [a["podSelector"]["matchLabels"] for a in admin] == [
        {"app.kubernetes.io/name": "conclave-operator"}], admin
    assert sources(2181) == [{"podSelector": {}}], spec
    log("ok: the NetworkPolicy admits the cluster's pods to the quorum ports, the operator to the "
        "admin port, the namespace to the client port")


def secret_file(name, key, path):
    data = get_json("-n", NS, "secret", name)["data"][key]
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))


def tls_connect(ip, port, d, server_name, client_pem=None):
    """A TLS handshake with `ip:port` checking the server against the
    cluster's CA for `server_name`; None when it succeeds, else the error."""
    context = ssl.create_default_context(cafile=f"{d}/ca.crt")
    if client_pem:
        context.load_cert_chain(client_pem)
    try:
        with socket.create_connection((ip, port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                # TLS 1.3: a refused client certificate shows on first read.
                tls.settimeout(2)
                try:
                    tls.recv(1)
                except socket.timeout:
                    pass
        return None
    except (ssl.SSLError, OSError) as e:
        return str(e) or type(e).__name__


def check_internal_tls(stage="On"):
    """spec.internalTls, on by default: the servers speak TLS to each other,
    each with a certificate naming its own pod from the cluster's CA; the
    quorum port refuses a client without one and plain HTTP is refused on
    the admin port."""
    s = cluster()["status"]
    assert s.get("internalTls") == stage, s.get("internalTls")
    p = pods()[f"{NAME}-0"]
    ip = p["status"]["podIP"]
    host = f"{NAME}-0.{NAME}-peers.{NS}.svc.cluster.local"
    with tempfile.TemporaryDirectory() as d:
        secret_file(f"{NAME}-internal-tls", "ca.crt", f"{d}/ca.crt")
        secret_file(f"{NAME}-internal-tls", "server-2.pem", f"{d}/server-2.pem")
        assert tls_connect(ip, 8080, d, host) is None, "admin HTTPS with the pod's own name"
        wrong = tls_connect(ip, 8080, d, f"{NAME}-1.{NAME}-peers.{NS}.svc.cluster.local")
        assert wrong is not None, "server 1's certificate passed as server 2's"
        refused = tls_connect(ip, 2888, d, host)
        assert refused is not None, "the quorum port took a TLS client without a certificate"
        assert tls_connect(ip, 2888, d, host, client_pem=f"{d}/server-2.pem") is None, \
            "the quorum port refused a member's certificate"
    try:
        urllib.request.urlopen(f"http://{ip}:8080/readyz", timeout=3)
        plain = "answered"
    except Exception as e:
        plain = str(e)
    assert plain != "answered", "the admin port answered plain HTTP"
    log("ok: internal TLS on: quorum port mutual TLS (no certificate refused, a member's taken), "
        "admin HTTPS verified against the cluster's CA for the pod's own name, plain HTTP refused")


def check_internal_tls_roll():
    """Turns internal TLS off and on again under the writer's load: three
    rolls each way, the operator moving one stage per finished roll."""
    rolled = events("PodRolled")
    set_spec({"internalTls": {"enabled": False}})
    s = wait("internal TLS off: three rolls", lambda: healthy(3)() if cluster().get(
        "status", {}).get("internalTls") == "Off" else None, timeout=1800)
    status_tells_the_truth(s, 3)
    assert events("InternalTlsStage") >= 3, "InternalTlsStage events"
    assert events("PodRolled") >= rolled + 9, "three rolls of three pods"
    set_spec({"internalTls": {"enabled": True}})
    s = wait("internal TLS on again: three rolls", lambda: healthy(3)() if cluster().get(
        "status", {}).get("internalTls") == "On" else None, timeout=1800)
    status_tells_the_truth(s, 3)
    check_internal_tls()
    log("ok: internal TLS turned off and on again by rolls, under write load")


def set_spec(patch):
    kubectl("-n", NS, "patch", "coordinationcluster", NAME, "--type", "merge",
            "-p", json.dumps({"spec": patch}))


def main():
    log(f"image {IMAGE} (roll to {IMAGE_B}), namespace {NS}")
    crd = os.path.join(ROOT, "crds", "coordinationclusters.conclave.dev.json")
    applied = subprocess.run(["kubectl", "apply", "-f", crd], capture_output=True, text=True)
    if applied.returncode != 0:
        # Kubernetes before 1.25 does not know CEL rules
        # (x-kubernetes-validations); its API server drops them, but its
        # kubectl refuses the file unless told not to check it.
        assert "x-kubernetes-validations" in applied.stderr, applied.stderr
        log("this Kubernetes has no CEL validation rules: the CRD is applied without them")
        kubectl("apply", "--validate=false", "-f", crd)
    wait("the CRD is established", lambda: any(
        c["type"] == "Established" and c["status"] == "True"
        for c in get_json("crd", "coordinationclusters.conclave.dev")["status"]["conditions"]))
    with open(os.path.join(ROOT, "manifests", "operator.yaml")) as f:
        manifest = f.read().replace("image: conclave:dev", f"image: {IMAGE}")
    kubectl("apply", "-f", "-", stdin=manifest)
    # A rebuilt image under the same tag: the operator's pods restart on it.
    kubectl("-n", "conclave-system", "rollout", "restart", "deployment", "conclave-operator")
    kubectl("-n", "conclave-system", "rollout", "status", "deployment", "conclave-operator",
            "--timeout=300s")
    wait("the operator is available", lambda: get_json(
        "-n", "conclave-system", "deployment", "conclave-operator"
    ).get("status", {}).get("availableReplicas", 0) >= 1)

    kubectl("create", "namespace", NS, check=False)
    with open(os.path.join(ROOT, "manifests", "example-cluster.yaml")) as f:
        cr = f.read().replace("image: conclave:dev", f"image: {IMAGE}") \
                     .replace("reclaimPolicy: Retain", "reclaimPolicy: Delete")
    # kubectl validates against the schema the API server publishes, which
    # follows a CRD update after a few seconds.
    wait("the cluster is created", lambda: kubectl(
        "-n", NS, "apply", "-f", "-", stdin=cr, check=False) is not None and cluster(),
        timeout=60)

    s = wait("3 servers Ready", healthy(3), timeout=900)
    status_tells_the_truth(s, 3)
    assert s["phase"] == "Running", s["phase"]
    check_network_policy()
    check_internal_tls()

    # A fresh path per attempt: `kubectl run -i` may lose a quick pod's output.
    for attempt in range(3):
        smoke = f"/e2e-smoke-{attempt}"
        out = loadgen("acked-writes", "--server", CLIENT, "--path", smoke, "--count", "5")
        if out.count("acked ") == 5:
            break
    assert out.count("acked ") == 5, out
    out = loadgen("check-acked", "--server", CLIENT, "--path", smoke, stdin=out, attempts=3)
    assert "all 5 acknowledged writes are present" in out, out
    log("ok: wrote and read through the client Service's DNS name")

    # A writer for the rest of the run.
    kubectl("-n", NS, "delete", "pod", "e2e-writer", "--ignore-not-found", "--wait=true")
    kubectl("-n", NS, "run", "e2e-writer", "--image", IMAGE, "--image-pull-policy=IfNotPresent",
            "--restart=Never", "--command", "--", "conclave-loadgen", "acked-writes",
            "--server", CLIENT, "--path", "/e2e", "--duration", "3600", "--interval-ms", "50")
    wait("the writer is writing", lambda: "acked " in kubectl(
        "-n", NS, "logs", "e2e-writer", check=False))

    version_before = s["configVersion"]
    set_spec({"replicas": 5})
    kill_the_operator_mid_step()
    s = wait("5 servers Ready", healthy(5), timeout=900)
    status_tells_the_truth(s, 5)
    assert s["configVersion"] != version_before
    assert events("MemberAdded") >= 2, "MemberAdded events"

    set_spec({"replicas": 3})
    s = wait("back to 3 servers", healthy(3), timeout=900)
    status_tells_the_truth(s, 3)
    assert events("MemberRemoved") >= 2, "MemberRemoved events"
    wait("the removed servers' volumes are reclaimed (reclaimPolicy Delete)", lambda: sorted(
        c["metadata"]["name"] for c in get_json("-n", NS, "pvc")["items"]
        if not c["metadata"].get("deletionTimestamp")) == [f"data-{NAME}-{i}" for i in range(3)])

    set_spec({"image": IMAGE_B})
    s = wait(f"every pod runs {IMAGE_B}", healthy(3, image=IMAGE_B), timeout=900)
    status_tells_the_truth(s, 3)
    rolled = events("PodRolled")
    assert rolled >= 3, f"{rolled} PodRolled events"
    assert events("LeadershipTransferred"), "the leader was handed over before its pod was rolled"
    assert s["targetVersion"] == IMAGE_B == s["currentVersion"]

    s = check_scale_during_a_roll()

    version = s["configVersion"]
    leader = s["leader"]
    leader_pod = f"{NAME}-{leader - 1}"
    old_uid = pods()[leader_pod]["metadata"]["uid"]
    kubectl("-n", NS, "delete", "pod", leader_pod, "--wait=false")
    wait(f"the leader's pod {leader_pod} is replaced", lambda: pods().get(
        leader_pod, {}).get("metadata", {}).get("uid") not in (None, old_uid), timeout=300)
    s = wait("Ready again after the leader pod was deleted", healthy(3), timeout=600)
    status_tells_the_truth(s, 3)
    assert s["configVersion"] == version, "a deleted pod is a restart, not a membership change"

    check_two_pods_deleted()
    check_volume_lost("follower")
    check_volume_lost("leader")
    check_roll_with_a_pod_stuck_pending()

    if os.environ.get("E2E_TLS", "1") == "1":
        check_tls()
        check_internal_tls_roll()

    # Observers, and roles moved so that only the top server ever leaves.
    set_spec({"observers": 1})
    s = wait("an observer joins", healthy(3, observers=1), timeout=600)
    status_tells_the_truth(s, 3, observers=1)
    set_spec({"replicas": 4, "observers": 0})
    s = wait("the observer is promoted", healthy(4), timeout=600)
    status_tells_the_truth(s, 4)
    assert events("MemberPromoted") >= 1, "MemberPromoted events"
    set_spec({"replicas": 3, "observers": 1})
    s = wait("a participant is demoted", healthy(3, observers=1), timeout=600)
    status_tells_the_truth(s, 3, observers=1)
    assert events("MemberDemoted") >= 1, "MemberDemoted events"
    set_spec({"observers": 0})
    s = wait("the observer leaves", healthy(3), timeout=600)
    status_tells_the_truth(s, 3)

    writer_log = kubectl("-n", NS, "logs", "e2e-writer")
    acked = writer_log.count("acked ")
    assert acked > 50, f"only {acked} writes acknowledged"
    kubectl("-n", NS, "delete", "pod", "e2e-writer", "--wait=false")
    check_acked(CLIENT, writer_log)
    log(f"ok: all {acked} acknowledged writes survived scaling, the roll, the leader's "
        "deletion and the lost volumes")

    if os.environ.get("E2E_RECOVERY", "1") == "1":
        check_recovery(writer_log, acked)

    failures = [line for pod in get_json("-n", "conclave-system", "pods")["items"]
                for line in kubectl("-n", "conclave-system", "logs", pod["metadata"]["name"],
                                    f"--since-time={STARTED_RFC3339}", check=False).splitlines()
                if "reconcile failed" in line]
    assert not failures, "the operator failed reconciles:\n" + "\n".join(failures[:5])
    log("ok: the operator logged no failed reconcile")

    if os.environ.get("E2E_KEEP") != "1":
        kubectl("-n", NS, "delete", "coordinationcluster", NAME, "--wait=true", "--timeout=120s")
        wait("the volumes are deleted with the cluster (reclaimPolicy Delete)", lambda: not [
            c for c in get_json("-n", NS, "pvc")["items"]
            if not c["metadata"].get("deletionTimestamp")], timeout=120)
        kubectl("delete", "namespace", NS, "--wait=false")
    log("PASSED")


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, RuntimeError) as e:
        log(f"FAILED: {e}")
        sys.exit(1)
