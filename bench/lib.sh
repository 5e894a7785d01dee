# Helpers shared by the bench scripts (proxy.sh, replay.sh, mock.sh, forwarder.sh); sourced, not run.
# The caller sets NAME (used in messages), WORK (temp dir), RAW (raw.tsv),
# LOADGEN_CPU, SUT_CPU, LOAD_MAX, LOAD_WAIT and the PIDS array.

die() { echo "$NAME: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
# metric<TAB>target<TAB>run<TAB>value
rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port [tries of 0.1 s]
    local i
    for i in $(seq "${2:-100}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$1"
}

# Stops every process in PIDS (TERM, then KILL after 5 s); keeps or removes WORK.
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

# CPU ticks (utime+stime) of a process and its live children (nginx workers).
cpu_ticks() {
    local total=0 p s
    for p in "$1" $(pgrep -P "$1" || true); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        # shellcheck disable=SC2086
        set -- $s
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# VmRSS in KiB of a process plus its live children.
rss_kib() {
    local total=0 p v
    for p in "$1" $(pgrep -P "$1" || true); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Busy jiffies of one core (everything but idle and iowait), and all jiffies.
core_busy() { awk -v c="cpu$1" '$1 == c {print $2+$3+$4+$7+$8; exit}' /proc/stat; }
core_all() { awk -v c="cpu$1" '$1 == c {s=0; for (i=2; i<=9; i++) s+=$i; print s; exit}' /proc/stat; }
# Jiffies the hypervisor gave to someone else on both cores (noise indicator).
steal_both() {
    awk -v a="cpu$LOADGEN_CPU" -v b="cpu$SUT_CPU" '$1 == a || $1 == b {s += $9} END {print s}' /proc/stat
}
both_all() { echo $(($(core_all "$LOADGEN_CPU") + $(core_all "$SUT_CPU"))); }

# Runs a command with stdout to OUT (stderr to OUT.err) and writes "cpu_s wall_s rc" to CPU:
# the CPU time (user+system, all threads) the command used from exec to
# exit, from getrusage(RUSAGE_CHILDREN). taskset execs the command, so the
# child measured is the load generator itself.
timed() { # out cpu cmd...
    python3 - "$@" <<'EOF'
import resource, subprocess, sys, time
out, cpu, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
t = time.monotonic()
with open(out, "w") as f, open(out + ".err", "w") as e:
    rc = subprocess.run(cmd, stdout=f, stderr=e).returncode
wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(cpu, "w").write(f"{r.ru_utime + r.ru_stime} {wall} {rc}\n")
EOF
}

# Waits (up to LOAD_WAIT s) for the 1-minute load average to fall below
# LOAD_MAX; sets QUIET=yes|no and LOAD_BEFORE.
wait_quiet() {
    local waited=0
    log "load average at start: $(loadavg)"
    QUIET=yes
    while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN {exit !(l >= m)}'; do
        if ((waited >= LOAD_WAIT)); then QUIET=no; break; fi
        ((waited % 60 == 0)) && log "waiting for 1-min load < $LOAD_MAX (now $(load1))"
        sleep 10
        waited=$((waited + 10))
    done
    LOAD_BEFORE=$(loadavg)
    if [[ $QUIET == yes ]]; then
        log "load average when measuring starts: $LOAD_BEFORE (waited ${waited}s)"
    else
        log "WARNING: load never fell below $LOAD_MAX in ${LOAD_WAIT}s; measuring anyway at $LOAD_BEFORE"
    fi
}

# Copies the tapwire binary into WORK so that a concurrent `cargo build`
# cannot swap it in the middle of a run, and describes it (version, build
# time, tree state) in TW_V.
stage_tapwire() { # source-binary repo-dir
    [[ -x $1 ]] || die "missing $1 (cargo build --release -p tapwire-cli)"
    cp "$1" "$WORK/tapwire"
    TAPWIRE_BIN=$WORK/tapwire
    TW_V="$("$TAPWIRE_BIN" --version 2>/dev/null | head -1 | awk '{print $NF}') (binary built $(date -r "$1" '+%Y-%m-%d %H:%M %Z'); tree at run time $(git -C "$2" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$2" diff --quiet HEAD -- crates 2>/dev/null || echo ' with uncommitted changes in crates/'))"
}

# nginx.conf with one worker, no logs, temp paths under DIR, keep-alive
# limits lifted; $2 holds the server blocks.
nginx_conf() { # dir, server blocks
    mkdir -p "$1/tmp"
    cat >"$1/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
error_log stderr;
pid $1/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    # The default (1000) closes every client connection after 1000
    # requests; no proxy under test does that, so lift it everywhere.
    keepalive_requests 1000000;
    keepalive_timeout 300s;
$2
}
EOF
}

# Sends GET requests on one keep-alive connection: each path in turn, once
# per line of PATHS_FILE. PROXY_HOST set: absolute-form through a forward
# proxy at PORT with that Host. Only a Host header is sent, as wrk does.
send_gets() { # port paths-file [proxy-host]
    python3 - "$@" <<'EOF'
import http.client, sys
port, paths, host = int(sys.argv[1]), open(sys.argv[2]).read().split(), (sys.argv[3] if len(sys.argv) > 3 else None)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for p in paths:
    if host:
        c.putrequest("GET", f"http://{host}{p}", skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", host)
    else:
        c.putrequest("GET", p, skip_accept_encoding=True)
    c.endheaders()
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"GET {p}: status {r.status}")
EOF
}
