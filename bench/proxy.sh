#!/usr/bin/env bash
# Capture-proxy benchmark: tapwire (capture on) against nginx as a plain
# reverse proxy, both measured against the app served directly, in one run.
#
# Layout (docs/../shared/reference/performance.md §8 ground rules, 2 cores):
#   core 0: load generators (wrk, oha, h2load)
#   core 1: the app (nginx, 1 KiB body) and the proxy under test
#
# Usage:  bench/proxy.sh            (see bench/README.md for the knobs)
# Env:    RUNS=3 DUR=10 WARMUP=2 RATE=1000 LAT_CONNS=16 TPUT_CONNS=64
#         H2_N= (h2load -n; empty means run for DUR seconds with -D)
#         LAT_RAW=1 (also measure latency without --latency-correction)
#         LOAD_MAX=0.6 LOAD_WAIT=600 TAPWIRE=/work/target/release/tapwire
#         LOADGEN_CPU=0 SUT_CPU=1 KEEP=0 (1 keeps the temp dir)
set -euo pipefail

RUNS=${RUNS:-3}
DUR=${DUR:-10}
WARMUP=${WARMUP:-2}
RATE=${RATE:-1000}
LAT_CONNS=${LAT_CONNS:-16}
TPUT_CONNS=${TPUT_CONNS:-64}
H2_N=${H2_N:-}
LAT_RAW=${LAT_RAW:-1}
LOAD_MAX=${LOAD_MAX:-0.6}
LOAD_WAIT=${LOAD_WAIT:-600}
LOADGEN_CPU=${LOADGEN_CPU:-0}
SUT_CPU=${SUT_CPU:-1}
KEEP=${KEEP:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
TAPWIRE=${TAPWIRE:-${CARGO_TARGET_DIR:-/work/target}/release/tapwire}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
NAME=proxy.sh
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

for t in wrk h2load taskset python3 curl; do
    command -v "$t" >/dev/null || die "missing $t (see bench/README.md)"
done
[[ -x $NGINX ]] || die "missing nginx at $NGINX"
[[ -x $OHA ]] || die "missing oha at $OHA (cargo install oha)"
[[ -x $TAPWIRE ]] || die "missing $TAPWIRE (cargo build --release -p tapwire-cli)"

WORK=$(mktemp -d /tmp/tapwire-bench.XXXXXX)
RAW=$WORK/raw.tsv # metric<TAB>target<TAB>run<TAB>value
: >"$RAW"
PIDS=()

trap cleanup EXIT
trap 'exit 130' INT TERM

hwm_kib() {
    local total=0 p v
    for p in "$1" $(pgrep -P "$1" || true); do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Jiffies the hypervisor gave to someone else, both cores (noise indicator).
steal_all() {
    awk -v a="cpu$LOADGEN_CPU" -v b="cpu$SUT_CPU" '$1 == a || $1 == b {s += $9} END {print s}' /proc/stat
}
LG=(taskset -c "$LOADGEN_CPU")
SUT=(taskset -c "$SUT_CPU")
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- quiet box
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
QUIET=yes
waited=0
while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN {exit !(l >= m)}'; do
    if ((waited >= LOAD_WAIT)); then QUIET=no; break; fi
    ((waited % 60 == 0)) && log "waiting for 1-min load < $LOAD_MAX (now $(load1))"
    sleep 10
    waited=$((waited + 10))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $QUIET == yes ]]; then
    log "load average when measuring starts: $LOAD_BEFORE (waited ${waited}s)"
else
    log "WARNING: load never fell below $LOAD_MAX in ${LOAD_WAIT}s; measuring anyway at $LOAD_BEFORE"
fi

# ---------------------------------------------------------------- servers
APP=$(free_port); APP_H2=$(free_port)
NGX=$(free_port); NGX_H2=$(free_port)
TW=$(free_port); TW_ADMIN=$(free_port)
TW2=$(free_port); TW2_ADMIN=$(free_port)

BODY=$(printf 'x%.0s' $(seq 1024))

