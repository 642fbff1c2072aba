#!/usr/bin/env bash
# The events benchmark: one Thing emitting 1,000 events/s to 100 subscribers. Ours over
# Server-Sent Events; labthings-fastapi 0.3.0's websocket property notifications beside it (it
# has no events). The load generator runs in its own process. Prints a table with ratios.
#
#   bench/events.sh            the full run (about a minute)
#   QUICK=1 bench/events.sh    a smoke run (20 subscribers, 1 s)
#
# Results: bench/out/events.jsonl (one JSON line per run) and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../tests/support/python-venv.sh
source tests/support/python-venv.sh
QUICK=${QUICK:-0}
OUT=bench/out
VENV=bench/.venv
PORT=${BENCH_PORT:-5191}
RATE=${BENCH_RATE:-1000}
mkdir -p "$OUT"

python_venv "$VENV" bench/requirements.txt

# One release feature set for every benchmark (libjpeg-turbo included): built once.
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features turbojpeg --example bench_events
BIN=target/release/examples/bench_events

RESULTS="$OUT/events.jsonl"
: > "$RESULTS"
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

if [ "$QUICK" = 1 ]; then
  SUBSCRIBERS=20 WARMUP=1 SECONDS_MEASURED=1
else
  SUBSCRIBERS=100 WARMUP=3 SECONDS_MEASURED=10
fi

for peer in labthings-rs labthings-fastapi; do
  if [ "$peer" = labthings-rs ]; then
    "$BIN" serve --rate "$RATE" --port "$PORT" &
    protocol=sse
  else
    # Its log (tracebacks as the load generator disconnects) goes to a file, not the CI log.
    BENCH_RATE="$RATE" "$VENV/bin/python" bench/peer_events.py "$PORT" 2>"$OUT/peer_events.log" &
    protocol=labthings-ws
  fi
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/ticker/"; then break; fi
    sleep 0.1
  done
  "$BIN" load --url "http://127.0.0.1:$PORT" --protocol "$protocol" --pid "$SERVER_PID" \
    --subscribers "$SUBSCRIBERS" --warmup "$WARMUP" --seconds "$SECONDS_MEASURED" \
    --label "$peer" | tee -a "$RESULTS"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  sleep 0.5
done

"$VENV/bin/python" bench/events_report.py "$RESULTS" "$RATE" ${BENCH_CHECK:+--check}
