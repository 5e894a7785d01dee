#!/usr/bin/env bash
# Forwarder ingest benchmark: `tapwire forwarder` (DLP on with and without
# personal data, and --no-dlp) against nginx receiving the same POSTs and
# discarding them, in one run. The figure of merit is ingest per core of
# forwarder CPU: exchanges/s and uncompressed MB/s per CPU-second.
#
# Layout (shared/reference/performance.md §8 ground rules, 2 cores):
#   core 0: wrk (one thread, CONNS connections, bench/forwarder.lua)
#   core 1: the receivers (all started up front, measured one at a time)
#
# The data: bench/forwarder_batches.py writes two batches of NEXCH JSON API
# exchanges (1.4–5.7 KB of JSON bodies each), one full of personal data and one with
# none, compressed with `zstd -3` as the proxies' uplink sends them.
#
# Usage:  bench/forwarder.sh          (see bench/README.md for the knobs)
# Env:    RUNS=5 DUR=10 WARMUP=3 CONNS=4 NEXCH=1000 MIN_BATCHES=10 MAX_DUR=30
#         LOAD_MAX=0.6 LOAD_WAIT=60 OTHERS_WAIT=60 TAPWIRE=/work/target/release/tapwire
#         LOADGEN_CPU=0 SUT_CPU=1 KEEP=0 (1 keeps the temp dir)
set -euo pipefail