# The app: a fixed 1 KiB body, HTTP/1.1 on APP and h2c (prior knowledge) on APP_H2.
mkdir -p "$WORK/app"
nginx_conf "$WORK/app" "
    server {
        listen 127.0.0.1:$APP;
        listen 127.0.0.1:$APP_H2 http2;
        location / { default_type text/plain; return 200 \"$BODY\"; }
    }"
# The peer: nginx as a plain reverse proxy, h1 and h2c in, h1 keep-alive upstream.
mkdir -p "$WORK/peer"
nginx_conf "$WORK/peer" "
    upstream app {
        server 127.0.0.1:$APP;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGX;
        listen 127.0.0.1:$NGX_H2 http2;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

"${SUT[@]}" "$NGINX" -p "$WORK/app" -c "$WORK/app/nginx.conf" 2>"$WORK/app/stderr.log" &
APP_PID=$!; PIDS+=("$APP_PID")
"${SUT[@]}" "$NGINX" -p "$WORK/peer" -c "$WORK/peer/nginx.conf" 2>"$WORK/peer/stderr.log" &
NGX_PID=$!; PIDS+=("$NGX_PID")
# Two tapwire instances: inbound h2 is forwarded as h2, so the h2 one points
# at the app's h2c port. Only one of them carries traffic at a time.
"${SUT[@]}" "$TAPWIRE" proxy --mode reverse --in-port "$TW" --app-port "$APP" \
    --admin-port "$TW_ADMIN" --out "$WORK/capture-h1" 2>"$WORK/tapwire-h1.log" &
TW_PID=$!; PIDS+=("$TW_PID")
"${SUT[@]}" "$TAPWIRE" proxy --mode reverse --in-port "$TW2" --app-port "$APP_H2" \
    --admin-port "$TW2_ADMIN" --out "$WORK/capture-h2" 2>"$WORK/tapwire-h2.log" &
TW2_PID=$!; PIDS+=("$TW2_PID")
for p in "$APP" "$APP_H2" "$NGX" "$NGX_H2" "$TW" "$TW2"; do wait_port "$p"; done
sleep 1

# Correctness gate: every path answers 200 with the same 1024-byte body.
check() { # label, curl args...
    local label=$1 got; shift
    got=$(curl -sS --max-time 5 -o "$WORK/body" -w '%{http_code} %{http_version}' "$@") ||
        die "$label: request failed"
    [[ ${got%% *} == 200 ]] && cmp -s "$WORK/body" <(printf '%s' "$BODY") ||
        die "$label: got '$got', body $(wc -c <"$WORK/body") bytes"
    log "check $label: HTTP/${got##* } 200, 1024-byte body"
}
check direct-h1 "http://127.0.0.1:$APP/"
check tapwire-h1 "http://127.0.0.1:$TW/"
check nginx-h1 "http://127.0.0.1:$NGX/"
check direct-h2 --http2-prior-knowledge "http://127.0.0.1:$APP_H2/"
check tapwire-h2 --http2-prior-knowledge "http://127.0.0.1:$TW2/"
check nginx-h2 --http2-prior-knowledge "http://127.0.0.1:$NGX_H2/"

TW_RSS_IDLE=$(rss_kib "$TW_PID")
NGX_RSS_IDLE=$(rss_kib "$NGX_PID")
rec rss_idle_kib tapwire 0 "$TW_RSS_IDLE"
rec rss_idle_kib nginx 0 "$NGX_RSS_IDLE"
log "idle RSS: tapwire ${TW_RSS_IDLE} KiB, nginx (master+worker) ${NGX_RSS_IDLE} KiB"

declare -A URL=([direct]="http://127.0.0.1:$APP/" [tapwire]="http://127.0.0.1:$TW/" [nginx]="http://127.0.0.1:$NGX/")
declare -A URL2=([direct]="http://127.0.0.1:$APP_H2/" [tapwire]="http://127.0.0.1:$TW2/" [nginx]="http://127.0.0.1:$NGX_H2/")
declare -A PROXY_PID=([tapwire]="$TW_PID" [nginx]="$NGX_PID")

# ---------------------------------------------------------------- measurements
# Reads an oha JSON report into raw.tsv; PREFIX tells the two latency passes apart.
oha_rec() { # file target run prefix
    python3 - "$@" >>"$RAW" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); t, r, pre = sys.argv[2], sys.argv[3], sys.argv[4]
p = d["latencyPercentiles"]; s = d["summary"]
codes = d.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k == "200")
# oha cuts requests still in flight when -z ends; those are not failures.
errs = {k: v for k, v in d.get("errorDistribution", {}).items() if k != "aborted due to deadline"}
bad = sum(v for k, v in codes.items() if k != "200") + sum(errs.values())
for k, v in (("p50_ms", p["p50"] * 1e3), ("p99_ms", p["p99"] * 1e3), ("p999_ms", p["p99.9"] * 1e3),
             ("fixed_rps", s["requestsPerSec"]), ("fixed_ok", ok), ("fixed_err", bad)):
    print(f"{pre}{k}\t{t}\t{r}\t{v}")
EOF
}

