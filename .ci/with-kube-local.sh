#!/usr/bin/env bash
# Runs a command with KUBECONFIG pointing at a real Kubernetes API server
# (shared/tools/kube-local), for the operator's end-to-end tests.
#
# - KUBECONFIG already set: runs the command as it is.
# - kube-local found and built: starts it (unless it is running), runs the
#   command, and stops the cluster afterwards if this script started it.
# - Otherwise: runs the command anyway; the kube tests then skip with a
#   reason, or fail when CI is set.
set -uo pipefail
if [ -n "${KUBECONFIG:-}" ]; then exec "$@"; fi
here=$(cd "$(dirname "$0")/.." && pwd)
tool=${KUBE_LOCAL:-}
if [ -z "$tool" ]; then
  for c in "$here/../shared/tools/kube-local" /work/shared/tools/kube-local; do
    if [ -x "$c" ]; then tool=$c; break; fi
  done
fi
# Read the status whole: with pipefail, `grep -q` closing the pipe early
# would make a built cluster look missing.
status_text=$([ -n "$tool" ] && "$tool" status 2>/dev/null)
if [ -z "$tool" ] || ! grep -q '^built: *kube-apiserver' <<<"$status_text"; then
  echo "with-kube-local: no built kube-local (run .ci/deps.sh as root); kube tests will skip or fail" >&2
  exec "$@"
fi
started=false
if ! "$tool" status >/dev/null 2>&1; then
  env_lines=$("$tool" start) || { echo "with-kube-local: kube-local did not start" >&2; exit 1; }
  started=true
else
  env_lines=$("$tool" env)
fi
eval "$env_lines"
export KUBECONFIG
"$@"
rc=$?
if $started; then "$tool" stop --wipe >/dev/null 2>&1 || true; fi
exit $rc
