#!/usr/bin/env bash
# GenICam benchmark (issue 24): Aravis's fake GigE Vision camera on loopback
# (arv-fake-gv-camera-0.8 -i 127.0.0.1) at its largest Mono16 size (2048x2048) and at
# 1920x1080 Mono8, at its highest rate, streamed through our GenicamCamera to one viewer
# (examples/bench_genicam.rs); then Aravis's own arv-camera-test-0.8 receiving the same streams,
# so that the figures show what our path adds on top of Aravis. Prints frames per second
# received, CPU per frame (ours split into receive and window+encode), latency p50/p99 from the
# buffer timestamp to the viewer, and the ratio of our receive CPU to arv-camera-test's.
#
#   bench/genicam.sh            the full run (5 s each)
#   QUICK=1 bench/genicam.sh    a smoke run (1 s each)
#
# Results: bench/out/genicam.jsonl and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
OUT=bench/out
mkdir -p "$OUT"
if [ "$QUICK" = 1 ]; then SECONDS_=1; else SECONDS_=5; fi
# shellcheck source=../tests/support/aravis-deps.sh
source tests/support/aravis-deps.sh
# shellcheck source=../tests/support/turbojpeg-deps.sh
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features aravis,turbojpeg --example bench_genicam
RESULTS="$OUT/genicam.jsonl"
pkill -f arv-fake-gv-camera-0.8 2>/dev/null || true
arv-fake-gv-camera-0.8 -i 127.0.0.1 >/dev/null 2>&1 &
CAMERA=$!
trap 'kill $CAMERA 2>/dev/null || true' EXIT
sleep 1
target/release/examples/bench_genicam --seconds "$SECONDS_" Mono16:2048x2048 Mono8:1920x1080 > "$RESULTS"
# The peer: Aravis's own test client on the same camera and settings, its CPU from the kernel.
python3 - "$SECONDS_" >> "$RESULTS" <<'PY'
import json, re, resource, subprocess, sys, time
seconds = max(2, int(float(sys.argv[1])) + 1)
for fmt, w, h in [("Mono16", 2048, 2048), ("Mono8", 1920, 1080)]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(
        ["arv-camera-test-0.8", "-n", "127.0.0.1", "-f", "1000", "-w", str(w), "-h", str(h),
         "--features", f"PixelFormat={fmt}", "--no-packet-socket", "-a", "--duration", str(seconds)],
        capture_output=True, text=True, timeout=seconds + 30).stdout
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
    completed = int(re.search(r"n_completed_buffers\s*=\s*(\d+)", out).group(1))
    failures = int(re.search(r"n_failures\s*=\s*(\d+)", out).group(1))
    rates = [int(r) for r in re.findall(r"^\s*(\d+) frames/s", out, re.M)]
    print(json.dumps({"peer": "arv-camera-test-0.8", "run": f"{fmt} {w}x{h}",
                      "fps_received": sum(rates) / len(rates) if rates else completed / elapsed,
                      "incomplete": failures,
                      "cpu_ms_per_frame": cpu_ms / completed if completed else float("nan")}))
PY
python3 - "$RESULTS" ${BENCH_CHECK:+--check} <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
ours = {r["run"]: r for r in rows if "peer" not in r}
peer = {r["run"]: r for r in rows if "peer" in r}
print(f"{'run':19} {'fps':>6} {'incomplete':>10} {'receive ms':>10} {'encode ms':>9} {'serve ms':>8} "
      f"{'p50 ms':>7} {'p99 ms':>7} | {'arv fps':>7} {'arv ms':>6} {'receive/arv':>11}")
failed = []
for run, r in ours.items():
    p = peer.get(run, {})
    ratio = r["cpu_ms_per_frame_receive"] / p["cpu_ms_per_frame"] if p.get("cpu_ms_per_frame") else float("nan")
    print(f"{run:19} {r['fps_received']:6.1f} {r['incomplete']:10d} {r['cpu_ms_per_frame_receive']:10.2f} "
          f"{r['cpu_ms_per_frame_encode']:9.2f} {r['cpu_ms_per_frame_serve']:8.2f} {r['latency_ms_p50']:7.1f} "
          f"{r['latency_ms_p99']:7.1f} | {p.get('fps_received', float('nan')):7.1f} "
          f"{p.get('cpu_ms_per_frame', float('nan')):6.2f} {ratio:11.2f}")
    # Honest floors for a smoke run on a shared 2-core machine: frames get through, whole.
    if r["fps_received"] < 1:
        failed.append(f"{run}: only {r['fps_received']:.1f} frames/s received")
    if r["fps_viewed"] < 1:
        failed.append(f"{run}: only {r['fps_viewed']:.1f} frames/s reached the viewer")
print("receive: Aravis's stream thread and ours (a copy of each buffer into a frame); encode: the "
      "frame pipeline's workers (16-bit window and JPEG); serve: the rest of the process. "
      "receive/arv: our receive CPU per frame over arv-camera-test-0.8's whole CPU per frame.")
if "--check" in sys.argv and failed:
    print("FAILED:", *failed, sep="\n  ")
    sys.exit(1)
PY
