#!/usr/bin/env bash
# Instructions per request of the capture proxy's threads, counted by
# valgrind's callgrind: the capture sink thread (which shares the app's
# core) and the request workers. Unlike time, the counts barely move with
# other load on a shared machine, so two builds can be compared closely.
# See bench/README.md.
#
#   bench/proxy_instructions.sh                          # the current build
#   bench/proxy_instructions.sh /tmp/tapwire-before /tmp/tapwire-after
#
# Each argument is a `tapwire` binary; with none, the current tree is built.
# The app is nginx returning a fixed 1 KiB body, as in proxy.sh. Knob: SECS
# (20) of `wrk -t1 -c8` through each proxy; under valgrind that is some
# 60,000-120,000 requests.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=proxy_instructions
SECS=${SECS:-20}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
. bench/lib.sh
for t in valgrind callgrind_annotate wrk curl python3; do
    command -v "$t" >/dev/null || die "missing $t (see bench/README.md)"
done
[[ -x $NGINX ]] || die "missing nginx at $NGINX"

bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
    log "building tapwire (release)…"
    cargo build -q --release -p tapwire-cli
    bins=("$CARGO_TARGET_DIR/release/tapwire")
fi

WORK=$(mktemp -d /tmp/tapwire-instr.XXXXXX)
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM

APP=$(free_port)
BODY=$(printf 'x%.0s' $(seq 1024))
nginx_conf "$WORK/app" "
    server {
        listen 127.0.0.1:$APP;
        location / { default_type text/plain; return 200 \"$BODY\"; }
    }"
"$NGINX" -p "$WORK/app" -c "$WORK/app/nginx.conf" 2>"$WORK/app.log" &
PIDS+=($!)
wait_port "$APP"

printf 'binary\trequests\tsink instructions/request\tworker instructions/request\n'
for b in "${bins[@]}"; do
    [[ -x $b ]] || die "not an executable: $b"
    run=$(mktemp -d "$WORK/run.XXXXXX")
    port=$(free_port)
    admin=$(free_port)
    # One output file per thread: the sink thread is the one that ran
    # `sink::run`, the workers the ones that ran tokio's worker loop.
    valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file="$run/cg.%p" \
        "$b" proxy --mode reverse --in-port "$port" --app-port "$APP" \
        --admin-port "$admin" --out "$run/capture" >"$run/tapwire.log" 2>&1 &
    pid=$!
    wait_port "$port" 600
    curl -sf -o /dev/null "http://127.0.0.1:$port/" || die "$b: no answer through the proxy"
    n=$(wrk -t1 -c8 -d"${SECS}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
    kill -INT "$pid"
    wait "$pid" || true
    sink=0 workers=0
    for f in "$run"/cg.*-*; do
        total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
        if grep -q 'tapwire_proxy::sink::run' "$f"; then
            sink=$((sink + total))
        elif grep -q 'multi_thread::worker::run' "$f"; then
            workers=$((workers + total))
        fi
    done
    ((n > 0)) || die "$b: wrk completed no request"
    awk -v b="$b" -v n="$n" -v s="$sink" -v w="$workers" \
        'BEGIN {printf "%s\t%d\t%.0f\t%.0f\n", b, n, s / n, w / n}'
done
