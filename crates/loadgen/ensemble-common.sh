# Sourced by ensemble-bench.sh and disk-loss-bench.sh after bench-common.sh:
# three servers of one implementation on loopback (`zookeeper`: Debian's
# QuorumPeerMain; `conclave`: the release build), with the settings the
# caller set (TICK_TIME, INIT_LIMIT, SYNC_LIMIT, ZK_HEAP, and EXTRA_CFG: more
# zoo.cfg lines, the same for every server).

srvr_mode() { # port -> Mode or empty
    python3 - "$1" <<'EOF'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(b"srvr"); data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("Mode: "): print(line[6:])
except Exception:
    pass
EOF
}

declare -A PIDS CLIENT_PORTS

start_member() { # name id
    local name=$1 id=$2 dir=$OUT/$1/server$2
    case $name in
        zookeeper)
            java "-Xmx$ZK_HEAP" -cp "$ZK_CLASSPATH" "-Dzookeeper.log.dir=$dir" \
                org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >>"$dir/server.log" 2>&1 &
            ;;
        conclave)
            NO_COLOR=1 "$CONCLAVE" --config "$dir/zoo.cfg" >>"$dir/server.log" 2>&1 &
            ;;
    esac
    PIDS[$id]=$!
}

# Waits until every running member answers srvr with a Mode and one leads;
# prints the leader's id.
await_leader() {
    local deadline=$((SECONDS + 120)) id leader modes
    while ((SECONDS < deadline)); do
        leader="" modes=""
        for id in 1 2 3; do
            local m
            m=$(srvr_mode "${CLIENT_PORTS[$id]}")
            modes+="$id:${m:-none} "
            [[ $m == leader ]] && leader=$id
            [[ -z $m ]] && leader="" && break
        done
        if [[ -n $leader ]]; then
            echo "$leader"
            return
        fi
        sleep 0.1
    done
    log "no leader after 120 s: $modes"
    return 1
}

# The three members' server lines (set by start_ensemble).
SERVER_LINES=""

# Writes OUT/<name>/server<id>/zoo.cfg (a fresh data directory with myid)
# listing the server lines given.
write_member_config() { # name id server-lines
    local dir=$OUT/$1/server$2
    mkdir -p "$dir/data"
    echo "$2" >"$dir/data/myid"
    cat >"$dir/zoo.cfg" <<EOF
tickTime=$TICK_TIME
initLimit=$INIT_LIMIT
syncLimit=$SYNC_LIMIT
dataDir=$dir/data
clientPort=${CLIENT_PORTS[$2]}
admin.enableServer=false
4lw.commands.whitelist=mntr,srvr,ruok
${EXTRA_CFG:-}
$([[ $1 == zookeeper ]] && echo "${ZK_EXTRA_CFG:-}")
$3
EOF
}

# Writes three zoo.cfg files under OUT/<name>/server<id> (fresh data
# directories with myid) and starts the three servers.
start_ensemble() { # name
    local name=$1
    SERVER_LINES=""
    rm -rf "${OUT:?}/$name"
    for id in 1 2 3; do
        CLIENT_PORTS[$id]=$(free_port)
        SERVER_LINES+="server.$id=127.0.0.1:$(free_port):$(free_port)"$'\n'
    done
    for id in 1 2 3; do
        write_member_config "$name" "$id" "$SERVER_LINES"
        start_member "$name" "$id"
    done
}

# The client connection string of the running ensemble.
connect_string() {
    local connect="" id
    for id in 1 2 3; do
        connect+="${connect:+,}127.0.0.1:${CLIENT_PORTS[$id]}"
    done
    echo "$connect"
}

stop_ensemble() {
    local id
    for id in "${!PIDS[@]}"; do
        kill -TERM "${PIDS[$id]}" 2>/dev/null || true
        wait "${PIDS[$id]}" 2>/dev/null || true
    done
    PIDS=()
}

# A script that stops on an error leaves no server running behind it.
trap 'stop_ensemble' EXIT
