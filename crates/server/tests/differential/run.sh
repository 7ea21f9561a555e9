#!/usr/bin/env bash
# Differential conformance suite: Apache ZooKeeper 3.8 (reference) vs Conclave.
#
#   crates/server/tests/differential/run.sh [pytest args...]
#
# Environment:
#   DIFF_OTHER=conclave|zookeeper  server compared with the reference (default conclave;
#                                  "zookeeper" runs ZK-vs-ZK to prove normalization stable)
#   CONCLAVE_BIN=path              Conclave binary (default ${CARGO_TARGET_DIR:-<repo>/target}/debug/conclave-server)
#   DIFF_BUILD=0                   do not run `cargo build -p server` first
#   DIFF_MEMBERS=3                 compare a three-server ZooKeeper ensemble with a
#                                  three-server ensemble of the other (clients get the
#                                  whole connection string; raw clients member 1)
#   DIFF_VENV=dir                  virtualenv location (default: .venv next to this script)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../../.." && pwd)"
VENV="${DIFF_VENV:-$HERE/.venv}"
PY="${PYTHON:-python3}"

# Reference server and real clients come from Debian's zookeeper packages.
if [ ! -f /usr/share/java/zookeeper.jar ] || [ ! -x /usr/lib/zookeeper/bin/cli_mt ] \
   || [ ! -f /usr/share/java/servlet-api.jar ] || [ ! -f /usr/share/java/slf4j-simple.jar ]; then
    echo "run.sh: installing Debian's zookeeper (reference server, zkCli.sh, cli_mt)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq zookeeper zookeeper-bin libservlet-api-java libslf4j-java default-jre-headless >/dev/null
fi

if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$HERE/requirements.txt" "$VENV/.requirements.txt"; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$VENV/.requirements.txt"
fi

if [ "${DIFF_OTHER:-conclave}" = "conclave" ] && [ -z "${CONCLAVE_BIN:-}" ] && [ "${DIFF_BUILD:-1}" != "0" ]; then
    (cd "$REPO" && cargo build -q -p server)
fi

cd "$HERE"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
