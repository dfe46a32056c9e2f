#!/usr/bin/env python3
"""Sums an `ncu --csv --metrics gpu__time_duration.sum` log by kernel name: count, total and share of device time."""
import csv, sys, collections

SCALE = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3, "s": 1e6, "second": 1e6}

rows = []
with open(sys.argv[1], newline="") as f:
    lines = [l for l in f if l.startswith('"')]
for r in csv.DictReader(lines):
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    us = float(r["Metric Value"].replace(",", "")) * SCALE.get(r["Metric Unit"], 1.0)
    name = r["Kernel Name"].split("(")[0][:60]
    rows.append((name, us, r.get("Grid Size", ""), r.get("Block Size", "")))
tot = sum(u for _, u, _, _ in rows)
agg = collections.defaultdict(lambda: [0, 0.0])
for name, us, _, _ in rows:
    agg[name][0] += 1
    agg[name][1] += us
print(f"{len(rows)} kernels, {tot:.1f} us of kernel time (sum of durations, launch gaps excluded)")
for name, (n, us) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"{us:9.1f} us {100 * us / max(tot, 1e-9):5.1f}%  x{n:<4d} {name}")
