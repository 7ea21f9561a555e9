# Multi-stage build of conclave-server. Base images are build arguments so the
# same file builds from public images or from local ones (see ../shared/k8s).
ARG BUILD_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY crates ./crates
RUN cargo build --release --locked -p server --bin conclave-server

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 1000 conclave \
 && useradd --system --uid 1000 --gid conclave --home-dir /var/lib/conclave conclave \
 && mkdir -p /var/lib/conclave && chown conclave:conclave /var/lib/conclave
COPY --from=build /src/target/release/conclave-server /usr/local/bin/conclave-server
USER 1000:1000
WORKDIR /var/lib/conclave
EXPOSE 2181 8080
ENTRYPOINT ["/usr/local/bin/conclave-server"]
CMD ["--data-dir", "/var/lib/conclave/data"]
