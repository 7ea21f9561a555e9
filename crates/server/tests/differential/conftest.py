"""pytest fixtures: shared and fresh (reference ZooKeeper, other) pairs.

Environment:
  DIFF_OTHER=conclave|zookeeper   which server is compared to the reference
                                  (default conclave; zookeeper = ZK-vs-ZK
                                  self-check proving normalization is stable)
  CONCLAVE_BIN=path               Conclave binary (default
                                  ${CARGO_TARGET_DIR:-<repo>/target}/debug/conclave-server)
  DIFF_SHOW=1                     print every reference observation
  DIFF_KEEP_DIRS=1                keep server temp dirs (logs, data)
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import servers  # noqa: E402


class Diff:
    """A (reference, other) pair bound to the current test."""

    def __init__(self, ref, other, name):
        self.ref = ref
        self.other = other
        self.name = name

    def check(self, scenario, name=None):
        """Run ``scenario`` on both servers; fail on any difference.

        Against ensembles (DIFF_MEMBERS > 1) a scenario whose observations
        differ runs once more, on both, under a new root, and fails only if
        they differ again: an ensemble's timing is not the test's to choose
        (in one CI run a three-server ZooKeeper answered a create under a
        parent whose setACL it had just acknowledged NodeExists instead of
        NoAuth, and passed the same scenario in every run since). A second
        difference fails with the first one's report; a pass the second
        time is reported as a warning."""
        name = name or self.name
        try:
            obs = harness.compare(self.ref, self.other, name, scenario)
        except harness.ScenarioError as first:
            if os.environ.get("DIFF_MEMBERS", "1") == "1" or "observations differ" not in str(first):
                raise
            try:
                obs = harness.compare(self.ref, self.other, name + "_again", scenario)
            except harness.ScenarioError:
                raise first from None
            warnings.warn(f"FLAKY: {name} differed once, agreed when run again:\n{first}")
        if os.environ.get("DIFF_SHOW"):
            print(f"\n[{name}] reference observation:\n" + json.dumps(obs, indent=1, sort_keys=True))
        return obs

    def both(self):
        return [self.ref, self.other]


_cache: dict[str, tuple] = {}


def _key(config):
    return json.dumps(config or {}, sort_keys=True)


@pytest.fixture(scope="session")
def shared_pair():
    pair = servers.start_pair({})
    yield pair
    for s in pair:
        s.destroy()


@pytest.fixture(scope="session", autouse=True)
def _destroy_cached():
    yield
    for pair in _cache.values():
        for s in pair:
            s.destroy()
    _cache.clear()


@pytest.fixture
def diff(shared_pair, request):
    """Shared default-config servers (the tree is shared: scenarios work
    under their own root path ``ctx.root``)."""
    for s in shared_pair:
        if not s.alive():
            raise servers.ServerError(f"{s.label} is not running any more\n" + s.log_tail())
    return Diff(shared_pair[0], shared_pair[1], request.node.name)


@pytest.fixture
def configured(request):
    """``configured(config)``: a pair with a special config, shared by all
    tests asking for the same config (not pristine)."""

    def make(config: dict) -> Diff:
        k = _key(config)
        pair = _cache.get(k)
        if pair is None or not all(s.alive() for s in pair):
            pair = servers.start_pair(config)
            _cache[k] = pair
        return Diff(pair[0], pair[1], request.node.name)

    return make


@pytest.fixture
def fresh(request):
    """``fresh(config=None)``: a brand-new pair (pristine tree), destroyed at
    the end of the test."""
    made = []

    def make(config: dict | None = None) -> Diff:
        pair = servers.start_pair(config or {})
        made.append(pair)
        return Diff(pair[0], pair[1], request.node.name)

    yield make
    for pair in made:
        for s in pair:
            s.destroy()
