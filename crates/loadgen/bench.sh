#!/usr/bin/env bash
# Standalone benchmark: Apache ZooKeeper 3.8 (Debian's, default forceSync=yes)
# against Conclave (release build), one after the other, same client
# (conclave-loadgen), same zoo.cfg settings, fresh data dirs on the same disk.
#
# For each server:
#   1. start it; time to the first successful getData of "/";
#   2. an unreported 10 s warm-up at the highest concurrency (JIT, log files);
#   3. setData of 1 KiB values at concurrency 1 (1 session x 1 in flight),
#      8 (8 sessions x 1) and 64 (8 sessions x 8), each a 5 s warm-up then a
#      20 s measured window, reading the group-commit figures (log entries
#      per sync) from mntr at the start and end of the window;
#   4. populate 1,000,000 znodes (/pop/d<i>/n<j>, 1000 x 1000, 32 B each);
#      VmRSS of the server process;
#   5. SIGTERM, wait for exit; restart; time from process start to the first
#      successful connect + getData of the last znode created; VmRSS then.
#
# Usage: crates/loadgen/bench.sh [OUTDIR]
# Environment: DURATION (20), WARMUP (5), NODES (1000000), VALUE_SIZE (1024),
# ZK_HEAP (2g), LEVELS ("1x1 8x1 8x8" = sessions x in-flight),
# SERVERS ("zookeeper conclave"), QUIET_LOAD (0.5: wait until the 1-minute
# load average is below it, at most QUIET_WAIT seconds, default 900).
# Results: OUTDIR/results.md (markdown) and OUTDIR/*.json; server logs and
# data dirs stay in OUTDIR (default: a new directory under /tmp).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
NODES=${NODES:-1000000}
VALUE_SIZE=${VALUE_SIZE:-1024}
ZK_HEAP=${ZK_HEAP:-2g}
LEVELS=${LEVELS:-"1x1 8x1 8x8"}
SERVERS=${SERVERS:-"zookeeper conclave"}
QUIET_LOAD=${QUIET_LOAD:-0.5}
QUIET_WAIT=${QUIET_WAIT:-900}
TICK_TIME=2000

OUT=${1:-$(mktemp -d /tmp/conclave-bench.XXXXXX)}
# shellcheck source=crates/loadgen/bench-common.sh
. "$REPO/crates/loadgen/bench-common.sh"

load1() { cut -d' ' -f1 /proc/loadavg; }

# Waits (up to QUIET_WAIT s) until the 1-minute load average is below QUIET_LOAD.
wait_quiet() {
    local waited=0
    while awk -v l="$(load1)" -v m="$QUIET_LOAD" 'BEGIN { exit !(l >= m) }'; do
        if ((waited >= QUIET_WAIT)); then
            log "WARNING: load average still $(load1) after ${waited}s; going on"
            return
        fi
        ((waited == 0)) && log "waiting for load average $(load1) < $QUIET_LOAD"
        sleep 15
        waited=$((waited + 15))
    done
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# utime + stime of a process, in seconds (USER_HZ = 100).
cpu_s() { awk '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / 100 }' "/proc/$1/stat"; }
# Busy CPU seconds of the whole machine (all CPUs) since boot, from /proc/stat.
busy_s() { awk '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / 100 }' /proc/stat; }

# start_server NAME: starts it in the background; sets PID and START_NS.
start_server() {
    local name=$1 dir=$OUT/$1
    START_NS=$(now_ns)
    case $name in
        zookeeper)
            # slf4j-simple logs to stderr; the two properties only add times.
            java "-Xmx$ZK_HEAP" -cp "$ZK_CLASSPATH" "-Dzookeeper.log.dir=$dir" \
                -Dorg.slf4j.simpleLogger.showDateTime=true \
                -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
                org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
                >>"$dir/server.log" 2>&1 &
            ;;
        conclave)
            NO_COLOR=1 "$CONCLAVE" --config "$dir/zoo.cfg" >>"$dir/server.log" 2>&1 &
            ;;
    esac
    PID=$!
}

# stop_server: SIGTERM, wait for the exit; sets STOP_MS.
stop_server() {
    local t0
    t0=$(now_ns)
    kill -TERM "$PID"
    wait "$PID" || true
    STOP_MS=$((($(now_ns) - t0) / 1000000))
}

