#!/usr/bin/env bash
# A member that lost its disk, on an Apache ZooKeeper 3.8 ensemble (Debian's,
# QuorumPeerMain) and on a Conclave ensemble (release build), one after the
# other on this machine, same procedure, same client (conclave-loadgen):
#
#   1. start three servers on loopback; wait until one leads;
#   2. populate ZNODES znodes of VALUE_SIZE bytes under /pop;
#   3. ROUNDS times: kill -9 a follower, empty its data directory (myid
#      kept: a Kubernetes volume lost, the pod back with its ordinal), write
#      once more, start it again; time from the start to the first getData
#      of /pop that server answers (it serves again, with the data), and to
#      the moment its znode count (mntr) is the leader's: it holds the whole
#      tree. Clients of the two other servers (4 sessions, half reads, half
#      setData of VALUE_SIZE bytes) are measured for LOAD_SECONDS before the
#      kill and for LOAD_SECONDS from the start: their p99 without and
#      during the catch-up;
#   4. with JOIN=1 (the default): start a fourth server with an empty data
#      directory and a zoo.cfg listing the three members and itself, as
#      ZooKeeper documents adding a server, and add it with `reconfig -add`
#      sent to the leader at once; time from its start to the reconfig's
#      answer, to its first getData of /pop and to holding the leader's
#      znode count, with the other servers' clients measured as in 3. The
#      servers run with reconfigEnabled=true and skipACL=yes (ZooKeeper
#      lets only a superuser reconfig otherwise).
#
# Usage: crates/loadgen/disk-loss-bench.sh [OUTDIR]
# Environment: ZNODES (100000), VALUE_SIZE (100), ROUNDS (3), LOAD_SECONDS (10),
# TICK_TIME (2000), SYNC_LIMIT (5), INIT_LIMIT (10), ZK_HEAP (1g),
# SERVERS ("zookeeper conclave"), JOIN (1), ZK_EXTRA_CFG (zoo.cfg lines for
# ZooKeeper only, e.g. snapCount=2000000 so that 5,000,000 znodes fit the
# disk).
# Results: OUTDIR/results.md and OUTDIR/*.jsonl; logs stay in OUTDIR.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
ZNODES=${ZNODES:-100000}
VALUE_SIZE=${VALUE_SIZE:-100}
ROUNDS=${ROUNDS:-3}
LOAD_SECONDS=${LOAD_SECONDS:-10}
TICK_TIME=${TICK_TIME:-2000}
SYNC_LIMIT=${SYNC_LIMIT:-5}
INIT_LIMIT=${INIT_LIMIT:-10}
ZK_HEAP=${ZK_HEAP:-1g}
SERVERS=${SERVERS:-"zookeeper conclave"}
JOIN=${JOIN:-1}
if [[ $JOIN == 1 ]]; then
    EXTRA_CFG=$'reconfigEnabled=true\nskipACL=yes'
fi

OUT=${1:-$(mktemp -d /tmp/conclave-disk-loss-bench.XXXXXX)}
# shellcheck source=crates/loadgen/bench-common.sh
. "$REPO/crates/loadgen/bench-common.sh"
# shellcheck source=crates/loadgen/ensemble-common.sh
. "$REPO/crates/loadgen/ensemble-common.sh"