fixed_rate() { # target run
    local t=$1 r=$2 out=$WORK/oha-$1-$2.json c0 c1 a0 a1 p reqs
    "${LG[@]}" "$OHA" --no-tui -z "${WARMUP}s" -q "$RATE" -c "$LAT_CONNS" --latency-correction \
        "${URL[$t]}" >/dev/null 2>&1 || true
    p=${PROXY_PID[$t]:-}
    [[ -n $p ]] && c0=$(cpu_ticks "$p")
    a0=$(cpu_ticks "$APP_PID")
    # Open model: latency counts from the intended send time.
    "${LG[@]}" "$OHA" --no-tui --output-format json -z "${DUR}s" -q "$RATE" -c "$LAT_CONNS" \
        --latency-correction "${URL[$t]}" >"$out"
    a1=$(cpu_ticks "$APP_PID")
    oha_rec "$out" "$t" "$r" ""
    reqs=$(awk -v t="$t" -v r="$r" '$1 == "fixed_ok" && $2 == t && $3 == r {print $4}' "$RAW")
    rec app_vcpu_per_krps "$t" "$r" "$(python3 -c "print(($a1-$a0)/$CLK_TCK/$reqs*1000)")"
    if [[ -n $p ]]; then
        c1=$(cpu_ticks "$p")
        rec vcpu_per_krps "$t" "$r" "$(python3 -c "print(($c1-$c0)/$CLK_TCK/$reqs*1000)")"
        rec rss_after_kib "$t" "$r" "$(rss_kib "$p")"
    fi
    # Same rate, latency from the actual send time. oha paces sends with a
    # 1 ms-granularity timer on a shared vCPU, so the corrected tail above
    # also holds the generator's own lateness; this pass shows how much.
    if [[ $LAT_RAW == 1 ]]; then
        "${LG[@]}" "$OHA" --no-tui --output-format json -z "${DUR}s" -q "$RATE" -c "$LAT_CONNS" \
            "${URL[$t]}" >"$out.raw"
        oha_rec "$out.raw" "$t" "$r" raw_
    fi
    log "fixed $RATE/s $t run $r: $(awk -v t="$t" -v r="$r" '$2 == t && $3 == r && $1 ~ /^(raw_)?(p50_ms|p99_ms|p999_ms)$|^(vcpu_per_krps|fixed_rps)$/ {printf "%s=%.4g ", $1, $4}' "$RAW")"
}

throughput() { # target run
    local t=$1 r=$2 out=$WORK/wrk-$1-$2.txt b0 b1 n0 n1
    "${LG[@]}" wrk -t1 -c"$TPUT_CONNS" -d"${WARMUP}s" "${URL[$t]}" >/dev/null
    b0=$(core_busy "$SUT_CPU"); n0=$(core_all "$SUT_CPU")
    "${LG[@]}" wrk -t1 -c"$TPUT_CONNS" -d"${DUR}s" "${URL[$t]}" >"$out"
    b1=$(core_busy "$SUT_CPU"); n1=$(core_all "$SUT_CPU")
    rec rps "$t" "$r" "$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    rec tput_err "$t" "$r" "$(awk '/Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} /Non-2xx/ {n += $NF} END {print n + 0}' "$out")"
    rec sut_core_busy_pct "$t" "$r" "$(python3 -c "print(100*($b1-$b0)/max(1,$n1-$n0))")"
    log "wrk $t run $r: $(awk '/^Requests\/sec:/ {print $2}' "$out") req/s, core $SUT_CPU busy $(python3 -c "print(round(100*($b1-$b0)/max(1,$n1-$n0)))")%"
}