bench_server() {
    local name=$1 dir=$OUT/$1 port
    port=$(free_port)
    local addr=127.0.0.1:$port
    rm -rf "$dir"
    mkdir -p "$dir/data"
    # The same settings for both; only the directories and port differ.
    cat >"$dir/zoo.cfg" <<EOF
tickTime=$TICK_TIME
dataDir=$dir/data
clientPort=$port
admin.enableServer=false
4lw.commands.whitelist=mntr,srvr,ruok
EOF
    wait_quiet
    log "$name: starting on $addr (data in $dir/data)"
    start_server "$name"
    "$LOADGEN" probe --server "$addr" --since-unix-ns "$START_NS" >"$dir/probe-fresh.out"
    tail -n1 "$dir/probe-fresh.out" >"$OUT/$name-start-fresh.json"
    log "$name: serving after $(jq .ready_ms "$OUT/$name-start-fresh.json") ms (fresh)"

    local top=${LEVELS##* }
    log "$name: warm-up ${top} for 10 s (not reported)"
    "$LOADGEN" bench --server "$addr" --sessions "${top%x*}" --in-flight "${top#*x}" \
        --duration 10 --warmup 0 --value-size "$VALUE_SIZE" --label "$name warm-up" >"$dir/warmup.out"

    for level in $LEVELS; do
        local s=${level%x*} k=${level#*x} c0 c1 l0 b0 b1
        l0=$(load1)
        c0=$(cpu_s "$PID")
        b0=$(busy_s)
        "$LOADGEN" bench --server "$addr" --sessions "$s" --in-flight "$k" \
            --duration "$DURATION" --warmup "$WARMUP" --value-size "$VALUE_SIZE" --mntr \
            --label "$name" --json "$dir/bench-$level.json" | tee "$dir/bench-$level.out" | head -n -1 >&2
        c1=$(cpu_s "$PID")
        b1=$(busy_s)
        # CPU over warm-up + window (both at the same load), in % of one
        # core: the server's, and the rest of the machine's (busy CPU minus
        # server and load generator: kernel threads such as the ext4
        # journal, and anything else running; it shows interference).
        jq --argjson cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
            --argjson busy "$(awk -v a="$b0" -v b="$b1" 'BEGIN { print b - a }')" \
            --argjson t "$(awk -v a="$DURATION" -v b="$WARMUP" 'BEGIN { print a + b }')" \
            --arg load_before "$l0" --arg load_after "$(load1)" \
            '. + {server_name: "'"$name"'", server_cpu_pct: (100 * $cpu / $t),
                  other_cpu_pct: (100 * ($busy - $cpu - .client_cpu_s) / $t),
                  load_before: $load_before, load_after: $load_after}' \
            "$dir/bench-$level.json" >"$OUT/$name-bench-$level.json"
    done

    local rss_before
    rss_before=$(rss_kib "$PID")
    log "$name: populating $NODES znodes"
    "$LOADGEN" populate --server "$addr" --count "$NODES" >"$dir/populate.out"
    tail -n1 "$dir/populate.out" >"$dir/populate.json"
    head -n1 "$dir/populate.out" >&2
    local last rss_pop hwm_pop heap="" znodes
    last=$(jq -r .last_path "$dir/populate.json")
    rss_pop=$(rss_kib "$PID")
    hwm_pop=$(hwm_kib "$PID")
    znodes=$("$LOADGEN" mntr --server "$addr" | awk '$1 == "zk_znode_count" { print $2 }')
    if [[ $name == zookeeper ]]; then
        # Heap in use as the JVM sees it (no GC forced).
        jcmd "$PID" GC.heap_info >"$dir/heap-after-populate.txt" 2>&1 || true
        heap=$(awk '/ heap / && /used/ { for (i = 1; i <= NF; i++) if ($i == "used") print $(i+1) }' \
            "$dir/heap-after-populate.txt" | tr -d ',' | head -n1)
    fi
    ls -la "$dir/data" "$dir/data/version-2" >"$dir/data-before-restart.txt" 2>/dev/null || true
    log "$name: $znodes znodes, VmRSS $((rss_pop / 1024)) MiB; SIGTERM"
    stop_server
    local disk
    disk=$(du -sk "$dir/data" | cut -f1)
    ls -la "$dir/data" "$dir/data/version-2" >"$dir/data-after-stop.txt" 2>/dev/null || true

    wait_quiet
    log "$name: restarting"
    local mark
    mark=$(wc -l <"$dir/server.log")
    start_server "$name"
    "$LOADGEN" probe --server "$addr" --path "$last" --since-unix-ns "$START_NS" >"$dir/probe-restart.out"
    local rss_restart hwm_restart
    rss_restart=$(rss_kib "$PID")
    hwm_restart=$(hwm_kib "$PID")
    tail -n1 "$dir/probe-restart.out" >"$dir/probe-restart.json"
    # What the restart spent its time on, from the server's own log.
    {
        echo "$name: process started at $(date -u -d "@${START_NS:0:10}.${START_NS:10:3}" +%T.%3N) UTC, first getData answered $(jq '.ready_ms | round' "$dir/probe-restart.json") ms later"
        tail -n +$((mark + 1)) "$dir/server.log" |
            grep -E 'txns loaded in|Snapshot loaded in|Snapshot taken in|binding to port|opened the store|recovered the data directory|conclave-server serving' |
            cut -c1-220
    } >"$dir/restart-log.txt"
    log "$name: serving $last after $(jq .ready_ms "$dir/probe-restart.json") ms; VmRSS $((rss_restart / 1024)) MiB"
    sleep 5
    local rss_restart_5s
    rss_restart_5s=$(rss_kib "$PID")
    stop_server
    jq -n --arg server "$name" --slurpfile pop "$dir/populate.json" --slurpfile probe "$dir/probe-restart.json" \
        --argjson rss_before "$rss_before" --argjson rss_pop "$rss_pop" --argjson hwm_pop "$hwm_pop" \
        --argjson rss_restart "$rss_restart" --argjson hwm_restart "$hwm_restart" \
        --argjson rss_restart_5s "$rss_restart_5s" --argjson stop_ms "$STOP_MS" \
        --argjson disk_kib "$disk" --arg znodes "$znodes" --arg heap_used "$heap" \
        --arg heap_max "$([[ $name == zookeeper ]] && echo "-Xmx$ZK_HEAP" || echo "")" \
        '{server: $server, populate: $pop[0], znodes: $znodes,
          rss_before_populate_kib: $rss_before, rss_after_populate_kib: $rss_pop,
          hwm_after_populate_kib: $hwm_pop, heap_used_after_populate: $heap_used, heap_max: $heap_max,
          sigterm_to_exit_ms: $stop_ms, data_dir_kib: $disk_kib,
          restart_ready_ms: $probe[0].ready_ms, restart_probe_attempts: $probe[0].attempts,
          rss_after_restart_kib: $rss_restart, hwm_after_restart_kib: $hwm_restart,
          rss_5s_after_restart_kib: $rss_restart_5s}' >"$OUT/$name-restart.json"
    grep -cE ' (WARN|ERROR) ' "$dir/server.log" >"$dir/warnings.count" || true
    log "$name: done ($(cat "$dir/warnings.count") WARN/ERROR lines in $dir/server.log)"
}