# Peak and current resident memory of a process, MiB.
hwm_mib() { awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$1/status"; }
rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$1/status"; }

znode_count() { # port -> zk_znode_count, empty if the server does not answer
    { "$LOADGEN" mntr --server "127.0.0.1:$1" 2>/dev/null || true; } | awk '$1 == "zk_znode_count" { print $2 }'
}

# Waits up to $3 seconds until server $2 holds server $1's znode count;
# prints that count, or says what each holds and fails.
await_whole_tree() { # leader server seconds
    local deadline=$((SECONDS + $3)) want got
    want=$(znode_count "${CLIENT_PORTS[$1]}")
    got=$(znode_count "${CLIENT_PORTS[$2]}")
    while [[ $got != "$want" ]] && ((SECONDS < deadline)); do
        sleep 0.05
        want=$(znode_count "${CLIENT_PORTS[$1]}")
        got=$(znode_count "${CLIENT_PORTS[$2]}")
    done
    if [[ $got != "$want" ]]; then
        log "server $2 does not hold the whole tree: $got znodes, the leader $want"
        return 1
    fi
    echo "$got"
}

# Waits (up to 10 minutes) until every member holds the leader's znode
# count: after a fast populate a follower may still be catching up (at
# 5,000,000 znodes one fell too far behind for the log and took an image),
# and the measurements must not start while it does.
await_settled() { # leader
    local deadline=$((SECONDS + 600)) id want settled
    while ((SECONDS < deadline)); do
        want=$(znode_count "${CLIENT_PORTS[$1]}") settled=1
        for id in 1 2 3; do
            [[ -n $want && $(znode_count "${CLIENT_PORTS[$id]}") == "$want" ]] || settled=0
        done
        ((settled)) && return 0
        sleep 0.5
    done
    log "the members did not settle on one znode count in 10 minutes"
    return 1
}

# Clients of the servers in $1 (comma-separated host:port) for LOAD_SECONDS
# after $2 s of warm-up: 4 sessions, half reads, half setData; report in $3
# (with each second's figures in its "slices").
client_load() {
    "$LOADGEN" bench --server "$1" --sessions 4 --in-flight 1 --read-ratio 0.5 \
        --value-size "$VALUE_SIZE" --duration "$LOAD_SECONDS" --warmup "$2" --slice-s 1 \
        --json "$3" >/dev/null
}

bench_disk_loss() {
    local name=$1
    start_ensemble "$name"
    local leader connect
    leader=$(await_leader)
    connect=$(connect_string)
    log "$name: ensemble serving on $connect, leader server $leader"
    "$LOADGEN" populate --server "127.0.0.1:${CLIENT_PORTS[$leader]}" --count "$ZNODES" \
        --value-size "$VALUE_SIZE" --root /pop >"$OUT/$name/populate.out"
    await_settled "$leader"
    : >"$OUT/$name-disk-loss.jsonl"
    for round in $(seq 1 "$ROUNDS"); do
        leader=$(await_leader)
        local victim=$(((leader % 3) + 1)) dir=$OUT/$name/server$(((leader % 3) + 1))
        local third=$(((victim % 3) + 1))
        local others=127.0.0.1:${CLIENT_PORTS[$leader]},127.0.0.1:${CLIENT_PORTS[$third]}
        client_load "$others" 1 "$OUT/$name/round-$round-without.json"
        kill -9 "${PIDS[$victim]}"
        wait "${PIDS[$victim]}" 2>/dev/null || true
        find "$dir/data" -mindepth 1 -maxdepth 1 ! -name myid -exec rm -rf {} +
        # A few writes while it is gone: the round's data differs.
        "$LOADGEN" probe --write --path / --server "127.0.0.1:${CLIENT_PORTS[$leader]}" \
            --timeout 60 >/dev/null
        local started_ns
        started_ns=$(now_ns)
        start_member "$name" "$victim"
        client_load "$others" 0 "$OUT/$name/round-$round-during.json" &
        local load_pid=$!
        "$LOADGEN" probe --path /pop --server "127.0.0.1:${CLIENT_PORTS[$victim]}" \
            --since-unix-ns "$started_ns" --attempt-timeout-ms 1000 --timeout 300 \
            >"$OUT/$name/round-$round.out"
        local ms whole_ms got held=0
        ms=$(tail -n1 "$OUT/$name/round-$round.out" | jq '.ready_ms | round')
        got=$(await_whole_tree "$leader" "$victim" 120) || held=$?
        whole_ms=$((($(now_ns) - started_ns) / 1000000))
        wait "$load_pid"
        ((held == 0)) || exit 1
        local hwm rss leader_rss
        hwm=$(hwm_mib "${PIDS[$victim]}") rss=$(rss_mib "${PIDS[$victim]}") leader_rss=$(rss_mib "${PIDS[$leader]}")
        jq -nc --arg round "$round" --arg victim "$victim" --arg ms "$ms" --arg whole "$whole_ms" --arg n "$got" \
            --arg hwm "$hwm" --arg rss "$rss" --arg leader_rss "$leader_rss" \
            --slurpfile without "$OUT/$name/round-$round-without.json" \
            --slurpfile during "$OUT/$name/round-$round-during.json" \
            '{round: ($round | tonumber), server: ($victim | tonumber), serving_ms: ($ms | tonumber),
              whole_tree_ms: ($whole | tonumber), znodes: ($n | tonumber),
              caught_up_peak_rss_mib: ($hwm | tonumber), caught_up_rss_mib: ($rss | tonumber),
              leader_rss_mib: ($leader_rss | tonumber),
              write_p99_ms_without: ($without[0].writes.p99_us / 1000),
              write_p99_ms_during: ($during[0].writes.p99_us / 1000),
              read_p99_ms_without: ($without[0].reads.p99_us / 1000),
              read_p99_ms_during: ($during[0].reads.p99_us / 1000),
              errors_during: ($during[0].errors)}' >>"$OUT/$name-disk-loss.jsonl"
        log "$name: round $round: server $victim serves ${ms} ms after its start, holds all $got znodes after ${whole_ms} ms"
        await_leader >/dev/null
    done
    [[ $JOIN == 1 ]] && join_new_member "$name"
    stop_ensemble
    # The next server's ensemble gets the disk: ZooKeeper's data
    # directories alone take tens of GB at millions of znodes (a snapshot
    # every snapCount writes, never purged by default). The logs stay.
    rm -rf "${OUT:?}/$name"/server*/data
}

