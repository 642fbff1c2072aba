#!/usr/bin/env bash
# H.264 beside MJPEG benchmark (issue 27).
#  1. examples/bench_h264.rs: the simulated camera's moving, noisy test pattern at 1280x720 and
#     1920x1080, 30 fps, encoded as H.264 (OpenH264) and as MJPEG with jpeg-encoder and with
#     libjpeg-turbo: bytes and CPU per frame.
#  2. The microscope example (release build) at 1280x720, 30 fps, with 10 viewers of the H.264
#     form and then 10 of the MJPEG stream (curl): the server's CPU.
#  3. The latency from capture to the decoded frame in headless Chromium (the web UI's player,
#     tests/browser/h264.test.mjs) at 1280x720 and 1920x1080.
#
#   bench/h264.sh            the full run (5 s per encoder run, 10 s per viewer run)
#   QUICK=1 bench/h264.sh    a smoke run (1 s, 3 s)
#
# Results: bench/out/h264.jsonl and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
OUT=bench/out
mkdir -p "$OUT"
if [ "$QUICK" = 1 ]; then SECONDS_=1 VIEWING=3; else SECONDS_=5 VIEWING=10; fi
# The benchmarks' one release feature set (the dev-dependencies add h264): built once.
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features turbojpeg --example bench_h264 --example microscope
RESULTS="$OUT/h264.jsonl"
target/release/examples/bench_h264 --seconds "$SECONDS_" > "$RESULTS"

CONFIG=$(mktemp --suffix=.json)
cat > "$CONFIG" <<'JSON'
{"things": {"camera": {"class": "simulated_camera", "kwargs": {"width": 1280, "height": 720, "fps": 30}}}}
JSON
MICROSCOPE_BIN="$PWD/target/release/examples/microscope"
# shellcheck source=../tests/support/start-microscope.sh
source tests/support/start-microscope.sh --config "$CONFIG"
cpu() { awk '{s += $1} END {printf "%.3f", s / 1e9}' /proc/"$MICROSCOPE_PID"/task/*/schedstat; }
for form in h264 mjpeg; do
  case $form in
    h264) path=camera/mjpeg_stream/h264 ;;
    mjpeg) path=camera/mjpeg_stream ;;
  esac
  BYTES=$(mktemp -d)
  VIEWERS=()
  for n in $(seq 1 10); do
    curl -s -o "$BYTES/$n" --max-time $((VIEWING + 2)) "$URL/$path" &
    VIEWERS+=($!)
  done
  sleep 1
  start=$(cpu)
  sleep "$VIEWING"
  end=$(cpu)
  # curl ends at --max-time (status 28): the viewers' own end, not a failure.
  for pid in "${VIEWERS[@]}"; do wait "$pid" || true; done
  received=$(du -sb "$BYTES" | cut -f1)
  rm -rf "$BYTES"
  python3 -c "import json,sys; print(json.dumps({'viewers': 10, 'form': sys.argv[1], 'size': '1280x720', \
'server_cpu_percent': (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4]) * 100, \
'received_mbit_per_s': int(sys.argv[5]) * 8 / (float(sys.argv[4]) + 2) / 1e6}))" \
    "$form" "$start" "$end" "$VIEWING" "$received" >> "$RESULTS"
done
stop_microscope

# Latency from capture to the decoded frame in Chromium (the web UI's WebCodecs player; the
# browser suite's test, which prints it), at 720p and 1080p.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -d tests/browser/node_modules ] || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
for size in 1280x720 1920x1080; do
  cat > "$CONFIG" <<JSON
{"things": {"camera": {"class": "simulated_camera", "kwargs": {"width": ${size%x*}, "height": ${size#*x}, "fps": 30}}}}
JSON
  # shellcheck source=../tests/support/start-microscope.sh
  source tests/support/start-microscope.sh --config "$CONFIG"
  SIZE=$size BENCH=1 node tests/browser/h264.test.mjs "$URL" "$OUT/h264-$size.png" 2>>"$RESULTS" >/dev/null || {
    echo "the H.264 player did not run at $size" >&2
    exit 1
  }
  stop_microscope
done
rm -f "$CONFIG"

python3 - "$RESULTS" ${BENCH_CHECK:+--check} <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
runs = {(r["size"], r["form"]): r for r in rows if "encoded" in r}
print(f"{'size':10} {'form':14} {'encoded/s':>9} {'kB/frame':>9} {'Mbit/s':>7} {'CPU ms/frame':>12} {'CPU %':>6} {'bytes vs MJPEG':>14}")
failed = []
for (size, form), r in runs.items():
    mjpeg = runs.get((size, "libjpeg-turbo")) or runs[(size, "jpeg-encoder")]
    ratio = r["bytes_per_frame"] / mjpeg["bytes_per_frame"]
    print(f"{size:10} {form:14} {r['encoded_fps']:9.1f} {r['bytes_per_frame'] / 1000:9.1f} {r['mbit_per_s']:7.2f} "
          f"{r['cpu_ms_per_frame']:12.2f} {r['cpu_percent']:6.1f} {ratio:14.3f}")
    if r["encoded_fps"] < 5:
        failed.append(f"{size} {form}: only {r['encoded_fps']:.1f} frames/s encoded")
h264_720 = runs[("1280x720", "h264")]
mjpeg_720 = runs.get(("1280x720", "libjpeg-turbo")) or runs[("1280x720", "jpeg-encoder")]
print(f"720p30: H.264 is {h264_720['bytes_per_frame'] / mjpeg_720['bytes_per_frame']:.3f} of MJPEG's bytes "
      f"(target at most 0.25); its encoder uses {h264_720['cpu_percent']:.0f}% of a core (target under 100%)")
for r in rows:
    if "viewers" in r:
        print(f"10 viewers of {r['form']:5} at {r['size']}: server CPU {r['server_cpu_percent']:.0f}% of a core, "
              f"{r['received_mbit_per_s']:.1f} Mbit/s received in all")
for r in rows:
    if "browser" in r:
        print(f"Chromium WebCodecs at {r['size']}: latency from capture to decoded frame p50 {r['latency_ms_p50']:.0f} ms, "
              f"p99 {r['latency_ms_p99']:.0f} ms ({r['frames']} frames)")
if "--check" in sys.argv and failed:
    sys.exit("; ".join(failed))
PY
