#!/usr/bin/env bash
# Recording benchmark: one 1280x720 stream at 30 fps to 100 viewers, without and then with a
# recording of the stream running (record_<stream>'s code: byte-exact JPEGs into AVI, a CSV
# index), load generator in its own process. Prints the viewers' frame rate and latency in
# both runs, the server CPU the recording adds per recorded frame, and disk bytes per frame.
#
#   bench/record.sh            the full run (about half a minute)
#   QUICK=1 bench/record.sh    a short smoke run (10 viewers, 2 s)
#
# Results: bench/out/record.jsonl and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
OUT=bench/out
PORT=${BENCH_PORT:-5189}
mkdir -p "$OUT"
# One release feature set for every benchmark (libjpeg-turbo included): built once.
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features turbojpeg --example bench_stream
BIN=target/release/examples/bench_stream
"$BIN" frames --out "$OUT/frames"
RECORD_DIR=$(mktemp -d)
RESULTS="$OUT/record.jsonl"
: > "$RESULTS"
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$RECORD_DIR"; }
trap cleanup EXIT
if [ "$QUICK" = 1 ]; then VIEWERS=10 WARMUP=1 SECONDS_=2; else VIEWERS=100 WARMUP=3 SECONDS_=10; fi

run() { # label [--record DIR --record-seconds S]
  local label=$1; shift
  "$BIN" serve --frames "$OUT/frames/1280x720" --fps 30 --port "$PORT" "$@" 2>"$OUT/record-server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/camera/mjpeg_stream/viewer"; then break; fi
    sleep 0.1
  done
  # The recording thread's own CPU time (ns, from schedstat), sampled while it runs.
  : > "$OUT/recorder-cpu-ns"
  ( while kill -0 "$SERVER_PID" 2>/dev/null; do
      for task in /proc/"$SERVER_PID"/task/*; do
        if [ "$(cat "$task/comm" 2>/dev/null)" = "labthings-recor" ]; then
          cut -d' ' -f1 "$task/schedstat" > "$OUT/recorder-cpu-ns.tmp" 2>/dev/null &&
            mv "$OUT/recorder-cpu-ns.tmp" "$OUT/recorder-cpu-ns"
        fi
      done
      sleep 0.1
    done ) &
  "$BIN" load --url "http://127.0.0.1:$PORT/camera/mjpeg_stream" --pid "$SERVER_PID" \
    --viewers "$VIEWERS" --warmup "$WARMUP" --seconds "$SECONDS_" --label "$label" | tee -a "$RESULTS"
  # Let the recording (which ran for exactly the measured time and warm-up) close its files.
  sleep 1.5
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  sleep 0.5
}

run plain
run recording --record "$RECORD_DIR" --record-seconds "$(python3 -c "print($WARMUP + $SECONDS_)")"

python3 - "$RESULTS" "$RECORD_DIR" "$WARMUP" "$OUT/recorder-cpu-ns" ${BENCH_CHECK:+--check} <<'PY'
import json, pathlib, sys
rows = {row["label"]: row for row in map(json.loads, open(sys.argv[1]))}
folder = pathlib.Path(sys.argv[2])
avi = next(folder.glob("*.avi"))
frames = len(next(folder.glob("*.csv")).read_text().splitlines()) - 1
recorded_bytes = avi.stat().st_size
plain, recording = rows["plain"], rows["recording"]
# The recording runs through warm-up and measurement; the CPU compared is the measured part.
warmup = float(sys.argv[3])
recorded_in_measure = frames * recording["seconds"] / (recording["seconds"] + warmup)
extra_cpu = recording["cpu_seconds"] - plain["cpu_seconds"]
print("| run | viewers | fps per viewer (min) | latency p50 / p99 ms | server CPU s | peak RSS MB |")
print("|---|---|---|---|---|---|")
for name, row in (("no recording", plain), ("recording", recording)):
    print(f"| {name} | {row['viewers']} | {row['fps_mean']:.1f} ({row['fps_min']:.1f}) | "
          f"{row['latency_p50_ms']:.2f} / {row['latency_p99_ms']:.2f} | {row['cpu_seconds']:.3f} | {row['peak_rss_mb']:.1f} |")
print(f"recorded {frames} frames, {recorded_bytes} bytes: {recorded_bytes / frames:.0f} bytes per frame on disk "
      f"(the stream's own JPEGs plus 8 bytes of chunk header and 16 of index each)")
thread_ns = int(open(sys.argv[4]).read().strip() or 0)
print(f"CPU of the recording's writer thread: {thread_ns / 1e3 / frames:.1f} us per recorded frame "
      f"({thread_ns / 1e9:.3f} s for {frames} frames, from its schedstat)")
print(f"server CPU with and without the recording differs by {extra_cpu:+.3f} s over about "
      f"{recorded_in_measure:.0f} recorded frames (two runs: noisy)")
if "--check" in sys.argv:
    assert plain["errors"] == 0 and recording["errors"] == 0, rows
    assert recording["fps_min"] >= 24, recording
    assert frames > 0, frames
    print("record benchmark checks passed")
PY
