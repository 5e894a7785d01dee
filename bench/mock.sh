#!/usr/bin/env bash
# Mock-responder benchmark: `tapwire mock` against WireMock standalone,
# mountebank and mitmproxy's server replay, all answering the same recorded
# requests over plain HTTP in reverse mode, in one run; plus tapwire (and
# each peer) with NMOCKS distinct mocks against 1 mock, to show whether
# matching is indexed.
#
# Layout (shared/reference/performance.md §8 ground rules, 2 cores):
#   core 0: wrk (one thread, CONNS connections, paths cycled by a Lua script)
#   core 1: the mock servers (all started up front, measured one at a time)
#
# The data: NMOCKS GETs of /items/0000.. recorded through `tapwire proxy
# --mode forward` from nginx (a ~1 KiB JSON body naming the path), and one
# more recording of a single GET for the 1-mock servers. tapwire serves the
# snapshots; the HAR that `tapwire export` writes from the same recordings
# is turned into WireMock mappings and mountebank imposters by
# bench/mock_peers.py, and mitmdump server-replays the HAR itself. The
# recorded upstream is stopped before anything is measured.
#
# Usage:  bench/mock.sh              (see bench/README.md for the knobs)
# Env:    RUNS=3 DUR=10 WARMUP=2 PEER_WARMUP=10 CONNS=64 NMOCKS=1000
#         PEERS="wiremock mountebank mitmproxy" ONE_PEERS=1 WRK_TIMEOUT=5s
#         BENCH_CACHE=/var/cache/tapwire-bench INSTALL=1
#         LOAD_MAX=0.6 LOAD_WAIT=120 TAPWIRE=/work/target/release/tapwire
#         LOADGEN_CPU=0 SUT_CPU=1 KEEP=0 (1 keeps the temp dir)
set -euo pipefail

NAME=mock.sh
RUNS=${RUNS:-3}
DUR=${DUR:-10}
WARMUP=${WARMUP:-2}
PEER_WARMUP=${PEER_WARMUP:-10}
CONNS=${CONNS:-64}
NMOCKS=${NMOCKS:-1000}
PEERS=${PEERS:-wiremock mountebank mitmproxy}
ONE_PEERS=${ONE_PEERS:-1}
WRK_TIMEOUT=${WRK_TIMEOUT:-5s}
BENCH_CACHE=${BENCH_CACHE:-/var/cache/tapwire-bench}
INSTALL=${INSTALL:-1}
WIREMOCK_VERSION=${WIREMOCK_VERSION:-3.13.2}
MOUNTEBANK_VERSION=${MOUNTEBANK_VERSION:-2.9.1}
MITMPROXY_VERSION=${MITMPROXY_VERSION:-11.0.2}
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

for t in wrk taskset python3 curl; do
    command -v "$t" >/dev/null || die "missing $t: apt-get install wrk util-linux python3 curl (see bench/README.md)"
done
[[ -x $NGINX ]] || die "missing nginx at $NGINX (apt-get install nginx-light)"

