#!/usr/bin/env bash
# Replay-generator benchmark: `tapwire replay` against wrk (HTTP/1.1) and
# h2load (h2c), in one run, on the same target with the same connections.
#
# Layout (shared/reference/performance.md §8 ground rules, 2 cores):
#   core 0: the load generator under test (tapwire replay, wrk or h2load)
#   core 1: the target, nginx returning a fixed ~1 KiB body: JSON by default
#           (an order with ten items, 1051 bytes), so that tapwire's default
#           assertions take their JSON path; BODY_KIND=text gives the 1 KiB
#           of "x" that bench/proxy.sh serves
#
# The snapshot replayed holds NREQ GETs of "/" recorded through
# `tapwire proxy` from a client that sends only a Host header, which is
# exactly the request wrk and h2load send, so all tools send the same bytes.
#
# Usage:  bench/replay.sh            (see bench/README.md for the knobs)
# Env:    RUNS=5 DUR=10 WARMUP=2 CONNS=64 H2_STREAMS=64 NREQ=1000 BODY_KIND=json
#         LOAD_MAX=0.6 LOAD_WAIT=120 TAPWIRE=/work/target/release/tapwire
#         LOADGEN_CPU=0 SUT_CPU=1 KEEP=0 (1 keeps the temp dir)
set -euo pipefail

NAME=replay.sh
RUNS=${RUNS:-5}
DUR=${DUR:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
H2_STREAMS=${H2_STREAMS:-64}
NREQ=${NREQ:-1000}
BODY_KIND=${BODY_KIND:-json}
LOAD_MAX=${LOAD_MAX:-0.6}
LOAD_WAIT=${LOAD_WAIT:-120}
LOADGEN_CPU=${LOADGEN_CPU:-0}
SUT_CPU=${SUT_CPU:-1}
KEEP=${KEEP:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
TAPWIRE=${TAPWIRE:-${CARGO_TARGET_DIR:-/work/target}/release/tapwire}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

for t in wrk h2load taskset python3 curl; do
    command -v "$t" >/dev/null ||
        die "missing $t: apt-get install wrk nghttp2-client util-linux python3 curl (see bench/README.md)"
done
[[ -x $NGINX ]] || die "missing nginx at $NGINX (apt-get install nginx-light)"

WORK=$(mktemp -d /tmp/tapwire-bench-replay.XXXXXX)
RAW=$WORK/raw.tsv
: >"$RAW"
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM
stage_tapwire "$TAPWIRE" "$HERE/.."
TW=$TAPWIRE_BIN
LG=(taskset -c "$LOADGEN_CPU")
SUT=(taskset -c "$SUT_CPU")

wait_quiet

# ---------------------------------------------------------------- target
APP=$(free_port); APP_H2=$(free_port); REC=$(free_port); REC_ADMIN=$(free_port)
case $BODY_KIND in
json)
    CTYPE=application/json
    BODY=$(python3 -c 'import json
items = [{"id": 1000 + i, "sku": "SKU-%05d" % (i * 37), "name": "item number %d" % i, "qty": i % 4 + 1,
          "price": round(9.99 + i * 1.5, 2), "tags": ["a", "b"]} for i in range(10)]
print(json.dumps({"order": 4711, "status": "shipped", "customer": {"id": 42, "name": "Ada Lovelace", "tier": "gold"},
                  "items": items, "total": 123.45, "currency": "EUR"}, separators=(",", ":")))')
    ;;
text) CTYPE=text/plain; BODY=$(printf 'x%.0s' $(seq 1024)) ;;
*) die "BODY_KIND is json or text" ;;
esac
mkdir -p "$WORK/app"
nginx_conf "$WORK/app" "
    server {
        listen 127.0.0.1:$APP;
        listen 127.0.0.1:$APP_H2 http2;
        http2_max_concurrent_streams $((H2_STREAMS > 128 ? H2_STREAMS : 128));
        location / { default_type $CTYPE; return 200 '$BODY'; }
        location = /nginx_status { stub_status; }
    }"
"${SUT[@]}" "$NGINX" -p "$WORK/app" -c "$WORK/app/nginx.conf" 2>"$WORK/app/stderr.log" &
APP_PID=$!; PIDS+=("$APP_PID")
wait_port "$APP"; wait_port "$APP_H2"

# ---------------------------------------------------------------- snapshot
# Recorded for real: tapwire proxy in front of the target, NREQ GETs of "/".
"$TW" proxy --mode reverse --service bench --in-port "$REC" --app-port "$APP" \
    --admin-port "$REC_ADMIN" --out "$WORK/rec" 2>"$WORK/record.log" &