{
    echo "# conclave-loadgen bench: $(date -u +%FT%TZ)"
    echo "host: $(nproc) vCPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r); data dirs in $OUT ($(df --output=source "$OUT" | tail -n1))"
    echo "java: $(java -version 2>&1 | head -n1); ZooKeeper: $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo '?')"
    echo "conclave: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- crates || echo ' + local changes')"
    echo "settings: tickTime=$TICK_TIME, defaults otherwise; ZooKeeper heap -Xmx$ZK_HEAP (JVM defaults otherwise)"
} >"$OUT/bench.log"
cat "$OUT/bench.log" >&2

for server in $SERVERS; do
    bench_server "$server"
done

# The markdown report.
{
    cat "$OUT/bench.log" | sed -n '1,5p' | sed 's/^/    /'
    echo
    echo "Writes: setData of $VALUE_SIZE B, ${DURATION} s measured after ${WARMUP} s warm-up per row; latency in ms."
    echo
    echo "| server | concurrency (sessions × in flight) | writes/s | mean | p50 | p90 | p99 | p99.9 | max | log entries per sync | syncs/s | server CPU % | load generator CPU % | other CPU % | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for server in $SERVERS; do
        for level in $LEVELS; do
            jq -r 'def ms: (. | round) / 1000;
                "| \(.server_name) | \(.concurrency) (\(.sessions) × \(.in_flight)) | \(.writes.ops_per_s | round) | \(.writes.mean_us | ms) | \(.writes.p50_us | ms) | \(.writes.p90_us | ms) | \(.writes.p99_us | ms) | \(.writes.p999_us | ms) | \(.writes.max_us | ms) | \(.group_commit.entries_per_sync * 100 | round / 100) | \(.group_commit.syncs_per_s | round) | \(.server_cpu_pct | round) | \(100 * .client_cpu_s / (.window_s + .warmup_s) | round) | \([0, .other_cpu_pct] | max | round) | \(if (.errors | length) == 0 then "none" else (.errors | tostring) end) |"' \
                "$OUT/$server-bench-$level.json"
        done
    done
    echo
    echo "Restart and memory with $NODES znodes (populated after the write runs):"
    echo
    echo "| server | populate creates/s | znodes | VmRSS before populate MiB | VmRSS with $NODES znodes MiB | data dir MiB | SIGTERM→exit ms | restart → first getData ms | VmRSS after restart MiB | VmRSS 5 s later MiB | JVM heap |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for server in $SERVERS; do
        jq -r '"| \(.server) | \(.populate.creates_per_s | round) | \(.znodes) | \(.rss_before_populate_kib / 1024 | round) | \(.rss_after_populate_kib / 1024 | round) | \(.data_dir_kib / 1024 | round) | \(.sigterm_to_exit_ms) | \(.restart_ready_ms | round) | \(.rss_after_restart_kib / 1024 | round) | \(.rss_5s_after_restart_kib / 1024 | round) | \(if .heap_max == "" then "n/a" else "\(.heap_max), \(.heap_used_after_populate) used after populate" end) |"' \
            "$OUT/$server-restart.json"
    done
    echo
    echo "Fresh start to first getData /: $(for s in $SERVERS; do echo -n "$s $(jq '.ready_ms | round' "$OUT/$s-start-fresh.json") ms; "; done)"
    echo
    echo "Restart, from the servers' logs:"
    echo
    echo '```'
    for server in $SERVERS; do cat "$OUT/$server/restart-log.txt"; done
    echo '```'

} >"$OUT/results.md"
cat "$OUT/results.md"
log "results in $OUT/results.md"
