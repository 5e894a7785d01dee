#!/usr/bin/env bash
# Instructions per byte of the DLP redactor, counted by valgrind's callgrind:
# unlike time, the count does not move with other load on a shared machine,
# so two builds can be compared exactly. See bench/README.md.
#
#   bench/dlp_instructions.sh                       # the current build
#   bench/dlp_instructions.sh /tmp/dlp_bench-before /tmp/dlp_bench-after
#
# Each argument is a `dlp_bench` binary (crates/dlp/examples/dlp_bench.rs);
# with none, the current tree is built. Knob: ITERS (4) redactions counted
# per case; a run with 0 is subtracted, which removes generating the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

ITERS=${ITERS:-4}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
command -v valgrind >/dev/null || { echo "needs valgrind (apt install valgrind)" >&2; exit 1; }

bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
  echo "building the bench (release)…" >&2
  cargo build -q --release -p tapwire-dlp --example dlp_bench
  bins=("$CARGO_TARGET_DIR/release/examples/dlp_bench")
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
count() { # binary iters case → instructions
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" --iters "$2" --case "$3" >/dev/null 2>&1
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

printf 'binary\tcase\tbytes\tinstructions/byte\n'
for b in "${bins[@]}"; do
  for c in json_clean json_sparse json_personal; do
    bytes=$("$b" --secs 0.01 --case "$c" | awk -F'\t' -v c="$c" '$1 == c {print $2}')
    if [ -z "$bytes" ]; then # an older build without this case
      printf '%s\t%s\t-\t-\n' "$b" "$c"
      continue
    fi
    base=$(count "$b" 0 "$c")
    total=$(count "$b" "$ITERS" "$c")
    awk -v b="$b" -v c="$c" -v n="$bytes" -v t="$total" -v z="$base" -v i="$ITERS" \
      'BEGIN {printf "%s\t%s\t%d\t%.2f\n", b, c, n, (t - z) / i / n}'
  done
done