REC_PID=$!; PIDS+=("$REC_PID")
wait_port "$REC"
seq "$NREQ" | sed "s|.*|/|" >"$WORK/paths"
send_gets "$REC" "$WORK/paths" || die "recording failed"
kill -TERM "$REC_PID"; wait "$REC_PID" 2>/dev/null || true
export TAPWIRE_STORE=$WORK/store
"$TW" snapshot create --from "$WORK/rec" --service bench --name bench >/dev/null 2>"$WORK/snapshot.log" ||
    die "snapshot create failed: $(cat "$WORK/snapshot.log")"
got=$("$TW" snapshot show bench | awk '$1 == "exchanges:" {print $2}')
[[ $got == "$NREQ" ]] || die "snapshot holds $got exchanges, expected $NREQ"
log "snapshot: $NREQ recorded GETs of / ($("$TW" snapshot show bench | awk '$1 == "exchanges:"' | cut -c12-))"

# Correctness gate: one pass over the snapshot passes every assertion, on
# both protocols, and the peers get 200 with the same body.
for proto in h1 h2; do
    if [[ $proto == h1 ]]; then u=http://127.0.0.1:$APP; x=(); else u=http://127.0.0.1:$APP_H2; x=(--http2); fi
    "$TW" replay --snapshot bench --target "$u" "${x[@]}" --vus 4 --no-progress \
        --report-dir "$WORK/gate-$proto" >/dev/null 2>"$WORK/gate-$proto.log" ||
        die "gate: replay ($proto) failed: $(tail -5 "$WORK/gate-$proto.log")"
    python3 - "$WORK/gate-$proto/report.json" "$NREQ" <<'EOF' || die "gate: replay ($proto) report is wrong"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
n = int(sys.argv[2])
assert s["requests"] == 4 * n and s["errors"] == 0 and s["assertions"]["passed"] == 4 * n, s
EOF
    log "check tapwire $proto: $((4 * NREQ)) requests, all assertions passed"
done
curl -sS -o "$WORK/body" "http://127.0.0.1:$APP/" && cmp -s "$WORK/body" <(printf '%s' "$BODY") || die "target h1 body"
curl -sS --http2-prior-knowledge -o "$WORK/body" "http://127.0.0.1:$APP_H2/" &&
    cmp -s "$WORK/body" <(printf '%s' "$BODY") || die "target h2c body"

# ---------------------------------------------------------------- measurements
# Each measured run: generator CPU (getrusage), requests, req/s, target
# core busy %, errors, and the tool's own p50/p99 at saturation.
# Connections the target accepted so far (nginx stub_status; the query itself adds one).
accepts() { curl -sS --max-time 5 "http://127.0.0.1:$APP/nginx_status" | awk 'NR == 3 {print $1}'; }
target_core() { # start|stop label run
    if [[ $1 == start ]]; then
        TB0=$(core_busy "$SUT_CPU"); TN0=$(core_all "$SUT_CPU"); TC0=$(cpu_ticks "$APP_PID"); TA0=$(accepts)
        return
    fi
    local tb=$(($(core_busy "$SUT_CPU") - TB0)) tn=$(($(core_all "$SUT_CPU") - TN0)) tc=$(($(cpu_ticks "$APP_PID") - TC0))
    rec target_busy_pct "$2" "$3" "$(python3 -c "print(100 * $tb / max(1, $tn))")"
    rec target_cpu_pct "$2" "$3" "$(python3 -c "print(100 * $tc / max(1, $tn))")"
    rec conns_opened "$2" "$3" "$(($(accepts) - TA0 - 1))"
}

# tool: wrk | h2load | tw | tw-nobody | tw-h2 | tw-h2-nobody
measure() { # tool run
    local t=$1 r=$2 out=$WORK/$1-$2 dur url args
    for dur in "$WARMUP" "$DUR"; do
        case $t in
        wrk) args=(wrk -t1 -c"$CONNS" -d"${dur}s" --latency "http://127.0.0.1:$APP/") ;;
        h2load) args=(h2load -t1 -c1 -m"$H2_STREAMS" -D "$dur" "http://127.0.0.1:$APP_H2/") ;;
        tw*)
            if [[ $t == tw-h2* ]]; then url=http://127.0.0.1:$APP_H2; else url=http://127.0.0.1:$APP; fi
            args=("$TW" replay --snapshot bench --target "$url" --duration "${dur}s" --no-progress
                --report-dir "$out.report")
            if [[ $t == tw-h2* ]]; then args+=(--http2 --vus "$H2_STREAMS"); else args+=(--vus "$CONNS"); fi
            [[ $t == *nobody ]] && args+=(--no-body-check)
            ;;
        esac
        if [[ $dur == "$WARMUP" ]]; then
            "${LG[@]}" "${args[@]}" >/dev/null 2>&1 || true
            continue
        fi
        target_core start
        timed "$out.out" "$out.cpu" "${LG[@]}" "${args[@]}"
        target_core stop "$t" "$r"
    done
    read -r cpu wall rc <"$out.cpu"
    python3 - "$t" "$r" "$out" "$cpu" "$wall" "$rc" >>"$RAW" <<'EOF'