# ---------------------------------------------------------------- peers
# Peers come from npm and PyPI into BENCH_CACHE, never into the system; a
# missing one is installed there (INSTALL=1, saying so) or left out of the
# run (and the report says which and why).
declare -A SKIP=()
WM_JAR=""; MB_JS=""; MITMDUMP=""
npm_peer() { # package version
    command -v npm >/dev/null || return 1
    log "installing $1@$2 from npm into $BENCH_CACHE/npm (npm install --prefix $BENCH_CACHE/npm $1@$2)"
    mkdir -p "$BENCH_CACHE/npm"
    npm install --prefix "$BENCH_CACHE/npm" --no-audit --no-fund --loglevel=error "$1@$2" >&2
}
for p in $PEERS; do
    case $p in
    wiremock)
        # The npm package `wiremock` (wiremock/wiremock-npm) ships the
        # standalone jar that Maven Central serves.
        WM_JAR=$(ls "$BENCH_CACHE"/npm/node_modules/wiremock/build/wiremock-standalone-*.jar 2>/dev/null | head -1 || true)
        if [[ -z $WM_JAR && $INSTALL == 1 ]]; then
            npm_peer wiremock "$WIREMOCK_VERSION" || true
            WM_JAR=$(ls "$BENCH_CACHE"/npm/node_modules/wiremock/build/wiremock-standalone-*.jar 2>/dev/null | head -1 || true)
        fi
        if ! command -v java >/dev/null; then SKIP[wiremock]="no java (apt-get install openjdk-17-jre-headless)"
        elif [[ -z $WM_JAR ]]; then SKIP[wiremock]="no WireMock jar in $BENCH_CACHE (INSTALL=1 fetches npm wiremock@$WIREMOCK_VERSION)"; fi
        ;;
    mountebank)
        MB_JS=$BENCH_CACHE/npm/node_modules/mountebank/bin/mb
        [[ -f $MB_JS || $INSTALL != 1 ]] || npm_peer mountebank "$MOUNTEBANK_VERSION" || true
        if ! command -v node >/dev/null; then SKIP[mountebank]="no node (apt-get install nodejs npm)"
        elif [[ ! -f $MB_JS ]]; then SKIP[mountebank]="no mountebank in $BENCH_CACHE (INSTALL=1 fetches npm mountebank@$MOUNTEBANK_VERSION)"; fi
        ;;
    mitmproxy)
        MITMDUMP=$BENCH_CACHE/mitmproxy/bin/mitmdump
        if [[ ! -x $MITMDUMP && $INSTALL == 1 ]]; then
            log "installing mitmproxy==$MITMPROXY_VERSION from PyPI into the venv $BENCH_CACHE/mitmproxy"
            python3 -m venv "$BENCH_CACHE/mitmproxy" >&2 &&
                "$BENCH_CACHE/mitmproxy/bin/pip" install -q "mitmproxy==$MITMPROXY_VERSION" >&2 || true
        fi
        [[ -x $MITMDUMP ]] || SKIP[mitmproxy]="no mitmdump in $BENCH_CACHE (INSTALL=1 fetches PyPI mitmproxy==$MITMPROXY_VERSION)"
        ;;
    *) die "unknown peer $p (PEERS takes wiremock, mountebank, mitmproxy)" ;;
    esac
    [[ -n ${SKIP[$p]:-} ]] && log "WARNING: leaving $p out: ${SKIP[$p]}"
done

WORK=$(mktemp -d /tmp/tapwire-bench-mock.XXXXXX)
RAW=$WORK/raw.tsv
: >"$RAW"
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM
stage_tapwire "$TAPWIRE" "$HERE/.."
TW=$TAPWIRE_BIN
LG=(taskset -c "$LOADGEN_CPU")
SUT=(taskset -c "$SUT_CPU")
export TAPWIRE_STORE=$WORK/store

wait_quiet

# ---------------------------------------------------------------- recording
UP=$(free_port); REC=$(free_port); REC_ADMIN=$(free_port)
PAD=$(printf 'x%.0s' $(seq 960))
mkdir -p "$WORK/up"
nginx_conf "$WORK/up" "
    server {
        listen 127.0.0.1:$UP;
        location /items/ { default_type application/json; return 200 '{\"path\":\"\$uri\",\"pad\":\"$PAD\"}'; }
    }"
"${SUT[@]}" "$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" 2>"$WORK/up/stderr.log" &
UP_PID=$!; PIDS+=("$UP_PID")
wait_port "$UP"
seq 0 $((NMOCKS - 1)) | awk '{printf "/items/%04d\n", $1}' >"$WORK/paths-many"
echo /items/0000 >"$WORK/paths-one"
for set in many one; do
    "$TW" proxy --mode forward --service bench --out-port "$REC" --admin-port "$REC_ADMIN" \
        --out "$WORK/rec-$set" 2>"$WORK/record-$set.log" &
    pid=$!
    wait_port "$REC"
    send_gets "$REC" "$WORK/paths-$set" "127.0.0.1:$UP" || die "recording ($set) failed"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    "$TW" snapshot create --from "$WORK/rec-$set" --service bench --name "$set" >/dev/null 2>"$WORK/snapshot-$set.log" ||
        die "snapshot create failed: $(cat "$WORK/snapshot-$set.log")"
    "$TW" export --har -o "$WORK/$set.har" "$WORK/rec-$set" 2>/dev/null
    python3 "$HERE/mock_peers.py" "$WORK/$set.har" bodies "$WORK/bodies-$set"
done
got=$(wc -l <"$WORK/bodies-many")
[[ $got == "$NMOCKS" ]] || die "recorded $got exchanges, expected $NMOCKS"
log "recorded $NMOCKS + 1 exchanges from 127.0.0.1:$UP; stopping it"
kill -TERM "$UP_PID"; wait "$UP_PID" 2>/dev/null || true

