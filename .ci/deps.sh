#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine.
set -euo pipefail
need_apt=()
for pair in curl:curl nginx:nginx-light h2load:nghttp2-client java:openjdk-17-jdk-headless openssl:openssl python3:python3 iptables:iptables ip:iproute2; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 - <<'PY' || python3 -m pip install -q requests grpcio grpcio-tools "moto[server]" helm-python-sdk
import requests, grpc, grpc_tools, moto.server, helm_python  # noqa: F401
PY

# A real Kubernetes API server and controller manager for the operator's
# end-to-end tests (built once from Debian's source package, then cached).
for kl in "$(dirname "$0")/../../shared/tools/kube-local" /work/shared/tools/kube-local; do
  if [ -x "$kl" ]; then
    if [ "$(id -u)" = 0 ]; then "$kl" build --prune; else echo "kube-local: build needs root, skipped"; fi
    break
  fi
done