import json, re, sys
t, r, out, cpu, wall, rc = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
text = open(out + ".out").read()
def ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
if t == "wrk":
    n = int(re.search(r"(\d+) requests in", text).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    err = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    err += int(m.group(1)) if m else 0
    p50 = ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", text).groups())
    p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups())
elif t == "h2load":
    rq = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    n = int(rq.group(3))
    err = int(rq.group(4)) + int(rq.group(5)) + int(rq.group(6))
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
    # h2load prints min/max/mean/sd of request time, no percentiles.
    p50 = p99 = float("nan")
else:
    rep = json.load(open(out + ".report/report.json"))["summary"]
    n = rep["requests"]
    err = rep["errors"] + rep["assertions"]["failed"]
    rps = rep["throughput_rps"]
    p50, p99 = rep["latency_ms"]["p50"], rep["latency_ms"]["p99"]
    if rc != 0:
        err = max(err, 1)
for k, v in (("requests", n), ("rps", rps), ("errors", err), ("cpu_s", cpu), ("wall_s", wall),
             ("cpu_us_per_req", cpu / max(n, 1) * 1e6), ("p50_ms", p50), ("p99_ms", p99)):
    print(f"{k}\t{t}\t{r}\t{v}")
EOF
    log "$t run $r: $(awk -v t="$t" -v r="$r" '$2 == t && $3 == r && $1 ~ /^(rps|cpu_us_per_req|errors|target_cpu_pct|target_busy_pct|conns_opened|p99_ms)$/ {printf "%s=%.4g ", $1, $4}' "$RAW")"
}

H1=(wrk tw tw-nobody)
H2=(h2load tw-h2 tw-h2-nobody)
for r in $(seq "$RUNS"); do
    log "round $r/$RUNS (load $(loadavg))"
    rec load1 all "$r" "$(load1)"
    s0=$(steal_both); n0=$(both_all)
    # Alternate the order so that neither side always runs first.
    if ((r % 2)); then order=("${H1[@]}" "${H2[@]}"); else
        order=(tw-nobody tw wrk tw-h2-nobody tw-h2 h2load)
    fi
    for t in "${order[@]}"; do measure "$t" "$r"; done
    rec steal_pct all "$r" "$(python3 -c "print(100 * ($(steal_both) - $s0) / max(1, $(both_all) - $n0))")"
done
LOAD_AFTER=$(loadavg)

# ---------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/replay-$(date +%Y-%m-%d-%H%M).md
WRK_V=$({ wrk -v 2>&1 || true; } | head -1 | awk '{print $1, $2}')
H2_V=$(h2load --version | head -1)
NGX_V=$("$NGINX" -v 2>&1 | head -1 | sed 's/^nginx version: //')
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)

# Unquoted heredoc: shell values are spliced into the Python below.
python3 - "$RAW" >"$OUT" <<EOF
import statistics, sys
from collections import defaultdict
raw = defaultdict(list)
by_run = {}
for line in open(sys.argv[1]):
    m, t, r, v = line.rstrip("\n").split("\t")
    raw[(m, t)].append(float(v))
    by_run[(m, t, r)] = float(v)
def paired(m, t, base):
    # Median over rounds of this tool / the peer measured in the same round.
    v = [x / by_run[(m, base, r)] for (mm, tt, r), x in by_run.items()
         if mm == m and tt == t and (m, base, r) in by_run and by_run[(m, base, r)]]
    return statistics.median(v) if v else float("nan")
def med(m, t):
    v = [x for x in raw.get((m, t), []) if x == x]
    return statistics.median(v) if v else float("nan")
def span(m, t, fmt):
    v = raw.get((m, t))
    return f" ({min(v):{fmt}}–{max(v):{fmt}})" if v and len(v) > 1 else ""
def f(x, n=2):
    return "–" if x != x else f"{x:.{n}f}"
def mark(x, goal, higher):
    if x != x:
        return ""
    return " ✓" if (x >= goal if higher else x <= goal) else " ✗"
print("## Replay generator benchmark — $(date '+%Y-%m-%d %H:%M %Z')")
print()
print("Command: \`RUNS=$RUNS DUR=$DUR WARMUP=$WARMUP CONNS=$CONNS H2_STREAMS=$H2_STREAMS NREQ=$NREQ BODY_KIND=$BODY_KIND bench/replay.sh\`  ")
print("Machine: $(nproc) vCPU, $CPU_MODEL; load generator on core $LOADGEN_CPU, target (nginx, fixed $CTYPE body of ${#BODY} bytes) on core $SUT_CPU  ")
print("Tools: $WRK_V, $H2_V, $NGX_V; tapwire $TW_V  ")
print("Load (1/5/15 min): before $LOAD_BEFORE, after $LOAD_AFTER; quiet before start: $QUIET (threshold $LOAD_MAX)  ")
print("1-min load per round: " + ", ".join(f"{x:.2f}" for x in raw[("load1", "all")]) + "; hypervisor steal per round: "
      + ", ".join(f"{x:.1f}%" for x in raw[("steal_pct", "all")]) + "  ")