NAME=forwarder.sh
RUNS=${RUNS:-5}
DUR=${DUR:-10}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-4}
NEXCH=${NEXCH:-1000}
MIN_BATCHES=${MIN_BATCHES:-10}
MAX_DUR=${MAX_DUR:-$((3 * DUR))}
OTHERS_WAIT=${OTHERS_WAIT:-60}
LOAD_MAX=${LOAD_MAX:-0.6}
LOAD_WAIT=${LOAD_WAIT:-60}
LOADGEN_CPU=${LOADGEN_CPU:-0}
SUT_CPU=${SUT_CPU:-1}
KEEP=${KEEP:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
TAPWIRE=${TAPWIRE:-${CARGO_TARGET_DIR:-/work/target}/release/tapwire}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

for t in wrk taskset python3 curl zstd openssl; do
    command -v "$t" >/dev/null ||
        die "missing $t: apt-get install wrk util-linux python3 curl zstd openssl (see bench/README.md)"
done
[[ -x $NGINX ]] || die "missing nginx at $NGINX (apt-get install nginx-light)"

# A log or telemetry forwarder as a second peer (Vector, Fluent Bit,
# Fluentd) would be the like-for-like comparison, but none is packaged in
# Debian 12, PyPI or npm, the registries this box reaches; the report says so.
REAL_PEER_NOTE="no log forwarder peer: Vector, Fluent Bit and Fluentd are not packaged in Debian 12, PyPI or npm"

WORK=$(mktemp -d /tmp/tapwire-bench-forwarder.XXXXXX)
RAW=$WORK/raw.tsv
: >"$RAW"
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM
stage_tapwire "$TAPWIRE" "$HERE/.."
TW=$TAPWIRE_BIN
# The shared target dir is rebuilt from a moving tree: name the exact binary.
TW_V="$TW_V, sha256 $(sha256sum "$TW" | cut -c1-12)"
"$TW" forwarder --help >/dev/null 2>&1 || die "$TAPWIRE has no forwarder subcommand (rebuild: cargo build --release -p tapwire-cli)"
LG=(taskset -c "$LOADGEN_CPU")
SUT=(taskset -c "$SUT_CPU")
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- batches
python3 "$HERE/forwarder_batches.py" "$WORK/batches" --exchanges "$NEXCH"
declare -A RAW_BYTES ZST_BYTES
for v in pii clean; do
    zstd -q -3 "$WORK/batches/$v.jsonl" -o "$WORK/batches/$v.jsonl.zst"
    RAW_BYTES[$v]=$(stat -c %s "$WORK/batches/$v.jsonl")
    ZST_BYTES[$v]=$(stat -c %s "$WORK/batches/$v.jsonl.zst")
    log "batch $v: $NEXCH exchanges, ${RAW_BYTES[$v]} bytes of JSON Lines, ${ZST_BYTES[$v]} bytes compressed"
done

# Other benchmarks on the same two cores spoil both runs: wait for them
# (up to OTHERS_WAIT s), then go on and name them in the report.
others() { pgrep -af 'bench/[a-z_]+\.sh' | grep -o 'bench/[a-z_]*\.sh' | grep -v '^bench/forwarder\.sh$' | sort -u | tr '\n' ' ' || true; }
waited=0
while [[ -n $(others) ]] && ((waited < OTHERS_WAIT)); do
    ((waited % 60 == 0)) && log "waiting for other benchmarks to finish: $(others)"
    sleep 10; waited=$((waited + 10))
done
OTHERS_AT_START=$(others)
[[ -n $OTHERS_AT_START ]] && log "WARNING: measuring while other benchmarks run: $OTHERS_AT_START"
declare -A OTHERS_SEEN=()

wait_quiet

# ---------------------------------------------------------------- receivers
KEY=$(openssl rand -hex 16)
export TAPWIRE_DLP_KEY
TAPWIRE_DLP_KEY=$(openssl rand -hex 32)
BATCH_ID=019aa190-9b00-7000-8000-00000000b001
TW_DLP=$(free_port); TW_DLP_ADMIN=$(free_port)
TW_OFF=$(free_port); TW_OFF_ADMIN=$(free_port)
NGX=$(free_port); NGX_STATUS=$(free_port)

# Both forwarders store to a local directory under WORK (page cache; the
# same object is overwritten by every request, as a resent batch would be).
"${SUT[@]}" "$TW" forwarder --listen "127.0.0.1:$TW_DLP" --admin-listen "127.0.0.1:$TW_DLP_ADMIN" \
    --storage "$WORK/store-dlp" --api-key "$KEY" --filter none 2>"$WORK/forwarder-dlp.log" &
TW_DLP_PID=$!; PIDS+=("$TW_DLP_PID")
"${SUT[@]}" "$TW" forwarder --listen "127.0.0.1:$TW_OFF" --admin-listen "127.0.0.1:$TW_OFF_ADMIN" \
    --storage "$WORK/store-off" --api-key "$KEY" --filter none --no-dlp 2>"$WORK/forwarder-off.log" &
TW_OFF_PID=$!; PIDS+=("$TW_OFF_PID")

# The floor of any HTTP ingest: nginx checks the key and the path, reads the
# whole body off the socket and throws it away (`return` makes nginx discard
# the body unbuffered; the large client_body_buffer_size only makes sure no
# path would spill a body to a temp file).
mkdir -p "$WORK/nginx"
nginx_conf "$WORK/nginx" "
    client_max_body_size 64m;
    client_body_buffer_size 64m;
    server {
        listen 127.0.0.1:$NGX;
        location = /v1/batches {
            if (\$http_authorization != \"Bearer $KEY\") { return 403; }
            return 204;
        }
        location / { return 404; }
    }
    server {
        listen 127.0.0.1:$NGX_STATUS;
        location / { stub_status; }
    }"
"${SUT[@]}" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>"$WORK/nginx/stderr.log" &
NGX_PID=$!; PIDS+=("$NGX_PID")
for p in "$TW_DLP" "$TW_DLP_ADMIN" "$TW_OFF" "$TW_OFF_ADMIN" "$NGX" "$NGX_STATUS"; do wait_port "$p"; done

# target -> port, pid, batch variant
declare -A PORT=([tw-dlp-pii]=$TW_DLP [tw-dlp-clean]=$TW_DLP [tw-nodlp-pii]=$TW_OFF [nginx-pii]=$NGX)
declare -A ADMIN=([tw-dlp-pii]=$TW_DLP_ADMIN [tw-dlp-clean]=$TW_DLP_ADMIN [tw-nodlp-pii]=$TW_OFF_ADMIN)
declare -A PID=([tw-dlp-pii]=$TW_DLP_PID [tw-dlp-clean]=$TW_DLP_PID [tw-nodlp-pii]=$TW_OFF_PID [nginx-pii]=$NGX_PID)
declare -A VARIANT=([tw-dlp-pii]=pii [tw-dlp-clean]=clean [tw-nodlp-pii]=pii [nginx-pii]=pii)
declare -A STORE=([tw-dlp-pii]=$WORK/store-dlp [tw-dlp-clean]=$WORK/store-dlp [tw-nodlp-pii]=$WORK/store-off)
TARGETS=(tw-dlp-pii tw-dlp-clean tw-nodlp-pii nginx-pii)

post() { # port variant out -> http code
    curl -sS --max-time 30 -o "$3" -w '%{http_code}' -X POST "http://127.0.0.1:$1/v1/batches" \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/vnd.tapwire.segment.v1+zstd' \
        -H "tapwire-batch-id: $BATCH_ID" --data-binary "@$WORK/batches/$2.jsonl.zst"
}

# ---------------------------------------------------------------- checks
# Every receiver accepts the batch; the forwarders store all NEXCH exchanges
# in one object; DLP finds personal data in one batch and none in the other;
# what is stored from the PII batch holds none of the source's emails.
for t in "${TARGETS[@]}"; do
    v=${VARIANT[$t]}
    code=$(post "${PORT[$t]}" "$v" "$WORK/check-$t.json") || die "$t: request failed"
    if [[ $t == nginx-* ]]; then
        [[ $code == 204 ]] || die "$t: HTTP $code"
        log "check $t: 204"
        continue
    fi
    [[ $code == 200 ]] || die "$t: HTTP $code: $(head -c 300 "$WORK/check-$t.json")"
    read -r received stored redactions nobj < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["received"], d["stored"], d["redactions"], len(d["objects"]))' "$WORK/check-$t.json")
    [[ $received == "$NEXCH" && $stored == "$NEXCH" && $nobj == 1 ]] ||
        die "$t: received $received, stored $stored, $nobj objects (want $NEXCH, $NEXCH, 1)"
    case $t in
    tw-dlp-pii) ((redactions > NEXCH)) || die "$t: only $redactions redactions in a batch full of personal data" ;;
    *) ((redactions == 0)) || die "$t: $redactions redactions where none were expected" ;;
    esac
    rec redactions_per_batch "$t" 0 "$redactions"
    # The next check overwrites this object (same batch id): keep what it holds now.
    find "${STORE[$t]}" -name '*.jsonl.zst' -print0 | xargs -0 -r zstd -dcq >"$WORK/stored-$t.jsonl"
    log "check $t: 200, $received received, $stored stored, $redactions redactions"
