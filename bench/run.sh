#!/usr/bin/env bash
# The MJPEG stream benchmark: our server and labthings-fastapi 0.3.0, side by side, on the same
# pre-encoded frames, with the load generator in its own process. Prints a table with ratios.
#
#   bench/run.sh            the full run (about 7 minutes on 2 cores)
#   QUICK=1 bench/run.sh    a short smoke run (a few scenarios, 1 s each)
#
# Results: bench/out/results.jsonl (one JSON line per run) and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../tests/support/python-venv.sh
source tests/support/python-venv.sh
QUICK=${QUICK:-0}
OUT=bench/out
VENV=bench/.venv
PORT=${BENCH_PORT:-5187}
mkdir -p "$OUT"

python_venv "$VENV" bench/requirements.txt

# One release feature set for every benchmark (libjpeg-turbo included): built once.
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features turbojpeg --example bench_stream
BIN=target/release/examples/bench_stream
"$BIN" frames --out "$OUT/frames"

RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

start_server() { # peer size fps
  local peer=$1 size=$2 fps=$3
  if [ "$peer" = labthings-rs ]; then
    "$BIN" serve --frames "$OUT/frames/$size" --fps "$fps" --port "$PORT" &
  else
    BENCH_FRAMES="$OUT/frames/$size" BENCH_FPS="$fps" "$VENV/bin/python" bench/peer_server.py "$PORT" &
  fi
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/camera/mjpeg_stream/viewer"; then return 0; fi
    sleep 0.1
  done
  echo "server $peer did not start" >&2
  return 1
}

run() { # peer size fps viewers slow warmup seconds
  local peer=$1 size=$2 fps=$3 viewers=$4 slow=$5 warmup=$6 seconds=$7
  start_server "$peer" "$size" "$fps"
  "$BIN" load --url "http://127.0.0.1:$PORT/camera/mjpeg_stream" --pid "$SERVER_PID" \
    --viewers "$viewers" --slow "$slow" --warmup "$warmup" --seconds "$seconds" \
    --label "$peer $size $fps" | tee -a "$RESULTS"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  sleep 0.5
}

if [ "$QUICK" = 1 ]; then
  for peer in labthings-rs labthings-fastapi; do
    run "$peer" 640x480 30 10 0 1 1
    run "$peer" 640x480 30 5 1 1 2
  done
else
  for peer in labthings-rs labthings-fastapi; do
    for size in 640x480 1280x720; do
      # 10000 fps offered is more than any viewer takes: delivery is limited by the server,
      # not the camera, without a producer spinning on one of the two cores.
      for fps in 30 10000; do
        for viewers in 1 10 100; do
          run "$peer" "$size" "$fps" "$viewers" 0 2 5
        done
      done
      # Slow viewers beside normal ones: long enough for the peer's queues to fill.
      run "$peer" "$size" 30 10 2 5 25
    done
  done
fi

"$VENV/bin/python" bench/report.py "$RESULTS" ${BENCH_CHECK:+--check}
