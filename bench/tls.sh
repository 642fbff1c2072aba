#!/usr/bin/env bash
# HTTPS benchmark: one stream (640x480, 30 fps) to 100 viewers over plain HTTP, over HTTPS with
# HTTP/1.1 and over HTTPS with HTTP/2 (each viewer its own connection), with the load generator
# in its own process. Prints server CPU per delivered frame, latency and the ratio to plain HTTP.
#
#   bench/tls.sh            the full run (about a minute)
#   QUICK=1 bench/tls.sh    a short smoke run (10 viewers, 2 s each)
#
# Results: bench/out/tls.jsonl (one JSON line per run) and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
OUT=bench/out
PORT=${BENCH_PORT:-5188}
mkdir -p "$OUT"
# One release feature set for every benchmark (libjpeg-turbo included): built once.
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features turbojpeg --example bench_stream
BIN=target/release/examples/bench_stream
"$BIN" frames --out "$OUT/frames"
TLS_DIR=$(mktemp -d)
RESULTS="$OUT/tls.jsonl"
: > "$RESULTS"
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$TLS_DIR"; }
trap cleanup EXIT

run() { # mode viewers warmup seconds
  local mode=$1 viewers=$2 warmup=$3 seconds=$4 scheme=http tls=() load=()
  if [ "$mode" != http ]; then
    scheme=https
    tls=(--tls-dir "$TLS_DIR")
    load=(--ca "$TLS_DIR/cert.pem")
    [ "$mode" = h2 ] && load+=(--http2)
  fi
  "$BIN" serve --frames "$OUT/frames/640x480" --fps 30 --port "$PORT" "${tls[@]}" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -sk -o /dev/null "$scheme://127.0.0.1:$PORT/camera/mjpeg_stream/viewer"; then break; fi
    sleep 0.1
  done
  "$BIN" load --url "$scheme://127.0.0.1:$PORT/camera/mjpeg_stream" --pid "$SERVER_PID" \
    --viewers "$viewers" --warmup "$warmup" --seconds "$seconds" "${load[@]}" \
    --label "$mode" | tee -a "$RESULTS"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  sleep 0.5
}

if [ "$QUICK" = 1 ]; then
  for mode in http h1 h2; do run "$mode" 10 1 2; done
else
  for mode in http h1 h2; do run "$mode" 100 3 10; done
fi

python3 - "$RESULTS" ${BENCH_CHECK:+--check} <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
names = {"http": "plain HTTP/1.1", "h1": "HTTPS, HTTP/1.1", "h2": "HTTPS, HTTP/2"}
plain = next(row for row in rows if row["label"] == "http")
print("| transport | viewers | fps per viewer (min) | CPU us per frame | x plain | p50 / p99 ms | peak RSS MB | errors |")
print("|---|---|---|---|---|---|---|---|")
for row in rows:
    print(f"| {names[row['label']]} | {row['viewers']} | {row['fps_mean']:.1f} ({row['fps_min']:.1f}) "
          f"| {row['cpu_us_per_frame']:.1f} | {row['cpu_us_per_frame'] / plain['cpu_us_per_frame']:.2f} "
          f"| {row['latency_p50_ms']:.2f} / {row['latency_p99_ms']:.2f} | {row['peak_rss_mb']:.1f} | {row['errors']} |")
if "--check" in sys.argv:
    for row in rows:
        assert row["errors"] == 0, row
        # Every viewer keeps up with the 30 fps camera (a little slack for a busy machine).
        assert row["fps_min"] >= 24, row
    print("tls benchmark checks passed")
PY