done
nemails=$(python3 - "$WORK" "$NEXCH" <<'EOF'
import re, sys
work, n = sys.argv[1], int(sys.argv[2])
src, dlp, off = (open(f"{work}/{p}", encoding="utf-8").read()
                 for p in ("batches/pii.jsonl", "stored-tw-dlp-pii.jsonl", "stored-tw-nodlp-pii.jsonl"))
emails = set(re.findall(r"[a-z.]+[0-9]*@[a-z.]*example\.[a-z.]+", src))
for name, text in (("DLP", dlp), ("--no-dlp", off)):
    if text.count("\n") != n:
        sys.exit(f"the {name} store holds {text.count(chr(10))} exchanges, want {n}")
leaked = [e for e in emails if e in dlp]
if not emails or leaked:
    sys.exit(f"{len(emails)} emails in the source batch, {len(leaked)} of them in the DLP store")
if "REDACTED-EMAIL-" not in dlp or not all(e in off for e in emails):
    sys.exit("the DLP store holds no email token, or the --no-dlp store lost emails")
print(len(emails))
EOF
) || die "store check failed"
log "check stores: both hold $NEXCH exchanges; none of the source's $nemails distinct emails is in the DLP store (it holds EMAIL tokens); the --no-dlp store keeps them all"

# ---------------------------------------------------------------- measurements
# Batches the receiver has finished: the forwarder's own accepted counter,
# nginx's stub_status request count (less the status request itself).
served() { # target
    case $1 in
    nginx-*) curl -sS --max-time 5 "http://127.0.0.1:$NGX_STATUS/" | awk 'NR == 3 {print $3 - 1}' ;;
    *) curl -sS --max-time 5 "http://127.0.0.1:${ADMIN[$1]}/metrics" |
        awk 'index($0, "tapwire_forwarder_batches_total") == 1 && /outcome="accepted"/ {s += $NF} END {print s+0}' ;;
    esac
}