h2() { # target run
    local t=$1 r=$2 out=$WORK/h2load-$1-$2.txt mode
    if [[ -n $H2_N ]]; then mode=(-n "$H2_N"); else mode=(-D "$DUR" --warm-up-time="$WARMUP"); fi
    [[ -n $H2_N ]] && "${LG[@]}" h2load -n "$((H2_N / 5))" -c 10 -m 10 "${URL2[$t]}" >/dev/null
    "${LG[@]}" h2load "${mode[@]}" -c 10 -m 10 "${URL2[$t]}" >"$out"
    rec h2_rps "$t" "$r" "$(awk '/^finished in/ {print $4}' "$out")"
    rec h2_failed "$t" "$r" "$(awk '/^requests:/ {print $10 + $12 + $14}' "$out")"
    log "h2load $t run $r: $(awk '/^finished in/ {print $4}' "$out") req/s; $(grep '^requests:' "$out")"
}

for r in $(seq "$RUNS"); do
    log "round $r/$RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))"
    rec load1 all "$r" "$(load1)"
    s0=$(steal_all); n0=$(($(core_all "$LOADGEN_CPU") + $(core_all "$SUT_CPU")))
    for t in direct tapwire nginx; do fixed_rate "$t" "$r"; done
    for t in direct tapwire nginx; do throughput "$t" "$r"; done
    for t in direct tapwire nginx; do h2 "$t" "$r"; done
    s1=$(steal_all); n1=$(($(core_all "$LOADGEN_CPU") + $(core_all "$SUT_CPU")))
    rec steal_pct all "$r" "$(python3 -c "print(100 * ($s1 - $s0) / max(1, $n1 - $n0))")"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

rec rss_peak_kib tapwire 0 "$(hwm_kib "$TW_PID")"
rec rss_peak_kib nginx 0 "$(hwm_kib "$NGX_PID")"

# ---------------------------------------------------------------- captures
metric() { # port name -> sum over label sets
    curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {print s+0}'
}
for side in h1 h2; do
    if [[ $side == h1 ]]; then port=$TW_ADMIN; pid=$TW_PID; else port=$TW2_ADMIN; pid=$TW2_PID; fi
    rec cap_requests "$side" 0 "$(metric "$port" tapwire_proxy_requests_total)"
    rec cap_dropped "$side" 0 "$(metric "$port" tapwire_proxy_captures_dropped_total)"
    # SIGTERM finishes open requests and flushes the last segment.
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    files=$(find "$WORK/capture-$side" -name '*.jsonl.zst' | wc -l)
    if command -v zstd >/dev/null; then
        lines=$(find "$WORK/capture-$side" -name '*.jsonl.zst' -print0 | xargs -0 -r zstd -dcq | wc -l)
    else
        lines=$("$TAPWIRE" inspect "$WORK/capture-$side" --json | wc -l)
    fi
    rec cap_files "$side" 0 "$files"
    rec cap_lines "$side" 0 "$lines"
    log "captures $side: $files segment files, $lines exchanges; tapwire summary: $(tail -n 3 "$WORK/tapwire-$side.log" | tr '\n' ' ')"
done

# ---------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/proxy-$(date +%Y-%m-%d-%H%M).md
OHA_V=$("$OHA" --version | head -1)
WRK_V=$({ wrk -v 2>&1 || true; } | head -1 | awk '{print $1, $2}')
H2_V=$(h2load --version | head -1)
NGX_V=$("$NGINX" -v 2>&1 | head -1 | sed 's/^nginx version: //')
# The binary may predate the tree (others commit meanwhile): name both.
TW_V="$("$TAPWIRE" --version 2>/dev/null | head -1 | awk '{print $NF}') (binary built $(date -r "$TAPWIRE" '+%Y-%m-%d %H:%M %Z'); tree at run time $(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$HERE/.." diff --quiet HEAD -- crates 2>/dev/null || echo ' with uncommitted changes in crates/'))"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)

