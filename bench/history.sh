#!/usr/bin/env bash
# Property history benchmark (issue 30): examples/bench_history.rs writes one property 10,000
# times a second with a history and without one (the peer), and a logged history at 100
# samples a second; it prints the cost per write, the CPU, the memory of a full history, and
# the disk log's CPU and bytes per sample.
#
#   bench/history.sh            the full run (5 s per paced run, 10 s for the log)
#   QUICK=1 bench/history.sh    a smoke run (1 s, 2 s)
#
# Results: bench/out/history.jsonl (its JSON line) and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
OUT=bench/out
mkdir -p "$OUT"
if [ "$QUICK" = 1 ]; then SECONDS_=1; else SECONDS_=5; fi
# The benchmarks' one release feature set: built once.
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features turbojpeg --example bench_history
# Through a file, not `tee /dev/stderr`: tee opens that path afresh, truncating a log file the
# caller's standard error goes to (it emptied .ci/run's whole log up to this point).
target/release/examples/bench_history --seconds "$SECONDS_" > "$OUT/history.txt"
cat "$OUT/history.txt"
tail -1 "$OUT/history.txt" > "$OUT/history.jsonl"