# One wrk run per measurement; after WARMUP s the receiver's CPU time and
# finished batches are sampled at the start and end of a window of at least
# DUR s, so batches in flight when wrk starts or stops (a forwarder batch
# takes ~0.1 s of CPU) fall outside it instead of skewing CPU per batch.
measure() { # target run
    local t=$1 r=$2 out=$WORK/wrk-$1-$2.txt c0 c1 q0 q1 b0 b1 n0 n1 g0 g1 m0 m1 w0 w1 wpid
    # wrk runs until the window closes (SIGINT makes it stop and report).
    FWD_BATCH=$WORK/batches/${VARIANT[$t]}.jsonl.zst FWD_KEY=$KEY FWD_BATCH_ID=$BATCH_ID \
        "${LG[@]}" wrk -t1 -c"$CONNS" -d"$((WARMUP + MAX_DUR + 10))s" --timeout 30s -s "$HERE/forwarder.lua" \
        "http://127.0.0.1:${PORT[$t]}" >"$out" &
    wpid=$!
    sleep "$WARMUP"
    q0=$(served "$t"); c0=$(cpu_ticks "${PID[$t]}"); w0=$(date +%s%N)
    b0=$(core_busy "$SUT_CPU"); n0=$(core_all "$SUT_CPU"); g0=$(core_busy "$LOADGEN_CPU"); m0=$(core_all "$LOADGEN_CPU")
    sleep "$DUR"
    # On a crowded core a forwarder may finish only a few batches in DUR s:
    # stretch the window (up to MAX_DUR s) until MIN_BATCHES are done.
    while (($(served "$t") - q0 < MIN_BATCHES && ($(date +%s%N) - w0) / 1000000000 < MAX_DUR)); do sleep 1; done
    q1=$(served "$t"); c1=$(cpu_ticks "${PID[$t]}"); w1=$(date +%s%N)
    b1=$(core_busy "$SUT_CPU"); n1=$(core_all "$SUT_CPU"); g1=$(core_busy "$LOADGEN_CPU"); m1=$(core_all "$LOADGEN_CPU")
    kill -INT "$wpid" 2>/dev/null || true
    wait "$wpid" || die "$t run $r: wrk failed; see $out"
    rec batches_measured "$t" "$r" "$((q1 - q0))"
    rec window_s "$t" "$r" "$(((w1 - w0) / 1000000))e-3"
    if ((q1 == q0)); then
        log "WARNING: $t run $r: no batch finished in ${MAX_DUR}s (the core was taken by other processes); no figures for this run"
        return
    fi
    python3 - "$t" "$r" "$((q1 - q0))" "$(((w1 - w0) / 1000000))" "$((c1 - c0))" "$CLK_TCK" \
        "$NEXCH" "${RAW_BYTES[${VARIANT[$t]}]}" "${ZST_BYTES[${VARIANT[$t]}]}" \
        "$((b1 - b0))" "$((n1 - n0))" "$((g1 - g0))" "$((m1 - m0))" \
        "$(awk '/Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} /Non-2xx/ {n += $NF} END {print n + 0}' "$out")" \
        >>"$RAW" <<'EOF'
import sys
t, r = sys.argv[1], sys.argv[2]
reqs, ms, ticks, tck, nexch, raw_b, zst_b, sb, sn, gb, gn, errs = map(float, sys.argv[3:])
cpu_s, secs = ticks / tck, ms / 1e3
rows = {
    "rps": reqs / secs,
    "exch_per_s": reqs * nexch / secs,
    "raw_mb_per_s": reqs * raw_b / 1e6 / secs,
    "cpu_ms_per_req": 1e3 * cpu_s / reqs,
    # Ingest per core: what one fully busy core of receiver CPU would take.
    "req_per_cpu_s": reqs / cpu_s if cpu_s else float("nan"),
    "exch_per_cpu_s": reqs * nexch / cpu_s if cpu_s else float("nan"),
    "raw_mb_per_cpu_s": reqs * raw_b / 1e6 / cpu_s if cpu_s else float("nan"),
    "zst_mb_per_cpu_s": reqs * zst_b / 1e6 / cpu_s if cpu_s else float("nan"),
    "sut_cpu_pct": 100 * ticks / max(1, sn),
    "sut_core_busy_pct": 100 * sb / max(1, sn),
    "lg_core_busy_pct": 100 * gb / max(1, gn),
    "errors": errs,
}
for k, v in rows.items():
    print(f"{k}\t{t}\t{r}\t{v}")
EOF
    log "$t run $r: $(awk -v t="$t" -v r="$r" '$2 == t && $3 == r && $1 ~ /^(rps|exch_per_cpu_s|raw_mb_per_cpu_s|cpu_ms_per_req|sut_cpu_pct|sut_core_busy_pct|errors)$/ {printf "%s=%.4g ", $1, $4}' "$RAW")"
}