# Step 4: a new, empty server 4 added with reconfig while clients run.
join_new_member() { # name
    local name=$1 leader third
    leader=$(await_leader)
    third=$(((leader % 3) + 1))
    local others=127.0.0.1:${CLIENT_PORTS[$leader]},127.0.0.1:${CLIENT_PORTS[$third]}
    CLIENT_PORTS[4]=$(free_port)
    local line="server.4=127.0.0.1:$(free_port):$(free_port):participant;127.0.0.1:${CLIENT_PORTS[4]}"
    write_member_config "$name" 4 "$SERVER_LINES$line"
    client_load "$others" 1 "$OUT/$name/join-without.json"
    local started_ns
    started_ns=$(now_ns)
    start_member "$name" 4
    client_load "$others" 0 "$OUT/$name/join-during.json" &
    local load_pid=$!
    "$LOADGEN" reconfig --server "127.0.0.1:${CLIENT_PORTS[$leader]}" --add "$line" --timeout 600 \
        >"$OUT/$name/join-reconfig.json"
    local reconfig_ms=$((($(now_ns) - started_ns) / 1000000))
    "$LOADGEN" probe --path /pop --server "127.0.0.1:${CLIENT_PORTS[4]}" \
        --since-unix-ns "$started_ns" --attempt-timeout-ms 1000 --timeout 300 \
        >"$OUT/$name/join-probe.out"
    local ms whole_ms got held=0
    ms=$(tail -n1 "$OUT/$name/join-probe.out" | jq '.ready_ms | round')
    got=$(await_whole_tree "$leader" 4 300) || held=$?
    whole_ms=$((($(now_ns) - started_ns) / 1000000))
    wait "$load_pid"
    ((held == 0)) || exit 1
    local hwm rss rss_later
    hwm=$(hwm_mib "${PIDS[4]}") rss=$(rss_mib "${PIDS[4]}")
    # Once its store has settled (RocksDB flushes the install's memtable
    # in the background).
    sleep 30
    rss_later=$(rss_mib "${PIDS[4]}")
    jq -nc --arg ms "$ms" --arg whole "$whole_ms" --arg reconfig "$reconfig_ms" --arg n "$got" \
        --arg hwm "$hwm" --arg rss "$rss" --arg rss_later "$rss_later" \
        --slurpfile without "$OUT/$name/join-without.json" \
        --slurpfile during "$OUT/$name/join-during.json" \
        '{reconfig_ms: ($reconfig | tonumber), serving_ms: ($ms | tonumber),
          whole_tree_ms: ($whole | tonumber), znodes: ($n | tonumber),
          caught_up_peak_rss_mib: ($hwm | tonumber), caught_up_rss_mib: ($rss | tonumber),
          rss_30s_later_mib: ($rss_later | tonumber),
          write_p99_ms_without: ($without[0].writes.p99_us / 1000),
          write_p99_ms_during: ($during[0].writes.p99_us / 1000),
          read_p99_ms_without: ($without[0].reads.p99_us / 1000),
          read_p99_ms_during: ($during[0].reads.p99_us / 1000),
          errors_during: ($during[0].errors)}' >"$OUT/$name-join.json"
    log "$name: new server 4: reconfig answered ${reconfig_ms} ms after its start, serves after ${ms} ms, holds all $got znodes after ${whole_ms} ms"
}

