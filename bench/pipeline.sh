#!/usr/bin/env bash
# Frame pipeline benchmark (issues 17 and 25): 1920x1080 RGB8, Gray8, Gray16 and YUYV frames
# offered at 60 fps to the pipeline (examples/bench_pipeline.rs) with one viewer, with each JPEG
# encoder (jpeg-encoder, pure Rust; libjpeg-turbo, feature `turbojpeg`) and 1, 2 and 4
# workers, and with no viewer; Pillow's encoder (libjpeg-turbo) on the same frames at the same
# quality (bench/pillow_encode.py); and the microscope example's own CPU with no viewer, with
# one, and with pre-trigger history armed (bench/idle.py). Prints frames encoded per second, CPU
# per frame, frames per core, latency, and the ratios against Pillow and jpeg-encoder.
#
#   bench/pipeline.sh            the full run (5 s per run, 60 frames for Pillow, 10 s idle)
#   QUICK=1 bench/pipeline.sh    a smoke run (1 s per run, 10 frames, 3 s idle)
#
# Results: bench/out/pipeline.jsonl and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../tests/support/python-venv.sh
source tests/support/python-venv.sh
QUICK=${QUICK:-0}
OUT=bench/out
VENV=bench/.venv
mkdir -p "$OUT"
python_venv "$VENV" bench/requirements.txt
if [ "$QUICK" = 1 ]; then SECONDS_=1 FRAMES=10 IDLE=3; else SECONDS_=5 FRAMES=60 IDLE=10; fi
# One release feature set for every benchmark (libjpeg-turbo included): built once.
source tests/support/turbojpeg-deps.sh
cargo build -q --release --features turbojpeg --example bench_pipeline --example microscope
RESULTS="$OUT/pipeline.jsonl"
target/release/examples/bench_pipeline --seconds "$SECONDS_" --out "$OUT/pipeline" > "$RESULTS"
"$VENV/bin/python" bench/pillow_encode.py "$OUT/pipeline" "$FRAMES" >> "$RESULTS"
# The microscope example at rest and at work (the release build, in a folder of its own).
MICROSCOPE_BIN="$PWD/target/release/examples/microscope"
# shellcheck source=../tests/support/start-microscope.sh
source tests/support/start-microscope.sh
"$VENV/bin/python" bench/idle.py "$URL" "$MICROSCOPE_PID" "$IDLE" >> "$RESULTS"
python3 - "$RESULTS" ${BENCH_CHECK:+--check} <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
runs = [r for r in rows if "viewer" in r and r["run"] != "rgb8-overload"]
watched = {(r["run"], r["encoder"], r["workers"]): r for r in runs if r["viewer"]}
unwatched = {r["run"]: r for r in runs if not r["viewer"]}
peer = {r["run"]: r for r in rows if "peer" in r}
idle = {r["idle"]: r for r in rows if "idle" in r}
encoders = sorted({r["encoder"] for r in runs if r["viewer"]})
print(f"{'frames':7} {'encoder':14} {'workers':>7} {'encoded/s':>9} {'CPU %':>6} {'CPU ms/frame':>12} "
      f"{'frames/core/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'Pillow ms':>9} {'vs Pillow':>9}")
failed = []
for run in ["rgb8", "gray8", "gray16", "yuyv"]:
    for encoder in encoders:
        for workers in [1, 2, 4]:
            r = watched[(run, encoder, workers)]
            ms = r["cpu_ms_per_encoded_frame"]
            # Above 1: ours takes less CPU per frame than Pillow's libjpeg-turbo.
            ratio = peer[run]["cpu_ms_per_frame"] / ms
            print(f"{run:7} {encoder:14} {workers:7} {r['encoded_fps']:9.1f} {r['cpu_percent']:6.1f} {ms:12.2f} "
                  f"{1000 / ms:13.1f} {r['latency_ms_p50']:7.1f} {r['latency_ms_p99']:7.1f} "
                  f"{peer[run]['cpu_ms_per_frame']:9.2f} {ratio:9.2f}")
            # Honest floors for a smoke run on a shared 2-core machine: frames get through.
            if r["encoded_fps"] < 5:
                failed.append(f"{run} {encoder} x{workers}: only {r['encoded_fps']:.1f} frames/s encoded")
    if unwatched[run]["encoded_fps"] != 0:
        failed.append(f"{run}: frames encoded with no viewer")
    if unwatched[run]["cpu_percent"] > 15:
        failed.append(f"{run}: {unwatched[run]['cpu_percent']:.1f}% CPU with no viewer")
print(f"Pillow: {peer['rgb8']['peer']} (libjpeg-turbo), one thread, same frames and quality (85)")
if "libjpeg-turbo" in encoders:
    for run in ["rgb8", "gray8", "gray16", "yuyv"]:
        turbo = watched[(run, "libjpeg-turbo", 2)]["cpu_ms_per_encoded_frame"]
        pure = watched[(run, "jpeg-encoder", 2)]["cpu_ms_per_encoded_frame"]
        print(f"{run}: libjpeg-turbo {turbo:.2f} ms/frame = {turbo / peer[run]['cpu_ms_per_frame']:.2f}x Pillow's "
              f"(target 1.1x at most), {pure / turbo:.2f}x cheaper than jpeg-encoder (target 2.5x on RGB8); "
              f"60 fps uses {watched[(run, 'libjpeg-turbo', 2)]['cpu_percent']:.0f}% of a core (target under 100%)")
over = next(r for r in rows if r["run"] == "rgb8-overload")
print(f"overload (RGB8 offered at {over['fps']:.0f} fps, {over['encoder']}): {over['encoded_fps']:.1f} encoded/s, "
      f"{over['dropped_fps']:.1f} dropped/s (counted), resident memory grew {over['rss_growth_mib']:.1f} MiB")
if over["dropped_fps"] <= 0:
    failed.append("overload: no frame was dropped")
if over["rss_growth_mib"] > 200:
    failed.append(f"overload: memory grew {over['rss_growth_mib']:.0f} MiB")
for case, r in idle.items():
    print(f"microscope example, {case}: {r['cpu_percent']:.2f}% of a core over {r['seconds']:.0f} s")
rest = idle["no viewer, no history"]["cpu_percent"]
# The target is under 1%; a smoke run on a shared machine only checks that it is not working.
if rest > 5:
    failed.append(f"microscope at rest: {rest:.1f}% of a core")
if "--check" in sys.argv and failed:
    sys.exit("; ".join(failed))
PY
