#!/usr/bin/env bash
# Three-server benchmark: an Apache ZooKeeper 3.8 ensemble (Debian's,
# QuorumPeerMain) against a Conclave ensemble (release build), one after the
# other on this machine, same client (conclave-loadgen), same zoo.cfg
# settings (tickTime, initLimit, syncLimit), fresh data dirs on the same disk.
#
# For each implementation:
#   1. start three servers on loopback; wait until each answers `srvr` with
#      a Mode (leader or follower);
#   2. writes: setData of 1 KiB values at concurrency 8 (8 sessions x 1 in
#      flight) and 64 (8 x 8), sessions spread over the three servers as a
#      client's connection string spreads them; a 5 s warm-up then a 20 s
#      measured window each;
#   3. failover, FAILOVERS times: kill -9 the leader, then time from the kill
#      to the first create accepted by any server (conclave-loadgen probe
#      --write, trying the servers in turn); restart the killed server and
#      wait until all three serve again.
#
# Usage: crates/loadgen/ensemble-bench.sh [OUTDIR]
# Environment: DURATION (20), WARMUP (5), LEVELS ("8x1 8x8"), FAILOVERS (5),
# TICK_TIME (2000), SYNC_LIMIT (5), INIT_LIMIT (10), ZK_HEAP (1g),
# SERVERS ("zookeeper conclave").
# Results: OUTDIR/results.md and OUTDIR/*.json; logs stay in OUTDIR.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
LEVELS=${LEVELS:-"8x1 8x8"}
FAILOVERS=${FAILOVERS:-5}
TICK_TIME=${TICK_TIME:-2000}
SYNC_LIMIT=${SYNC_LIMIT:-5}
INIT_LIMIT=${INIT_LIMIT:-10}
ZK_HEAP=${ZK_HEAP:-1g}
SERVERS=${SERVERS:-"zookeeper conclave"}
VALUE_SIZE=1024

OUT=${1:-$(mktemp -d /tmp/conclave-ensemble-bench.XXXXXX)}
# shellcheck source=crates/loadgen/bench-common.sh
. "$REPO/crates/loadgen/bench-common.sh"
# shellcheck source=crates/loadgen/ensemble-common.sh
. "$REPO/crates/loadgen/ensemble-common.sh"

bench_ensemble() {
    local name=$1
    start_ensemble "$name"
    local leader connect
    leader=$(await_leader)
    connect=$(connect_string)
    log "$name: ensemble serving on $connect, leader server $leader"

    for level in $LEVELS; do
        local s=${level%x*} k=${level#*x}
        "$LOADGEN" bench --server "$connect" --sessions "$s" --in-flight "$k" \
            --duration "$DURATION" --warmup "$WARMUP" --value-size "$VALUE_SIZE" \
            --label "$name (3 servers)" --json "$OUT/$name-bench-$level.json" |
            tee "$OUT/$name/bench-$level.out" | head -n -1 >&2
    done

    : >"$OUT/$name-failover.jsonl"
    for round in $(seq 1 "$FAILOVERS"); do
        leader=$(await_leader)
        local killed_ns
        killed_ns=$(now_ns)
        kill -9 "${PIDS[$leader]}"
        wait "${PIDS[$leader]}" 2>/dev/null || true
        "$LOADGEN" probe --write --server "$connect" --since-unix-ns "$killed_ns" \
            --attempt-timeout-ms 1000 --timeout 120 >"$OUT/$name/failover-$round.out"
        tail -n1 "$OUT/$name/failover-$round.out" | jq -c --arg round "$round" --arg killed "$leader" \
            '. + {round: ($round | tonumber), killed_leader: ($killed | tonumber)}' >>"$OUT/$name-failover.jsonl"
        log "$name: failover $round (killed leader $leader): first write after $(tail -n1 "$OUT/$name/failover-$round.out" | jq '.ready_ms | round') ms"
        start_member "$name" "$leader"
        await_leader >/dev/null
    done
    stop_ensemble
}

{
    echo "# three-server benchmark: $(date -u +%FT%TZ)"
    echo "host: $(nproc) vCPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r); all servers and the client on this one host"
    echo "java: $(java -version 2>&1 | head -n1); ZooKeeper: $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo '?')"
    echo "conclave: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- crates || echo ' + local changes')"
    echo "settings: tickTime=$TICK_TIME initLimit=$INIT_LIMIT syncLimit=$SYNC_LIMIT, defaults otherwise; ZooKeeper heap -Xmx$ZK_HEAP"
} >"$OUT/bench.log"
cat "$OUT/bench.log" >&2

for server in $SERVERS; do
    bench_ensemble "$server"
done

{
    sed -n '1,5p' "$OUT/bench.log" | sed 's/^/    /'
    echo
    echo "Writes through a 3-server ensemble: setData of $VALUE_SIZE B, sessions spread over the servers, ${DURATION} s measured after ${WARMUP} s warm-up; latency in ms."
    echo
    echo "| server | concurrency (sessions × in flight) | writes/s | mean | p50 | p90 | p99 | p99.9 | max | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for server in $SERVERS; do
        for level in $LEVELS; do
            jq -r 'def ms: (. | round) / 1000;
                "| \(.label) | \(.concurrency) (\(.sessions) × \(.in_flight)) | \(.writes.ops_per_s | round) | \(.writes.mean_us | ms) | \(.writes.p50_us | ms) | \(.writes.p90_us | ms) | \(.writes.p99_us | ms) | \(.writes.p999_us | ms) | \(.writes.max_us | ms) | \(if (.errors | length) == 0 then "none" else (.errors | tostring) end) |"' \
                "$OUT/$server-bench-$level.json"
        done
    done
    echo
    echo "Failover: kill -9 of the leader → first create accepted by any server, ms ($FAILOVERS rounds each):"
    echo
    echo "| server | rounds | min | median | max |"
    echo "|---|---:|---:|---:|---:|"
    for server in $SERVERS; do
        jq -rs --arg s "$server" '[.[].ready_ms] | sort as $v |
            "| \($s) | \($v | length) | \($v[0] | round) | \($v[(($v | length) / 2 | floor)] | round) | \($v[-1] | round) |"' \
            "$OUT/$server-failover.jsonl"
    done
} >"$OUT/results.md"
cat "$OUT/results.md"