# ---------------------------------------------------------------- servers
declare -A PORT=() PID=() KIND=() NPATHS=()
TARGETS=()
start() { # name kind set cmd... (the command is started on the SUT core)
    local name=$1 kind=$2 set=$3; shift 3
    "${SUT[@]}" "$@" >"$WORK/$name.log" 2>&1 &
    PID[$name]=$!; PIDS+=("$!")
    KIND[$name]=$kind
    if [[ $set == many ]]; then NPATHS[$name]=$NMOCKS; else NPATHS[$name]=1; fi
    TARGETS+=("$name")
}
for set in many one; do
    p=$(free_port); PORT[tw-$set]=$p
    start "tw-$set" tapwire "$set" "$TW" mock --snapshot "$set" --port "$(free_port)" --admin-port 0 \
        --map "$p=127.0.0.1:$UP" --ca-dir "$WORK/ca"
    [[ $set == one && $ONE_PEERS != 1 ]] && continue
    if [[ -z ${SKIP[wiremock]:-} && " $PEERS " == *" wiremock "* ]]; then
        p=$(free_port); PORT[wiremock-$set]=$p
        python3 "$HERE/mock_peers.py" "$WORK/$set.har" wiremock "$WORK/wiremock-$set"
        # The documented settings for load: no request journal (it grows
        # without bound otherwise), no per-request logging.
        start "wiremock-$set" wiremock "$set" java -jar "$WM_JAR" --port "$p" --bind-address 127.0.0.1 \
            --root-dir "$WORK/wiremock-$set" --no-request-journal --disable-request-logging --disable-banner
    fi
    if [[ -z ${SKIP[mountebank]:-} && " $PEERS " == *" mountebank "* ]]; then
        p=$(free_port); PORT[mountebank-$set]=$p
        python3 "$HERE/mock_peers.py" "$WORK/$set.har" mountebank "$WORK/mountebank-$set.json" "$p"
        start "mountebank-$set" mountebank "$set" node "$MB_JS" start --port "$(free_port)" --host 127.0.0.1 \
            --configfile "$WORK/mountebank-$set.json" --noParse --nologfile --loglevel warn \
            --pidfile "$WORK/mountebank-$set.pid"
    fi
    if [[ -z ${SKIP[mitmproxy]:-} && " $PEERS " == *" mitmproxy "* ]]; then
        p=$(free_port); PORT[mitmproxy-$set]=$p
        # Reverse mode towards the recorded host, which is down: every answer
        # must come from the replay. reuse: serve a flow more than once;
        # extra=404: a miss is an error, not a pass-through.
        start "mitmproxy-$set" mitmproxy "$set" "$MITMDUMP" -q --mode "reverse:http://127.0.0.1:$UP" \
            --listen-host 127.0.0.1 -p "$p" --server-replay "$WORK/$set.har" \
            --set server_replay_reuse=true --set server_replay_extra=404 \
            --set connection_strategy=lazy --set confdir="$WORK/mitmproxy-conf"
    fi
done
for t in "${TARGETS[@]}"; do wait_port "${PORT[$t]}" 900; done
sleep 1

# Correctness gate: the first and last recorded paths answer 200 with the
# recorded body (by SHA-256), and a path never recorded is not a 2xx.
gate() { # target set path...
    local t=$1 set=$2 path code sum; shift 2
    for path in "$@"; do
        code=$(curl -sS --max-time 10 -o "$WORK/gate-body" -w '%{http_code}' "http://127.0.0.1:${PORT[$t]}$path") ||
            die "gate $t $path: request failed"
        sum=$(sha256sum "$WORK/gate-body" | cut -d' ' -f1)
        grep -qx "$path"$'\t'"$sum" "$WORK/bodies-$set" && [[ $code == 200 ]] ||
            die "gate $t $path: status $code, body $(wc -c <"$WORK/gate-body") bytes, not the recorded one"
    done
    code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$t]}/never/recorded") || true
    [[ $code != 2* ]] || die "gate $t: a path never recorded got $code"
    log "check $t: recorded bodies for $*; unrecorded path -> $code"
}
for t in "${TARGETS[@]}"; do
    if [[ ${NPATHS[$t]} == 1 ]]; then gate "$t" one /items/0000; else
        gate "$t" many /items/0000 "$(tail -1 "$WORK/paths-many")"
    fi
done

