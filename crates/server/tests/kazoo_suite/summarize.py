#!/usr/bin/env python3
"""Compare kazoo-suite outcomes of ZooKeeper (reference) and Conclave.

usage: summarize.py RESULTS_DIR KNOWN_DIFFERENCES_FILE
       summarize.py --still-failing RESULTS_DIR KNOWN_DIFFERENCES_FILE ROUND

Reads RESULTS_DIR/{zookeeper,conclave}.json (written by kazoo_suite_plugin's
--outcomes-json), RESULTS_DIR/{zookeeper,conclave}.time (wall seconds) and
optionally RESULTS_DIR/rerun<N>-{zookeeper,conclave}.json (regressions run
again, round N = 1, 2, ...), prints the summary and writes it to
RESULTS_DIR/summary.txt.  With --still-failing, prints the ids of the
regressions to run again in round ROUND instead: passed on ZooKeeper, not on
Conclave in the full run nor in any earlier round, not a known difference.

Exit status: 0 no unexplained regression; 1 some test passes on ZooKeeper but
not on Conclave, fails on Conclave in every re-run round, and is not listed
in known_differences.txt; 2 a run is missing or broken.  A regression that
passes on Conclave in some re-run is reported as FLAKY and does not fail the
run.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

KINDS = ("zookeeper", "conclave")
ORDER = ("passed", "failed", "error", "skipped")


def load(path: pathlib.Path):
    if not path.exists():
        return None
    return json.loads(path.read_text())


def load_known(path: pathlib.Path) -> dict[str, str]:
    known = {}
    if not path.exists():
        return known
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tid, _, reason = line.partition("#")
        known[tid.strip()] = reason.strip()
    return known


def counts(tests: dict) -> dict[str, int]:
    c = {k: 0 for k in ORDER}
    for rec in tests.values():
        c[rec["outcome"]] += 1
    return c


def fmt_counts(c: dict[str, int]) -> str:
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped, {c['error']} errors"


def short(msg: str, n: int = 300) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def load_reruns(results: pathlib.Path, kind: str, before: int | None = None) -> list[dict]:
    """The re-run rounds of one server, in order (round 1 first)."""
    rounds = []
    n = 1
    while before is None or n < before:
        r = load(results / f"rerun{n}-{kind}.json")
        if r is None:
            break
        rounds.append(r)
        n += 1
    return rounds


def rerun_outcomes(rounds: list[dict], tid: str) -> list[str]:
    return [r["tests"][tid]["outcome"] for r in rounds if tid in r["tests"]]


def regressions_of(zk: dict, cc: dict) -> list[str]:
    return sorted(t for t, v in zk.items()
                  if v["outcome"] == "passed" and cc.get(t, {}).get("outcome") != "passed")


def still_failing(results: pathlib.Path, known: dict[str, str], rnd: int) -> int:
    zk, cc = load(results / "zookeeper.json"), load(results / "conclave.json")
    if zk is None or cc is None:
        return 2
    earlier = load_reruns(results, "conclave", before=rnd)
    ids = [t for t in regressions_of(zk["tests"], cc["tests"])
           if t not in known and "passed" not in rerun_outcomes(earlier, t)]
    # a run with this many regressions is broken, not flaky: no re-runs
    if len(ids) <= 60:
        for t in ids:
            print(t)
    return 0


def main() -> int:
    if sys.argv[1] == "--still-failing":
        return still_failing(pathlib.Path(sys.argv[2]), load_known(pathlib.Path(sys.argv[3])),
                             int(sys.argv[4]))
    results = pathlib.Path(sys.argv[1])
    known = load_known(pathlib.Path(sys.argv[2]))
    runs = {k: load(results / f"{k}.json") for k in KINDS}
    reruns = {k: load_reruns(results, k) for k in KINDS}
    out: list[str] = []
    w = out.append
    status = 0

    members = os.environ.get("KAZOO_SUITE_MEMBERS", "1")
    shape = "one standalone server each" if members == "1" else f"a {members}-server ensemble each"
    w("kazoo 2.10.0 test suite (kazoo.tests): ZooKeeper 3.8 vs Conclave, " + shape)
    meta = results / "meta.txt"
    if meta.exists():
        for line in meta.read_text().splitlines():
            w("  " + line)
    for k in KINDS:
        r = runs[k]
        t = results / f"{k}.time"
        secs = t.read_text().strip() if t.exists() else "?"
        if r is None:
            w(f"{k}: NO RESULTS (run missing or crashed; see {results}/{k}.log)")
            status = 2
            continue
        c = counts(r["tests"])
        w(f"{k}: {fmt_counts(c)}  ({sum(c.values())} tests, {secs} s, pytest exit {r['exitstatus']})")
        if r["exitstatus"] not in (0, 1) or not r["tests"]:
            status = 2
        for crash in r.get("crashes", []):
            w(f"  !! {crash.splitlines()[0]}")
    if status == 2:
        w("")
        w("RESULT: broken run (see above)")
        return finish(results, out, status)

    zk, cc = runs["zookeeper"]["tests"], runs["conclave"]["tests"]
    ids = sorted(set(zk) | set(cc))
    differ = [(i, zk.get(i, {}).get("outcome", "missing"), cc.get(i, {}).get("outcome", "missing"))
              for i in ids
              if zk.get(i, {}).get("outcome") != cc.get(i, {}).get("outcome")]

    regressions = [d for d in differ if d[1] == "passed"]
    rr, rz = reruns["conclave"], reruns["zookeeper"]

    # a regression that passes on Conclave in some re-run is reported as flaky
    # and does not fail the run; everything else (incl. no rerun data) counts
    flaky = [d for d in regressions if "passed" in rerun_outcomes(rr, d[0])]
    confirmed = [d for d in regressions if d not in flaky]
    unexplained = [d for d in confirmed if d[0] not in known]
    w("")
    w(f"outcomes that differ: {len(differ)}  (zookeeper -> conclave)")
    for tid, a, b in differ:
        tag = ""
        if a == "passed":
            if tid in known:
                tag = "  [known: " + known[tid] + "]"
            elif (tid, a, b) in flaky:
                tag = "  [FLAKY: passed on conclave in a re-run]"
            else:
                tag = "  [REGRESSION]"
        w(f"  {a:>7} -> {b:<7} {tid}{tag}")

    if regressions:
        w("")
        w("passes on ZooKeeper, not on Conclave -- Conclave's message:")
        for tid, _, b in regressions:
            rec = cc.get(tid, {})
            rerun = ""
            if rerun_outcomes(rr, tid):
                rerun = f" (re-runs: conclave {'/'.join(rerun_outcomes(rr, tid))}"
                if rerun_outcomes(rz, tid):
                    rerun += f"; zookeeper {'/'.join(rerun_outcomes(rz, tid))}"
                rerun += ")"
            w(f"- {tid}{rerun}")
            where = f"[{rec.get('when')}] " if rec.get("when") not in (None, "call") else ""
            w(f"    {where}{short(rec.get('message', ''))}")
            if rec.get("location"):
                w(f"    at {short(rec['location'])}")

    stale = [t for t in known if not (zk.get(t, {}).get("outcome") == "passed"
                                       and cc.get(t, {}).get("outcome") != "passed")]
    if stale:
        w("")
        w("known_differences.txt entries that no longer apply (remove them?):")
        for t in stale:
            w(f"  {t}: zookeeper {zk.get(t, {}).get('outcome', 'missing')}, "
              f"conclave {cc.get(t, {}).get('outcome', 'missing')}")

    w("")
    if unexplained:
        w(f"RESULT: FAIL -- {len(unexplained)} test(s) pass on ZooKeeper but not on Conclave "
          f"(also when re-run) and are not in known_differences.txt"
          + (f"; {len(flaky)} more flaky" if flaky else ""))
        status = 1
    else:
        w(f"RESULT: OK -- no unexplained differences ({len(confirmed)} known, {len(flaky)} flaky)")
    return finish(results, out, status)


def finish(results: pathlib.Path, out: list[str], status: int) -> int:
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    (results / "summary.txt").write_text(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
