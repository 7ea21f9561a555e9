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

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 1000 conclave \
 && useradd --system --uid 1000 --gid conclave --home-dir /var/lib/conclave conclave \
 && mkdir -p /var/lib/conclave && chown conclave:conclave /var/lib/conclave
COPY --from=build /src/target/release/conclave-server /src/target/release/conclave-operator /src/target/release/conclave-loadgen /usr/local/bin/
USER 1000:1000
WORKDIR /var/lib/conclave
EXPOSE 2181 8080
ENTRYPOINT ["/usr/local/bin/conclave-server"]
CMD ["--data-dir", "/var/lib/conclave/data"]