# wrk cycles through the paths in order; requests are formatted once, in init.
cat >"$WORK/paths.lua" <<'EOF'
local reqs, i = {}, 0
function init(args)
  for k = 0, tonumber(os.getenv("NPATHS")) - 1 do
    reqs[#reqs + 1] = wrk.format("GET", string.format("/items/%04d", k))
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
EOF
load() { # target seconds out
    NPATHS=${NPATHS[$1]} "${LG[@]}" wrk -t1 -c"$CONNS" -d"$2s" --timeout "$WRK_TIMEOUT" --latency \
        -s "$WORK/paths.lua" "http://127.0.0.1:${PORT[$1]}/" >"$3"
}
for t in "${TARGETS[@]}"; do rec rss_idle_kib "$t" 0 "$(rss_kib "${PID[$t]}")"; done
log "warming every server up for ${PEER_WARMUP}s (the JVM's JIT needs it most)"
for t in "${TARGETS[@]}"; do load "$t" "$PEER_WARMUP" /dev/null; done

# ---------------------------------------------------------------- measurements
measure() { # target run
    local t=$1 r=$2 out=$WORK/wrk-$1-$2.txt c0 c1
    load "$t" "$WARMUP" /dev/null
    c0=$(cpu_ticks "${PID[$t]}")
    load "$t" "$DUR" "$out"
    c1=$(cpu_ticks "${PID[$t]}")
    rec rss_kib "$t" "$r" "$(rss_kib "${PID[$t]}")"
    python3 - "$t" "$r" "$out" "$((c1 - c0))" "$(getconf CLK_TCK)" >>"$RAW" <<'EOF'
import re, sys
t, r, out, ticks, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
text = open(out).read()
def ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
n = int(re.search(r"(\d+) requests in", text).group(1))
err = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
err += int(m.group(1)) if m else 0
for k, v in (("rps", float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))),
             ("requests", n), ("errors", err),
             ("p50_ms", ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", text).groups())),
             ("p99_ms", ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups())),
             ("server_cpu_us_per_req", ticks / hz / max(n, 1) * 1e6)):
    print(f"{k}\t{t}\t{r}\t{v}")
EOF
    log "$t run $r: $(awk -v t="$t" -v r="$r" '$2 == t && $3 == r && $1 ~ /^(rps|p99_ms|errors|server_cpu_us_per_req)$/ {printf "%s=%.4g ", $1, $4}' "$RAW")"
}

for r in $(seq "$RUNS"); do
    log "round $r/$RUNS (load $(loadavg))"
    rec load1 all "$r" "$(load1)"
    s0=$(steal_both); n0=$(both_all)
    order=("${TARGETS[@]}")
    if ((r % 2 == 0)); then
        order=(); for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[i]}"); done
    fi
    for t in "${order[@]}"; do measure "$t" "$r"; done
    rec steal_pct all "$r" "$(python3 -c "print(100 * ($(steal_both) - $s0) / max(1, $(both_all) - $n0))")"
done
LOAD_AFTER=$(loadavg)