# Unquoted heredoc: shell values are spliced into the Python below.
python3 - "$RAW" >"$OUT" <<EOF
import statistics, sys
from collections import defaultdict
raw = defaultdict(list)
by_run = {}
for line in open(sys.argv[1]):
    m, t, r, v = line.rstrip("\n").split("\t")
    try:
        raw[(m, t)].append(float(v))
        by_run[(m, t, r)] = float(v)
    except ValueError:
        pass
def paired(m, t, op, base="direct"):
    # Median over rounds of op(this path, base) measured in the same round:
    # the host's speed drifts between rounds, far less within one.
    v = [op(x, by_run[(m, base, r)]) for (mm, tt, r), x in by_run.items()
         if mm == m and tt == t and (m, base, r) in by_run]
    return statistics.median(v) if v else float("nan")
ratio = lambda a, b: a / b
delta = lambda a, b: a - b
def med(m, t):
    v = raw.get((m, t))
    return statistics.median(v) if v else float("nan")
def span(m, t, fmt):
    v = raw.get((m, t))
    return f" ({min(v):{fmt}}–{max(v):{fmt}})" if v and len(v) > 1 else ""
def f(x, n=3):
    return "–" if x != x else f"{x:.{n}f}"
T = ["direct", "tapwire", "nginx"]
P = ["tapwire", "nginx"]
print("## Capture proxy benchmark — $(date '+%Y-%m-%d %H:%M %Z')")
print()
print("Command: \`RUNS=$RUNS DUR=$DUR WARMUP=$WARMUP RATE=$RATE bench/proxy.sh\`  ")
print("Machine: $(nproc) vCPU, $CPU_MODEL; load generators on core $LOADGEN_CPU, app + proxy on core $SUT_CPU  ")
print("Tools: $WRK_V, $OHA_V, $H2_V, $NGX_V; tapwire $TW_V  ")
print("Load (1/5/15 min): before $LOAD_BEFORE, after $LOAD_AFTER; quiet before start: $QUIET (threshold $LOAD_MAX)  ")
st = raw.get(("steal_pct", "all"), [])
print(f"Hypervisor steal on cores $LOADGEN_CPU+$SUT_CPU per round: {', '.join(f'{x:.1f}%' for x in st)}  ")
print("Medians of $RUNS runs, $DUR s each after a $WARMUP s warm-up; (min–max over runs).")
print()
print("### Summary")
print()
print("Ratios and deltas are paired: computed within each round, where the paths are")
print("measured back to back, then the median over rounds is taken.")
print()
print("| | tapwire (capture on) | nginx (peer) |")
print("|---|---|---|")
print("| HTTP/1.1 max req/s ÷ direct | " + " | ".join(f(paired('rps', t, ratio), 2) for t in P) + " |")
print("| HTTP/1.1 max req/s ÷ nginx's | " + f(paired('rps', 'tapwire', ratio, 'nginx'), 2) + " | 1 |")
print("| h2c max req/s ÷ direct | " + " | ".join(f(paired('h2_rps', t, ratio), 2) for t in P) + " |")
print("| added p50 ms at $RATE req/s (latency-corrected) | " + " | ".join(f(paired('p50_ms', t, delta)) for t in P) + " |")
print("| added p99 ms at $RATE req/s (latency-corrected) | " + " | ".join(f(paired('p99_ms', t, delta)) for t in P) + " |")
if raw.get(("raw_p99_ms", "direct")):
    print("| added p50 / p99 ms at $RATE req/s (uncorrected) | " + " | ".join(
        f"{f(paired('raw_p50_ms', t, delta))} / {f(paired('raw_p99_ms', t, delta))}" for t in P) + " |")
print("| proxy vCPU per 1,000 req/s | " + " | ".join(f(med('vcpu_per_krps', t)) for t in P) + " |")
print("| RSS idle / after $RATE req/s / peak, MiB | " + " | ".join(
    f"{f(med('rss_idle_kib', t) / 1024, 1)} / {f(med('rss_after_kib', t) / 1024, 1)} / {f(med('rss_peak_kib', t) / 1024, 1)}" for t in P) + " |")