print("Medians of $RUNS rounds, $DUR s each after a $WARMUP s warm-up; (min–max over rounds).")
print()
print("### Summary")
print()
print("Ratios are paired: tapwire ÷ peer within each round, then the median over rounds.")
print("Goal (performance.md L1): throughput ≥ 0.8 × the peer, CPU per request ≤ 1.25 × the peer.")
print()
print("| tapwire replay | ÷ wrk, HTTP/1.1, $CONNS conns | ÷ h2load, h2c, 1 conn × $H2_STREAMS streams |")
print("|---|---|---|")
print("| throughput, default (status + body assertions) | " + f(paired("rps", "tw", "wrk")) + mark(paired("rps", "tw", "wrk"), 0.8, True)
      + " | " + f(paired("rps", "tw-h2", "h2load")) + mark(paired("rps", "tw-h2", "h2load"), 0.8, True) + " |")
print("| CPU per request, default | " + f(paired("cpu_us_per_req", "tw", "wrk")) + mark(paired("cpu_us_per_req", "tw", "wrk"), 1.25, False)
      + " | " + f(paired("cpu_us_per_req", "tw-h2", "h2load")) + mark(paired("cpu_us_per_req", "tw-h2", "h2load"), 1.25, False) + " |")
print("| throughput, \`--no-body-check\` | " + f(paired("rps", "tw-nobody", "wrk")) + mark(paired("rps", "tw-nobody", "wrk"), 0.8, True)
      + " | " + f(paired("rps", "tw-h2-nobody", "h2load")) + mark(paired("rps", "tw-h2-nobody", "h2load"), 0.8, True) + " |")
print("| CPU per request, \`--no-body-check\` | " + f(paired("cpu_us_per_req", "tw-nobody", "wrk")) + mark(paired("cpu_us_per_req", "tw-nobody", "wrk"), 1.25, False)
      + " | " + f(paired("cpu_us_per_req", "tw-h2-nobody", "h2load")) + mark(paired("cpu_us_per_req", "tw-h2-nobody", "h2load"), 1.25, False) + " |")
print()
label = {"wrk": "wrk -t1 -c$CONNS", "tw": "tapwire replay --vus $CONNS",
         "tw-nobody": "tapwire replay --vus $CONNS --no-body-check",
         "h2load": "h2load -t1 -c1 -m$H2_STREAMS", "tw-h2": "tapwire replay --http2 --vus $H2_STREAMS",
         "tw-h2-nobody": "tapwire replay --http2 --vus $H2_STREAMS --no-body-check"}
for title, tools in (("HTTP/1.1", ["wrk", "tw", "tw-nobody"]), ("h2c (prior knowledge)", ["h2load", "tw-h2", "tw-h2-nobody"])):
    print(f"### {title}")
    print()
    print("| generator | req/s | generator CPU µs per request | target: nginx CPU / core busy | connections opened | p50 / p99 ms (tool's own, at saturation) |")
    print("|---|---|---|---|---|---|")
    for t in tools:
        print(f"| \`{label[t]}\` | {med('rps', t):,.0f}{span('rps', t, ',.0f')} | {f(med('cpu_us_per_req', t), 1)}{span('cpu_us_per_req', t, '.1f')} | "
              f"{med('target_cpu_pct', t):.0f}% / {med('target_busy_pct', t):.0f}% | {med('conns_opened', t):.0f} | {f(med('p50_ms', t))} / {f(med('p99_ms', t))} |")
    print()
print("### Checks")
print()
print("- errors, non-2xx answers and failed assertions (all rounds): "
      + ", ".join(f"{t} {int(sum(raw.get(('errors', t), [])))}" for t in label))
print("- CPU is the generator process's user+system time from exec to exit (getrusage), so")
print("  tapwire's also holds loading the snapshot and writing its three reports.")
print("- Target: the share of core $SUT_CPU that nginx used, and how busy the core was in all")
print("  (other processes on a shared box count there). When nginx or the core is near 100%,")
print("  the target, not the generator, set the pace: read the CPU-per-request ratio then.")
print("- Connections opened: accepted by nginx during the measured run (warm-up excluded).")
EOF
cp "$RAW" "${OUT%.md}.tsv"
cat "$OUT"
log "wrote $OUT and the per-run numbers in ${OUT%.md}.tsv"