# ---------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/mock-$(date +%Y-%m-%d-%H%M).md
WRK_V=$({ wrk -v 2>&1 || true; } | head -1 | awk '{print $1, $2}')
PEER_V=()
[[ -n ${PORT[wiremock-many]:-} ]] && PEER_V+=("WireMock $(basename "$WM_JAR" .jar | sed 's/^wiremock-standalone-//') standalone on $(java -version 2>&1 | head -1 | tr -d '"' | sed 's/ version / /')")
[[ -n ${PORT[mountebank-many]:-} ]] && PEER_V+=("mountebank $(node "$MB_JS" --version 2>/dev/null | head -1) on node $(node --version)")
[[ -n ${PORT[mitmproxy-many]:-} ]] && PEER_V+=("mitmproxy $("$MITMDUMP" --version 2>/dev/null | awk '/^Mitmproxy:/ {print $2}')")
SKIPPED=""
for p in "${!SKIP[@]}"; do SKIPPED+="$p (${SKIP[$p]}); "; done
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
PEER_LIST=$(printf '%s\n' "${TARGETS[@]}" | sed -n 's/-many$//p' | { grep -v '^tw$' || true; } | tr '\n' ' ')

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
    v = [x / by_run[(m, base, r)] for (mm, tt, r), x in by_run.items()
         if mm == m and tt == t and (m, base, r) in by_run and by_run[(m, base, r)]]
    return statistics.median(v) if v else float("nan")
def med(m, t):
    v = raw.get((m, t))
    return statistics.median(v) if v else float("nan")
def span(m, t, fmt):
    v = raw.get((m, t))
    return f" ({min(v):{fmt}}–{max(v):{fmt}})" if v and len(v) > 1 else ""
def f(x, n=2):
    return "–" if x != x else f"{x:.{n}f}"
peers = "$PEER_LIST".split()
name = {"tw": "tapwire mock", "wiremock": "WireMock", "mountebank": "mountebank", "mitmproxy": "mitmproxy server replay"}
print("## Mock responder benchmark — $(date '+%Y-%m-%d %H:%M %Z')")
print()
print("Command: \`RUNS=$RUNS DUR=$DUR WARMUP=$WARMUP PEER_WARMUP=$PEER_WARMUP CONNS=$CONNS NMOCKS=$NMOCKS bench/mock.sh\`  ")
print("Machine: $(nproc) vCPU, $CPU_MODEL; wrk on core $LOADGEN_CPU, the mock servers on core $SUT_CPU  ")
print("Tools: $WRK_V; tapwire $TW_V; $(printf '%s; ' "${PEER_V[@]}")  ")
if "$SKIPPED":
    print("Left out: $SKIPPED ")
print("Load (1/5/15 min): before $LOAD_BEFORE, after $LOAD_AFTER; quiet before start: $QUIET (threshold $LOAD_MAX)  ")
print("1-min load per round: " + ", ".join(f"{x:.2f}" for x in raw[("load1", "all")]) + "; hypervisor steal per round: "
      + ", ".join(f"{x:.1f}%" for x in raw[("steal_pct", "all")]) + "  ")
print("\`wrk -t1 -c$CONNS -d${DUR}s --latency\`, requests cycling in order over the recorded paths; medians of $RUNS rounds (min–max).")
print()
print("### Summary")
print()
print(f"Ratios are paired (within a round, then the median over rounds). $NMOCKS distinct recorded GETs, all served.")
print()
print("| | " + " | ".join(name[p] for p in peers) + " |")
print("|---|" + "---|" * len(peers))
print("| tapwire req/s ÷ peer's | " + " | ".join(f(paired("rps", "tw-many", p + "-many")) for p in peers) + " |")
print("| tapwire p99 ÷ peer's (at saturation) | " + " | ".join(f(paired("p99_ms", "tw-many", p + "-many")) for p in peers) + " |")
print()
print("Stub count: req/s with $NMOCKS mocks (requests cycling over all of them) ÷ req/s with 1 mock,")
print("same connections. Goal (performance.md M2) for tapwire: ≥ 0.9.")
print()
print("| | " + " | ".join(name[p] for p in ["tw"] + peers) + " |")
print("|---|" + "---|" * (len(peers) + 1))
print("| $NMOCKS mocks ÷ 1 mock, req/s | " + " | ".join(f(paired("rps", p + "-many", p + "-one")) for p in ["tw"] + peers) + " |")
print()
print("### Per server")
print()
print("| server | mocks | req/s | p50 / p99 ms | server CPU µs per request | RSS idle / after, MiB | errors |")
print("|---|---|---|---|---|---|---|")
for p in ["tw"] + peers:
    for s, n in (("many", "$NMOCKS"), ("one", "1")):
        t = f"{p}-{s}"
        if (("rps", t)) not in raw:
            continue
        print(f"| {name[p]} | {n} | {med('rps', t):,.0f}{span('rps', t, ',.0f')} | {f(med('p50_ms', t))} / {f(med('p99_ms', t))}{span('p99_ms', t, '.2f')} | "
              f"{f(med('server_cpu_us_per_req', t), 1)} | {f(med('rss_idle_kib', t) / 1024, 1)} / {f(med('rss_kib', t) / 1024, 1)} | {int(sum(raw[('errors', t)]))} |")
print()
print("### Checks")
print()
print("- Every server answered the first and last recorded path with the recorded body (SHA-256),")
print("  and a path never recorded with a non-2xx status, before anything was measured; the recorded")
print("  upstream was down during the whole measurement.")
print("- errors: wrk socket errors, timeouts ($WRK_TIMEOUT) and non-2xx answers, all rounds.")
print("- Server CPU: utime+stime of the server process (and children) during the measured run, from /proc.")
print("- p50 / p99 come from a closed loop at saturation ($CONNS connections), so they are mostly")
print("  queueing: about $CONNS ÷ req/s. They rank the servers; they are not latencies at a fixed rate.")
EOF
cp "$RAW" "${OUT%.md}.tsv"
cat "$OUT"
log "wrote $OUT and the per-run numbers in ${OUT%.md}.tsv"