{
    echo "# disk-loss benchmark: $(date -u +%FT%TZ)"
    echo "host: $(nproc) vCPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r); all servers and the client on this one host"
    echo "java: $(java -version 2>&1 | head -n1); ZooKeeper: $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo '?')"
    echo "conclave: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- crates || echo ' + local changes')"
    echo "settings: tickTime=$TICK_TIME initLimit=$INIT_LIMIT syncLimit=$SYNC_LIMIT${EXTRA_CFG:+ ${EXTRA_CFG//$'\n'/ }}, defaults otherwise; ZooKeeper heap -Xmx$ZK_HEAP${ZK_EXTRA_CFG:+, ZooKeeper only: ${ZK_EXTRA_CFG//$'\n'/ }}"
} >"$OUT/bench.log"
cat "$OUT/bench.log" >&2

for server in $SERVERS; do
    bench_disk_loss "$server"
done

{
    sed -n '1,5p' "$OUT/bench.log" | sed 's/^/    /'
    echo
    echo "A follower's data directory emptied (myid kept) under a tree of $ZNODES znodes of $VALUE_SIZE B, $ROUNDS rounds each: ms from its start to its first answer to getData /pop, and to holding the leader's znode count:"
    echo
    echo "| server | rounds | serving: min | median | max | whole tree: min | median | max |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for server in $SERVERS; do
        jq -rs --arg s "$server" '([.[].serving_ms] | sort) as $v | ([.[].whole_tree_ms] | sort) as $w |
            "| \($s) | \($v | length) | \($v[0]) | \($v[(($v | length) / 2 | floor)]) | \($v[-1]) | \($w[0]) | \($w[(($w | length) / 2 | floor)]) | \($w[-1]) |"' \
            "$OUT/$server-disk-loss.jsonl"
    done
    echo
    echo "Clients of the two other servers (4 sessions, half getData, half setData of $VALUE_SIZE B): p99 in ms over $LOAD_SECONDS s before the kill and over $LOAD_SECONDS s from the start, median of the rounds:"
    echo
    echo "| server | write p99 without | during | read p99 without | during | errors during |"
    echo "|---|---:|---:|---:|---:|---|"
    for server in $SERVERS; do
        jq -rs --arg s "$server" 'def med(f): ([.[] | f] | sort) as $v | if $v == [] then "-" else ($v[(($v | length) / 2 | floor)] * 100 | round) / 100 end;
            "| \($s) | \(med(.write_p99_ms_without)) | \(med(.write_p99_ms_during)) | \(med(.read_p99_ms_without)) | \(med(.read_p99_ms_during)) | \([.[].errors_during | to_entries[] | "\(.key) \(.value)"] | join(", ")) |"' \
            "$OUT/$server-disk-loss.jsonl"
    done
    echo
    echo "Resident memory (MiB) of the caught-up server once it holds the whole tree, its peak on the way (the transfer and install included), and the leader's, median of the rounds:"
    echo
    echo "| server | caught-up server: peak | after | leader |"
    echo "|---|---:|---:|---:|"
    for server in $SERVERS; do
        jq -rs --arg s "$server" 'def med(f): ([.[] | f] | sort) as $v | if $v == [] then "-" else $v[(($v | length) / 2 | floor)] end;
            "| \($s) | \(med(.caught_up_peak_rss_mib)) | \(med(.caught_up_rss_mib)) | \(med(.leader_rss_mib)) |"' \
            "$OUT/$server-disk-loss.jsonl"
    done
    if [[ $JOIN == 1 ]]; then
        echo
        echo "A new, empty fourth server added with reconfig -add (sent to the leader at its start): ms from its start to the reconfig's answer, to its first getData /pop, to holding the leader's znode count; p99 in ms of the other servers' clients as above:"
        echo
        echo "| server | reconfig answered | serving | whole tree | write p99 without | during | read p99 without | during | errors during | new server's peak RSS MiB |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
        for server in $SERVERS; do
            jq -r --arg s "$server" 'def r2(x): (x * 100 | round) / 100;
                "| \($s) | \(.reconfig_ms) | \(.serving_ms) | \(.whole_tree_ms) | \(r2(.write_p99_ms_without)) | \(r2(.write_p99_ms_during)) | \(r2(.read_p99_ms_without)) | \(r2(.read_p99_ms_during)) | \([.errors_during | to_entries[] | "\(.key) \(.value)"] | join(", ")) | \(.caught_up_peak_rss_mib) |"' \
                "$OUT/$server-join.json"
        done
    fi
} >"$OUT/results.md"
cat "$OUT/results.md"