for r in $(seq "$RUNS"); do
    log "round $r/$RUNS (load $(loadavg))"
    rec load1 all "$r" "$(load1)"
    for o in $(others); do OTHERS_SEEN[$o]=1; done
    s0=$(steal_both); n0=$(both_all)
    # Rotate the order so that no target always runs first or last.
    k=$(((r - 1) % ${#TARGETS[@]}))
    order=("${TARGETS[@]:k}" "${TARGETS[@]:0:k}")
    for t in "${order[@]}"; do measure "$t" "$r"; done
    rec steal_pct all "$r" "$(python3 -c "print(100 * ($(steal_both) - $s0) / max(1, $(both_all) - $n0))")"
done
LOAD_AFTER=$(loadavg)

# ---------------------------------------------------------------- counters
metric() { # port name -> sum over label sets
    curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {print s+0}'
}
for side in dlp off; do
    if [[ $side == dlp ]]; then port=$TW_DLP_ADMIN; pid=$TW_DLP_PID; else port=$TW_OFF_ADMIN; pid=$TW_OFF_PID; fi
    rec accepted "$side" 0 "$(curl -sS --max-time 5 "http://127.0.0.1:$port/metrics" |
        awk 'index($0, "tapwire_forwarder_batches_total") == 1 && /outcome="accepted"/ {s += $NF} END {print s+0}')"
    rec refused "$side" 0 "$(curl -sS --max-time 5 "http://127.0.0.1:$port/metrics" |
        awk 'index($0, "tapwire_forwarder_batches_total") == 1 && !/outcome="accepted"/ {s += $NF} END {print s+0}')"
    rec stored "$side" 0 "$(metric "$port" tapwire_forwarder_exchanges_stored_total)"
    rec redactions "$side" 0 "$(metric "$port" tapwire_forwarder_redactions_total)"
    rec rss_peak_kib "$side" 0 "$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
done
rec rss_peak_kib nginx 0 "$(awk '/^VmHWM:/ {s += $2} END {print s}' /proc/"$NGX_PID"/status $(pgrep -P "$NGX_PID" | sed 's|.*|/proc/&/status|'))"

# ---------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/forwarder-$(date +%Y-%m-%d-%H%M).md
WRK_V=$({ wrk -v 2>&1 || true; } | head -1 | awk '{print $1, $2}')
NGX_V=$("$NGINX" -v 2>&1 | head -1 | sed 's/^nginx version: //')
ZSTD_V=$(zstd --version | head -1 | grep -o 'v[0-9.]*' | sed 's/^/zstd /')
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
STORE_FS=$(df -T "$WORK" | awk 'NR == 2 {print $2}')
OTHERS_DURING="${!OTHERS_SEEN[*]}"

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
    # Median over rounds of t / base measured in the same round.
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
def one(m, t):
    return int(raw[(m, t)][0]) if raw.get((m, t)) else 0
T = ["tw-dlp-pii", "tw-dlp-clean", "tw-nodlp-pii", "nginx-pii"]
label = {"tw-dlp-pii": "tapwire forwarder, DLP on, batch with personal data",
         "tw-dlp-clean": "tapwire forwarder, DLP on, batch without personal data",
         "tw-nodlp-pii": "tapwire forwarder \`--no-dlp\` (batch with personal data)",
         "nginx-pii": "nginx: check key, read and discard the body, 204"}
print("## Forwarder ingest benchmark — $(date '+%Y-%m-%d %H:%M %Z')")
print()
print("Command: \`RUNS=$RUNS DUR=$DUR WARMUP=$WARMUP CONNS=$CONNS NEXCH=$NEXCH bench/forwarder.sh\`  ")
print("Machine: $(nproc) vCPU, $CPU_MODEL; wrk on core $LOADGEN_CPU, the receivers on core $SUT_CPU  ")
print("Tools: $WRK_V, $NGX_V, $ZSTD_V; tapwire $TW_V  ")
print("Load (1/5/15 min): before $LOAD_BEFORE, after $LOAD_AFTER; quiet before start: $QUIET (threshold $LOAD_MAX)  ")
print("1-min load per round: " + ", ".join(f"{x:.2f}" for x in raw[("load1", "all")]) + "; hypervisor steal per round: "
      + ", ".join(f"{x:.1f}%" for x in raw[("steal_pct", "all")]) + "  ")
print("Batches: $NEXCH exchanges each; with personal data ${RAW_BYTES[pii]} bytes of JSON Lines (${ZST_BYTES[pii]} zstd -3), "
      "without ${RAW_BYTES[clean]} (${ZST_BYTES[clean]}). Storage: local directory ($STORE_FS), \`--filter none\`.  ")
print("Other benchmarks on this box: at start ${OTHERS_AT_START:-none}; during the rounds ${OTHERS_DURING:-none}  ")
ws = [x for t in T for x in raw.get(("window_s", t), [])]
print(f"Medians of $RUNS rounds; each: wrk -t1 -c$CONNS, $WARMUP s warm-up, then a window of ≥ $DUR s, stretched up to $MAX_DUR s "
      f"until ≥ $MIN_BATCHES batches finished (forwarder windows held {int(min(x for t in T[:3] for x in raw.get(('batches_measured', t), [0])))}–"
      f"{int(max(x for t in T[:3] for x in raw.get(('batches_measured', t), [0])))} batches, {min(ws):.1f}–{max(ws):.1f} s); (min–max over rounds).")
print()
print("### Summary")
print()
print("Per core = per second of the receiver's own CPU (utime+stime from /proc/PID/stat at both")
print("ends of the measured window, divided by the batches it finished in that window), so it")
print("does not depend on how much of core $SUT_CPU other processes took. Ratios are paired:")
print("computed within each round, then the median over rounds.")
print()
print("| receiver | exchanges/s per core | MB/s per core, uncompressed | wire MB/s per core (zstd) | CPU ms per batch | CPU per batch ÷ nginx's | batches/s ÷ nginx's |")
print("|---|---|---|---|---|---|---|")
for t in T:
    tw = t != "nginx-pii"
    print(f"| {label[t]} | "
          + (f"{med('exch_per_cpu_s', t):,.0f}{span('exch_per_cpu_s', t, ',.0f')} | "
             f"{f(med('raw_mb_per_cpu_s', t), 1)}{span('raw_mb_per_cpu_s', t, '.1f')} | " if tw else "– (not decoded) | – | ")
          + f"{med('zst_mb_per_cpu_s', t):,.1f} | "
          f"{f(med('cpu_ms_per_req', t), 2 if tw else 3)}{span('cpu_ms_per_req', t, '.2f' if tw else '.3f')} | "
          + (f"{f(paired('cpu_ms_per_req', t, 'nginx-pii'), 0)} | {f(paired('rps', t, 'nginx-pii'), 4)} |" if tw else "1 | 1 |"))
print()
print("- DLP cost, same bytes: DLP on ÷ \`--no-dlp\` CPU per batch with personal data "
      + f(paired("cpu_ms_per_req", "tw-dlp-pii", "tw-nodlp-pii")) + "; DLP on, batch without ÷ with personal data "
      + f(paired("cpu_ms_per_req", "tw-dlp-clean", "tw-dlp-pii")) + ".")
print("- HTTP alone: nginx's CPU per batch is "
      + f(100 / paired("cpu_ms_per_req", "tw-nodlp-pii", "nginx-pii"), 2) + "% of the \`--no-dlp\` forwarder's and "
      + f(100 / paired("cpu_ms_per_req", "tw-dlp-pii", "nginx-pii"), 2) + "% of the DLP-on forwarder's: receiving the")
print("  bytes is not where the forwarder's time goes; decoding, redacting and re-encoding are.")
print()
print("### Wall-clock rates")
print()
print("Core $SUT_CPU is shared with whatever else runs on the box; the last two columns show how much")
print("of it the receiver got. These rates are not the receiver's capacity: the per-core figures are.")
print()
print("| receiver | batches/s | exchanges/s | MB/s uncompressed | receiver's share of core $SUT_CPU | core $SUT_CPU busy (all processes) | core $LOADGEN_CPU (wrk) busy |")
print("|---|---|---|---|---|---|---|")
for t in T:
    print(f"| {t} | {f(med('rps', t), 1)}{span('rps', t, '.1f')} | {med('exch_per_s', t):,.0f} | {f(med('raw_mb_per_s', t), 1)} | "
          f"{med('sut_cpu_pct', t):.0f}% | {med('sut_core_busy_pct', t):.0f}% | {med('lg_core_busy_pct', t):.0f}% |")
print()
print("### Checks")
print()
print("- errors or unexpected answers during the runs: " + ", ".join(f"{t} {int(sum(raw.get(('errors', t), [])))}" for t in T))
print(f"- redactions per batch (forwarder's answer): with personal data {one('redactions_per_batch', 'tw-dlp-pii')}, "
      f"without {one('redactions_per_batch', 'tw-dlp-clean')}, \`--no-dlp\` {one('redactions_per_batch', 'tw-nodlp-pii')}")
print("- before measuring: every forwarder answer stored all $NEXCH exchanges in one object; the DLP store held")
print("  no email of the source batch and did hold EMAIL tokens; the \`--no-dlp\` store kept the email")
print(f"- forwarder counters at the end: DLP on {one('accepted', 'dlp'):,} batches accepted, {one('refused', 'dlp')} refused, "
      f"{one('stored', 'dlp'):,} exchanges stored; \`--no-dlp\` {one('accepted', 'off'):,} accepted, {one('refused', 'off')} refused, "
      f"{one('stored', 'off'):,} stored (warm-ups and checks included)")
print(f"- peak RSS (VmHWM): DLP on {one('rss_peak_kib', 'dlp') / 1024:.0f} MiB, \`--no-dlp\` {one('rss_peak_kib', 'off') / 1024:.0f} MiB, "
      f"nginx {one('rss_peak_kib', 'nginx') / 1024:.0f} MiB (master + worker, 64 MiB body buffer)")
print("- peers: nginx only; $REAL_PEER_NOTE")
EOF
cp "$RAW" "${OUT%.md}.tsv"
cat "$OUT"
log "wrote $OUT and the per-run numbers in ${OUT%.md}.tsv"
