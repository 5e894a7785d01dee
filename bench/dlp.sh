#!/usr/bin/env bash
# DLP redaction throughput: tapwire's redactor against scrubadub (PyPI) on the
# same generated JSON bodies, each pinned to one core. See bench/README.md.
#
#   bench/dlp.sh                 # RUNS=3 SECS=3
#   RUNS=5 SECS=5 bench/dlp.sh
#
# Knobs: RUNS (3), SECS CPU-seconds per measurement (3), CPU core (1),
# PEER_SECS (5), PEER_SAMPLE bytes of each body given to the peer (65536),
# PEER_VENV (/tmp/tapwire-dlp-peer), LOAD_MAX (1.0) and LOAD_WAIT seconds
# (300) to wait for a quieter machine, RESULTS_DIR (bench/results).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SECS=${SECS:-3}
CPU=${CPU:-1}
PEER_SECS=${PEER_SECS:-5}
PEER_SAMPLE=${PEER_SAMPLE:-65536}
PEER_VENV=${PEER_VENV:-/tmp/tapwire-dlp-peer}
LOAD_MAX=${LOAD_MAX:-1.0}
LOAD_WAIT=${LOAD_WAIT:-300}
RESULTS_DIR=${RESULTS_DIR:-bench/results}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}

stamp=$(date -u +%Y-%m-%d-%H%M)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "building the bench (release)…" >&2
cargo build -q --release -p tapwire-dlp --example dlp_bench
bench="$CARGO_TARGET_DIR/release/examples/dlp_bench"

# The peer: scrubadub in its own virtualenv (it pulls scikit-learn, nltk, …).
if [ ! -x "$PEER_VENV/bin/python" ] || ! "$PEER_VENV/bin/python" -c 'import scrubadub' 2>/dev/null; then
  echo "installing scrubadub into $PEER_VENV…" >&2
  python3 -m venv "$PEER_VENV"
  "$PEER_VENV/bin/pip" install -q 'scrubadub==2.0.1'
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN{exit !(l>m)}' && [ "$waited" -lt "$LOAD_WAIT" ]; do
  sleep 10; waited=$((waited + 10))
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

"$bench" --case none --iters 0 --write-corpus "$work/corpus"
for i in $(seq 1 "$RUNS"); do
  echo "round $i/$RUNS: tapwire" >&2
  taskset -c "$CPU" "$bench" --secs "$SECS" | sed "s/^/$i\t/" >> "$work/tapwire.tsv"
  echo "round $i/$RUNS: scrubadub" >&2
  taskset -c "$CPU" "$PEER_VENV/bin/python" bench/dlp_peer.py "$PEER_SECS" "$PEER_SAMPLE" \
    "$work/corpus/personal.json" "$work/corpus/clean.json" | sed "s/^/$i\t/" >> "$work/peer.tsv"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Medians per case (column 5 = MB/s), min–max alongside.
summary() {
  grep -v $'\tcase\t' "$1" | grep -v $'\t#' | grep -v latency | awk -F'\t' '{print $2"\t"$3"\t"$4"\t"$5}' |
    sort -k1,1 -k4,4g | awk -F'\t' '
      { k=$1; v[k]=v[k] " " $4; n[k]++; b[k]=$2; f[k]=$3 }
      END { for (k in v) { split(substr(v[k],2), a, " "); m=a[int((n[k]+1)/2)];
            printf "%s\t%s\t%s\t%s\t%s\t%s\n", k, b[k], f[k], m, a[1], a[n[k]] } }' | sort
}
summary "$work/tapwire.tsv" > "$work/tapwire.sum"
summary "$work/peer.tsv" > "$work/peer.sum"
med() { awk -F'\t' -v k="$2" '$1==k {print $4}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.0f", a/b; else print "n/a" }'; }
tp=$(med "$work/tapwire.sum" json_personal); tc=$(med "$work/tapwire.sum" json_clean)
pp=$(med "$work/peer.sum" scrubadub_json_personal); pc=$(med "$work/peer.sum" scrubadub_json_clean)
lat=$(grep latency_10k_us "$work/tapwire.tsv" | tail -1 | cut -f3-5 | tr '\t' ' ')

mkdir -p "$RESULTS_DIR"
out="$RESULTS_DIR/dlp-$stamp.md"
{
  echo "# DLP bench, $stamp UTC"
  echo
  echo "Command: \`RUNS=$RUNS SECS=$SECS CPU=$CPU PEER_SECS=$PEER_SECS PEER_SAMPLE=$PEER_SAMPLE bench/dlp.sh\`"
  echo
  echo "Machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r)."
  echo "Load average before / after: $load_before / $load_after (waited ${waited}s for ≤ $LOAD_MAX)."
  echo "Tools: $(rustc --version), $("$PEER_VENV/bin/python" --version), scrubadub $("$PEER_VENV/bin/python" -c 'import scrubadub; print(scrubadub.__version__)'), tapwire $(git rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)."
  echo
  echo "MB/s = 10^6 bytes per CPU-second of the measuring thread (utime+stime), pinned with \`taskset -c $CPU\`; medians of $RUNS rounds, min–max in brackets."
  echo
  echo "| case | bytes | findings | median MB/s | min–max |"
  echo "|---|---|---|---|---|"
  awk -F'\t' '{printf "| %s | %s | %s | **%s** | %s–%s |\n", $1, $2, $3, $4, $5, $6}' "$work/tapwire.sum" "$work/peer.sum"
  echo
  echo "Ratio tapwire ÷ scrubadub: personal-data JSON **${tp:-?} ÷ ${pp:-?} ≈ $(ratio "${tp:-0}" "${pp:-0}")×**, clean JSON **${tc:-?} ÷ ${pc:-?} ≈ $(ratio "${tc:-0}" "${pc:-0}")×**."
  echo
  echo "Latency of one ~10 KiB personal-data body (wall clock, 20,000 calls, last round): $lat µs."
  echo
  echo "## Raw rows"
  echo
  echo '```'
  cat "$work/tapwire.tsv" "$work/peer.tsv"
  echo '```'
} > "$out"
cat "$out"
echo "wrote $out" >&2
