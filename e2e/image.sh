#!/usr/bin/env bash
# Builds Conclave's image and loads it into the test cluster.
#
#   e2e/image.sh IMAGE                 # the Dockerfile, with buildah (or docker)
#   E2E_PREBUILT=DIR e2e/image.sh IMAGE
#       packages conclave-server, conclave-operator and conclave-loadgen
#       already built in DIR (e.g. target/release, built on a Debian
#       bookworm host) into the same runtime image, instead of compiling
#       inside the build (a cold build there takes ~18 minutes on 2 cores).
#
# Loading: E2E_LOAD names the command that loads an image into the cluster
# (`kind load docker-image` on kind); by default ../shared/k8s/load-image.sh
# when it exists.
set -euo pipefail
image=${1:?usage: e2e/image.sh IMAGE}
root=$(cd "$(dirname "$0")/.." && pwd)
runtime_image=${RUNTIME_IMAGE:-debian:bookworm-slim}
build_image=${BUILD_IMAGE:-rust:1-bookworm}

if command -v buildah >/dev/null; then
  build() { buildah bud --pull-never --isolation chroot "$@"; }
else
  build() { docker build "$@"; }
fi

if [ -n "${E2E_PREBUILT:-}" ]; then
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  # Stripped as the Dockerfile strips them; the binaries in E2E_PREBUILT
  # keep their debug info for symbolising.
  for bin in conclave-server conclave-operator conclave-loadgen; do
    objcopy --strip-debug --strip-unneeded "$E2E_PREBUILT/$bin" "$context/$bin"
  done
  # The runtime stage of the Dockerfile, over binaries built outside.
  sed -n '/^FROM \${RUNTIME_IMAGE}/,$p' "$root/Dockerfile" \
    | sed 's#^COPY --from=build .*#COPY conclave-server conclave-operator conclave-loadgen /usr/local/bin/#' \
    | { echo "ARG RUNTIME_IMAGE=$runtime_image"; cat; } > "$context/Dockerfile"
  build --build-arg "RUNTIME_IMAGE=$runtime_image" -t "$image" "$context"
else
  build --build-arg "RUNTIME_IMAGE=$runtime_image" --build-arg "BUILD_IMAGE=$build_image" \
    -t "$image" "$root"
fi

if [ -n "${E2E_LOAD:-}" ]; then
  $E2E_LOAD "$image"
elif [ -x "$root/../shared/k8s/load-image.sh" ]; then
  "$root/../shared/k8s/load-image.sh" "$image"
else
  echo "image.sh: built $image; set E2E_LOAD to load it into your cluster" >&2
fi
