#!/usr/bin/env bash
# Records a small service and its HTTPS dependency with `tapwire record`, then
# shows what was captured. Everything runs on loopback. (The full
# record → mock → replay loop arrives with `tapwire demo`.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tapwire-target}
cargo build -q -p tapwire-cli --manifest-path "$root/Cargo.toml"
tapwire="$CARGO_TARGET_DIR/debug/tapwire"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

app_port=${APP_PORT:-18080} dep_port=${DEP_PORT:-18443}
in_port=${IN_PORT:-4143} out_port=${OUT_PORT:-4140} admin_port=${ADMIN_PORT:-4145}

# A private CA for the dependency's own certificate (what a real upstream
# would get from a public CA); tapwire verifies it with --extra-ca.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=quickstart dependency CA" \
  -keyout "$work/dep-ca.key" -out "$work/dep-ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$work/dep.key" -out "$work/dep.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$work/ext"
openssl x509 -req -in "$work/dep.csr" -CA "$work/dep-ca.crt" -CAkey "$work/dep-ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext" -out "$work/dep.crt" 2>/dev/null

python3 "$root/examples/quickstart/payments.py" "$dep_port" "$work/dep.crt" "$work/dep.key" & pids+=($!)

echo "== recording orders (app on :$app_port) and its calls to payments (https://localhost:$dep_port)"
"$tapwire" record --service orders --app-port "$app_port" --in-port "$in_port" --out-port "$out_port" \
  --admin-port "$admin_port" --out "$work/recording" --ca-dir "$work/ca" --extra-ca "$work/dep-ca.crt" \
  -- python3 "$root/examples/quickstart/orders.py" "$app_port" "https://localhost:$dep_port" & rec=$!
pids+=($rec)

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && (exec 3<>"/dev/tcp/127.0.0.1/$app_port") 2>/dev/null && break
  sleep 0.1
done

echo "== sending traffic through the inbound listener :$in_port"
for id in 1 2 3; do curl -fsS "http://127.0.0.1:$in_port/orders/$id"; echo; done
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"id": 4, "amount": 1250}' "http://127.0.0.1:$in_port/orders"; echo
curl -fsS "http://127.0.0.1:$in_port/quit" >/dev/null
wait "$rec"

echo "== what tapwire captured"
"$tapwire" inspect "$work/recording"
first=$("$tapwire" inspect "$work/recording" --direction outbound --json | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "== one outbound exchange in full (TLS intercepted)"
"$tapwire" inspect "$work/recording" "$first"
