# syntax=docker/dockerfile:1
#
# One image for every tapwire component: operator, forwarder, sidecar proxy,
# the `tapwire init` iptables init container and the eBPF DaemonSet all run
# the same binary (`tapwire <subcommand>`). One image means one digest to
# pin, and one digest is what a GKE Autopilot WorkloadAllowlist admits.
#
# The runtime is Debian slim rather than distroless or scratch because
# `tapwire init` runs iptables-restore/ip6tables-restore; a second image
# just for the init container would double what users mirror, scan and
# allowlist. The binary is built on the same Debian release, so glibc
# matches; nothing else (no OpenSSL: TLS is rustls) is linked.
#
#   docker build -t tapwire .
#   docker run --rm tapwire --help

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# Use the image's toolchain as it is (rust-toolchain.toml would otherwise
# make rustup fetch the rustfmt and clippy components a build never uses).
ARG RUST_VERSION
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tapwire-cli \
    && install -D -m 0755 target/release/tapwire /out/tapwire

FROM debian:${DEBIAN_RELEASE}-slim
# iptables provides iptables-restore and ip6tables-restore for `tapwire init`
# (nf_tables backend by default; `update-alternatives --set iptables
# /usr/sbin/iptables-legacy` in a derived image for legacy-only nodes).
# ca-certificates: system roots for TLS to upstreams and object stores.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        iptables ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home \
        --shell /usr/sbin/nologin nonroot
COPY --from=build /out/tapwire /usr/local/bin/tapwire
# Non-root by default. Pods choose per container: the sidecar runs as its
# own UID (excluded from the redirect), `tapwire init` as root with
# NET_ADMIN and NET_RAW, nettap privileged.
USER 65532:65532
ENV HOME=/home/nonroot
EXPOSE 4140 4143 4145 4150 4151 9443
ENTRYPOINT ["/usr/local/bin/tapwire"]
CMD ["--help"]

LABEL org.opencontainers.image.title="tapwire" \
      org.opencontainers.image.description="Capture, redact and replay API traffic on Kubernetes" \
      org.opencontainers.image.source="https://github.com/tapwire/tapwire" \
      org.opencontainers.image.licenses="Apache-2.0"
