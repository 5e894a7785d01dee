#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine.
set -euo pipefail
need_apt=()
for pair in curl:curl nginx:nginx-light h2load:nghttp2-client java:openjdk-17-jdk-headless openssl:openssl python3:python3 iptables:iptables ip:iproute2 npm:npm; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 - <<'PY' || python3 -m pip install -q requests grpcio grpcio-tools "moto[server]" helm-python-sdk azure-storage-blob
import requests, grpc, grpc_tools, moto.server, helm_python, azure.storage.blob  # noqa: F401
PY

# Azurite (Azure Blob's protocol server, from npm), cached where
# tapwire_test_support::cloud looks for it.
npm_prefix=/var/cache/tapwire-npm
[ -x "$npm_prefix/node_modules/.bin/azurite-blob" ] || {
  mkdir -p "$npm_prefix"
  npm install --prefix "$npm_prefix" --no-audit --no-fund --silent azurite@3
}

# A real Kubernetes API server and controller manager for the operator's
# end-to-end tests (built once from Debian's source package, then cached).
for kl in "$(dirname "$0")/../../shared/tools/kube-local" /work/shared/tools/kube-local; do
  if [ -x "$kl" ]; then
    if [ "$(id -u)" = 0 ]; then "$kl" build --prune; else echo "kube-local: build needs root, skipped"; fi
    break
  fi
done