print()
print("### HTTP/1.1 max throughput (wrk -t1 -c$TPUT_CONNS -d${DUR}s)")
print()
print("| path | req/s | paired ratio to direct | core $SUT_CPU busy |")
print("|---|---|---|---|")
for t in T:
    print(f"| {t} | {med('rps', t):,.0f}{span('rps', t, ',.0f')} | {f(paired('rps', t, ratio), 2)} | {med('sut_core_busy_pct', t):.0f}% |")
print()
print("### HTTP/1.1 latency at a fixed $RATE req/s, $LAT_CONNS connections (oha -q $RATE), ms")
print()
print("| path | p50 | p99 | p99.9 | added p50 (paired) | added p99 (paired) | uncorrected p50 / p99 / p99.9 | uncorrected added p99 (paired) |")
print("|---|---|---|---|---|---|---|---|")
for t in T:
    proxy = t != "direct"
    rawcols = "–"
    if raw.get(("raw_p99_ms", t)):
        rawcols = f"{f(med('raw_p50_ms', t))} / {f(med('raw_p99_ms', t))} / {f(med('raw_p999_ms', t))}"
    print(f"| {t} | {f(med('p50_ms', t))}{span('p50_ms', t, '.3f')} | {f(med('p99_ms', t))}{span('p99_ms', t, '.3f')} | {f(med('p999_ms', t))} | "
          + (f"{f(paired('p50_ms', t, delta))} | {f(paired('p99_ms', t, delta))}" if proxy else "– | –")
          + f" | {rawcols} | " + (f(paired('raw_p99_ms', t, delta)) if proxy else "–") + " |")
print()
print("### Cost at $RATE req/s")
print()
print("| path | proxy vCPU per 1,000 req/s | app vCPU per 1,000 req/s | proxy RSS idle MiB | after $RATE req/s MiB | peak (VmHWM) MiB |")
print("|---|---|---|---|---|---|")
for t in T:
    proxy = t != "direct"
    print(f"| {t} | " + (f"{f(med('vcpu_per_krps', t))}{span('vcpu_per_krps', t, '.3f')}" if proxy else "–")
          + f" | {f(med('app_vcpu_per_krps', t))} | "
          + (" | ".join(f(med(k, t) / 1024, 1) for k in ("rss_idle_kib", "rss_after_kib", "rss_peak_kib")) if proxy else "– | – | –") + " |")
print()
print("### HTTP/2 (h2c prior knowledge), h2load -c10 -m10")
print()
print("| path | req/s | paired ratio to direct | upstream hop |")
print("|---|---|---|---|")
hop = {"direct": "–", "tapwire": "h2c", "nginx": "HTTP/1.1 keep-alive (nginx 1.22 cannot proxy to h2)"}
for t in T:
    print(f"| {t} | {med('h2_rps', t):,.0f}{span('h2_rps', t, ',.0f')} | {f(paired('h2_rps', t, ratio), 2)} | {hop[t]} |")
print()
print("### Checks")
print()
errs = {t: sum(raw.get(('tput_err', t), [])) + sum(raw.get(('fixed_err', t), [])) + sum(raw.get(('raw_fixed_err', t), []))
        + sum(raw.get(('h2_failed', t), [])) for t in T}
print("- errors or non-200 answers (all runs): " + ", ".join(f"{t} {int(v)}" for t, v in errs.items()))
print("- achieved fixed rate (median req/s): " + ", ".join(f"{t} {med('fixed_rps', t):.1f}" for t in T))
for side in ("h1", "h2"):
    print(f"- captures ({side} instance): {med('cap_files', side):.0f} segment files, {med('cap_lines', side):.0f} exchanges decoded; "
          f"proxy counted {med('cap_requests', side):.0f} requests, {med('cap_dropped', side):.0f} captures dropped")
EOF
cp "$RAW" "${OUT%.md}.tsv"
cat "$OUT"
log "wrote $OUT and the per-run numbers in ${OUT%.md}.tsv"
