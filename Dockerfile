# Multi-stage build of Conclave's image: conclave-server, conclave-operator,
# and conclave-loadgen (a small ZooKeeper-protocol client for benchmarks and
# the end-to-end tests' writers). Base images are build arguments so the same
# file builds from public images or from local ones (see e2e/README.md).
ARG BUILD_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY crates ./crates
RUN cargo build --release --locked \
      -p server --bin conclave-server \
      -p operator --bin conclave-operator \
      -p loadgen --bin conclave-loadgen
# The image carries stripped binaries; their debug info (line tables) goes
# to the `symbols` stage, linked by build id and debuglink, for
# `buildah bud --target symbols` (or `docker build --target symbols`) when a
# core or a profile needs symbolising.
RUN mkdir -p /out /symbols \
 && for bin in conclave-server conclave-operator conclave-loadgen; do \
      objcopy --only-keep-debug target/release/$bin /symbols/$bin.debug \
      && objcopy --strip-debug --strip-unneeded --add-gnu-debuglink=/symbols/$bin.debug \
           target/release/$bin /out/$bin; \
    done

FROM scratch AS symbols
COPY --from=build /symbols/ /

# The runtime's whole filesystem, taken from a Debian: the C and C++
# runtime the binaries link, the shell and the few tools the pods' scripts
# use (the operator's start script and init container: sh, cat, ln, sleep,
# chown, chmod; rm, ls and mkdir for a person with kubectl exec), each with
# the libraries ldd names, and an account for uid 1000. Nothing else: no
# package manager, no other tools.
FROM ${RUNTIME_IMAGE} AS rootfs
RUN set -e; root=/rootfs; \
    mkdir -p $root/bin $root/etc $root/tmp $root/usr/local/bin $root/var/lib/conclave; \
    chmod 1777 $root/tmp; \
    take() { for f in "$@"; do cp -L --parents "$f" $root/; done; }; \
    for tool in sh cat ln sleep chown chmod rm ls mkdir; do \
      bin=$(readlink -f /bin/$tool); take "$bin"; \
      [ -e $root/bin/$tool ] || ln -s "$bin" $root/bin/$tool; \
      take $(ldd "$bin" | awk '/=>/ { print $3 } /^\t\// { print $1 }'); \
    done; \
    cxx=$(readlink -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6); \
    take /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libgcc_s.so.1 \
      $(ldd "$cxx" | awk '/=>/ { print $3 } /^\t\// { print $1 }'); \
    echo 'root:x:0:0:root:/root:/bin/sh' > $root/etc/passwd; \
    echo 'conclave:x:1000:1000:conclave:/var/lib/conclave:/bin/sh' >> $root/etc/passwd; \
    printf 'root:x:0:\nconclave:x:1000:\n' > $root/etc/group; \
    chown 1000:1000 $root/var/lib/conclave

FROM scratch
COPY --from=rootfs /rootfs/ /
COPY --from=build /out/conclave-server /out/conclave-operator /out/conclave-loadgen /usr/local/bin/
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 1000:1000
WORKDIR /var/lib/conclave
EXPOSE 2181 8080
ENTRYPOINT ["/usr/local/bin/conclave-server"]
CMD ["--data-dir", "/var/lib/conclave/data"]
