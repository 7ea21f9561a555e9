# Sourced by bench.sh, ensemble-bench.sh and disk-loss-bench.sh after they set REPO and OUT:
# makes OUT absolute, builds the release binaries, and defines what the
# scripts use to run servers side by side.

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

(cd "$REPO" && cargo build --release --locked -p loadgen -p server)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
LOADGEN=$TARGET/release/conclave-loadgen
CONCLAVE=$TARGET/release/conclave-server
ZK_CLASSPATH=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar

log() { echo "[$(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }

# A loopback port nothing listens on now and never handed out before in
# this run (the kernel may give a just-released port again at once, and a
# server's ports must differ); the ports given are listed in OUT/.ports.
free_port() {
    python3 - "$OUT/.ports" <<'PY'
import socket, sys
path = sys.argv[1]
try:
    given = set(open(path).read().split())
except FileNotFoundError:
    given = set()
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
    s.close()
    if port not in given:
        break
with open(path, "a") as f:
    f.write(port + "\n")
print(port)
PY
}

now_ns() { date +%s%N; }
