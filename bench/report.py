"""Prints the stream benchmark's results (bench/out/results.jsonl) as Markdown tables."""

import json
import sys

OURS, PEER = "labthings-rs", "labthings-fastapi"


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            peer, size, fps = r["label"].split()
            rows[(peer, size, fps, r["viewers"], r["slow_viewers"])] = r
    return rows


def num(value, digits=1):
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


def ratio(theirs, ours):
    if not theirs or not ours or theirs != theirs or ours != ours:
        return "-"
    return f"{theirs / ours:.1f}x"


def main(path):
    rows = load(path)
    scenarios = sorted({k[1:] for k in rows}, key=lambda k: (k[3], k[0], k[1] != "30", k[2]))
    print("| frames | rate | viewers | server | fps per viewer (mean / min) | CPU us per frame | latency p50 / p99 ms | peak RSS MB | delivered MB/s | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, fps, viewers, slow in scenarios:
        if slow:
            continue
        for peer in (OURS, PEER):
            r = rows.get((peer, size, fps, viewers, slow))
            if r is None:
                continue
            print(
                f"| {size} | {fps} | {viewers} | {peer} | {num(r['fps_mean'])} / {num(r['fps_min'])} "
                f"| {num(r['cpu_us_per_frame'], 0)} | {num(r['latency_p50_ms'], 2)} / {num(r['latency_p99_ms'], 2)} "
                f"| {num(r['peak_rss_mb'])} | {num(r['throughput_mb_s'], 0)} | {r['errors']} |"
            )
        ours, theirs = rows.get((OURS, size, fps, viewers, slow)), rows.get((PEER, size, fps, viewers, slow))
        if ours and theirs:
            print(
                f"| | | | **ratio** (theirs/ours) | fps {ratio(ours['fps_mean'], theirs['fps_mean'])} "
                f"| {ratio(theirs['cpu_us_per_frame'], ours['cpu_us_per_frame'])} "
                f"| {ratio(theirs['latency_p50_ms'], ours['latency_p50_ms'])} / {ratio(theirs['latency_p99_ms'], ours['latency_p99_ms'])} "
                f"| {ratio(theirs['peak_rss_mb'], ours['peak_rss_mb'])} | {ratio(ours['throughput_mb_s'], theirs['throughput_mb_s'])} (ours/theirs) | |"
            )
    slow_rows = [s for s in scenarios if s[3]]
    if slow_rows:
        print()
        print("| frames | rate | normal + slow viewers | server | normal fps (mean / min) | slow viewer fps | slow latency p50 / max ms | slow send queue max kB (kernel) | errors |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size, fps, viewers, slow in slow_rows:
            for peer in (OURS, PEER):
                r = rows.get((peer, size, fps, viewers, slow))
                if r is None:
                    continue
                queue = r["slow_send_queue_max_bytes"]
                print(
                    f"| {size} | {fps} | {viewers} + {slow} | {peer} | {num(r['fps_mean'])} / {num(r['fps_min'])} "
                    f"| {num(r['slow_fps'])} | {num(r['slow_latency_p50_ms'], 0)} / {num(r['slow_latency_max_ms'], 0)} "
                    f"| {num(queue / 1024 if queue is not None else None, 0)} | {r['errors']} |"
                )


def check(path):
    """Fails (exit 1) unless every run of our server delivered frames without errors."""
    rows = load(path)
    ours = {k: r for k, r in rows.items() if k[0] == OURS}
    bad = [r["label"] for r in ours.values() if r["errors"] or not r["delivered_frames"]]
    if not ours or bad:
        print(f"benchmark check failed: runs of {OURS}: {len(ours)}, failing: {bad}")
        sys.exit(1)
    print(f"benchmark check: {len(ours)} runs of {OURS} delivered frames with no errors")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--check"]
    path = args[0] if args else "bench/out/results.jsonl"
    main(path)
    if "--check" in sys.argv:
        check(path)
