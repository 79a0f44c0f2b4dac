#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench` run as a Markdown table,
read from criterion's files (target/criterion/**/new/*.json).

usage: scripts/bench_table.py [CRITERION_DIR]   (default target/criterion)
"""

import json
import os
import sys


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(per_s, unit):
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_s >= scale:
            return f"{per_s / scale:.3g} {prefix}{unit}/s"
    return f"{per_s:.3g} {unit}/s"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
    rows = []
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            median = json.load(f)["median"]["point_estimate"]
        rate = ""
        throughput = bench.get("throughput") or {}
        if "Elements" in throughput:
            rate = fmt_rate(throughput["Elements"] / (median * 1e-9), "elem")
        elif "Bytes" in throughput:
            rate = f"{throughput['Bytes'] / (median * 1e-9) / 2**20:.3g} MiB/s"
        rows.append((bench["full_id"], fmt_time(median), rate))
    print("| benchmark | median | throughput |")
    print("|---|---:|---:|")
    for name, time, rate in sorted(rows):
        print(f"| `{name}` | {time} | {rate} |")


if __name__ == "__main__":
    main()
