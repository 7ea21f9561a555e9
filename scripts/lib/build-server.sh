# Sourced by scripts/serve and scripts/ensemble: installs what building
# conclave-server needs and is missing on a Debian machine (clang and
# libclang-dev, for RocksDB's bindings; with sudo unless run as root), then
# builds the server alone, release. Sets SERVER_BIN to the binary. The first
# build compiles RocksDB's C++: most of half an hour on 2 cores (README).

if ! command -v cargo >/dev/null; then
  echo "$0: no Rust toolchain (cargo) on PATH; install one from https://rustup.rs" >&2
  exit 1
fi

build_packages=(clang libclang-dev)
build_missing=()
for p in "${build_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || build_missing+=("$p")
done
if ((${#build_missing[@]})); then
  echo "$0: installing ${build_missing[*]} (needed to build RocksDB)" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${build_missing[@]}" >/dev/null
fi

cargo build --release --locked -p server --bin conclave-server
SERVER_BIN="${CARGO_TARGET_DIR:-target}/release/conclave-server"
