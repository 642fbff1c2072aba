"""Prints the events benchmark's table: ours beside labthings-fastapi, with ratios.

Usage: python events_report.py RESULTS.jsonl RATE [--check]
With --check, exits 1 unless our server delivered every event to every subscriber without an
error (the CI smoke run's check; the figures themselves are for the README, not for CI).
"""

import json
import sys

rows = {json.loads(line)["label"]: json.loads(line) for line in open(sys.argv[1]) if line.strip()}
rate = float(sys.argv[2])
ours, theirs = rows.get("labthings-rs"), rows.get("labthings-fastapi")


def fmt(value, digits=1):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


print(f"| server | transport | subscribers | events/s offered / emitted | delivered/s (all) | slowest subscriber /s | missed | latency p50 / p99 ms | CPU us per delivered event | peak RSS MB | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for row in (ours, theirs):
    if row is None:
        continue
    print(
        f"| {row['label']} | {row['protocol']} | {row['subscribers']} | {fmt(rate, 0)} / {fmt(row.get('emitted_per_s'), 0)} "
        f"| {fmt(row['delivered_per_s'], 0)} | {fmt(row['per_subscriber_min_per_s'], 0)} | {row['missed']} "
        f"| {fmt(row['latency_p50_ms'], 2)} / {fmt(row['latency_p99_ms'], 2)} "
        f"| {fmt(row['cpu_us_per_event'], 2)} | {fmt(row['peak_rss_mb'])} | {row['errors']} |"
    )
if ours and theirs:
    def ratio(key, inverse=False):
        a, b = ours.get(key), theirs.get(key)
        if not a or not b:
            return "-"
        return f"{(a / b) if inverse else (b / a):.1f}x"

    print(
        f"| **ratio** (theirs/ours) | | | | {ratio('delivered_per_s', inverse=True)} (ours/theirs) | | "
        f"| {ratio('latency_p50_ms')} / {ratio('latency_p99_ms')} | {ratio('cpu_us_per_event')} "
        f"| {ratio('peak_rss_mb')} | |"
    )

if "--check" in sys.argv:
    if ours is None or ours["errors"] or ours["missed"] or not ours["delivered_per_s"]:
        print("events benchmark check FAILED: our server lost events or had errors", file=sys.stderr)
        sys.exit(1)
    print(f"events benchmark check: {ours['subscribers']} subscribers got every event, no errors")
