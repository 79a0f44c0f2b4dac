#!/usr/bin/env python3
"""`lrtop attach --no-follow --summary` on a big JSONL log, side by side
with what a user would otherwise run: a plain Python `json.loads` loop, and
polars' `read_ndjson` / pandas' `read_json(lines=True)` selecting the same
columns when they are installed.

Every command is a whole process timed from the outside (start-up, parsing,
for lrtop also the monitor, the store and the schedule fit), REPS times,
alternating, on a file in the page cache. Reports the median wall time of
each, its spread (min-max), the ratio to lrtop and the peak RSS (from
/usr/bin/time -v when present).

usage: scripts/bench_cold_load.py [FILE] [REPS]
  FILE defaults to /tmp/lrtop_big.jsonl (made by gen_big_jsonl.py if missing)
  env: LRTOP (default target/release/lrtop), PYTHON (default: this interpreter),
       BENCH_JSONL (append one JSON line per peer to this file: scripts/bench_all.sh)
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

POLARS = """
import sys, polars as pl
df = pl.read_ndjson(sys.argv[1], infer_schema_length=10000, ignore_errors=True)
cols = [c for c in ("step", "loss", "learning_rate") if c in df.columns]
print("ROWS", df.select(cols).height, "LOSS", df["loss"].drop_nulls().len())
"""

PANDAS = """
import sys, pandas as pd
df = pd.read_json(sys.argv[1], lines=True)
print("ROWS", len(df[["step", "loss", "learning_rate"]]), "LOSS", int(df["loss"].notna().sum()))
"""


def has(python, module):
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def run(cmd):
    timer = "/usr/bin/time"
    use_time = os.access(timer, os.X_OK)
    full = ([timer, "-v"] if use_time else []) + cmd
    started = time.perf_counter()
    proc = subprocess.run(full, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {"wall_s": wall, "rss_mb": int(m.group(1)) / 1024 if m else float("nan"),
            "stdout": proc.stdout}


def loss_points(name, out):
    if name == "lrtop":
        return json.loads(out.splitlines()[0])["points"]["loss"]
    if name == "python":
        return int(re.search(r"loss_points=(\d+)", out).group(1))
    return int(re.search(r"LOSS (\d+)", out).group(1))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lrtop_big.jsonl"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    python = os.environ.get("PYTHON", sys.executable)
    lrtop = os.environ.get("LRTOP", os.path.join(ROOT, "target/release/lrtop"))
    if not os.access(lrtop, os.X_OK):
        sys.exit(f"no {lrtop}: build it with `cargo build --release`")
    if not os.path.exists(path):
        subprocess.run([python, os.path.join(ROOT, "scripts/gen_big_jsonl.py"), path],
                       check=True)
    with open(path, "rb") as f:  # into the page cache, for every command
        while f.read(1 << 24):
            pass
    commands = {
        "lrtop": [lrtop, "attach", "--no-follow", "--summary", "--fail-on", "never", path],
        "python": [python, os.path.join(ROOT, "scripts/py_baseline_load.py"), path],
    }
    if has(python, "polars"):
        commands["polars"] = [python, "-c", POLARS, path]
    if has(python, "pandas"):
        commands["pandas"] = [python, "-c", PANDAS, path]
    results = {name: [] for name in commands}
    for i in range(reps):
        for name, cmd in commands.items():
            results[name].append(run(cmd))
        print(f"rep {i + 1}: " + ", ".join(
            f"{n} {r[-1]['wall_s']:.2f} s" for n, r in results.items()), flush=True)
    points = {n: loss_points(n, r[0]["stdout"]) for n, r in results.items()}
    lines = sum(1 for _ in open(path, "rb"))
    med = lambda runs: statistics.median(r["wall_s"] for r in runs)
    base = med(results["lrtop"])
    print(f"\nfile: {path} ({os.path.getsize(path) / 1e6:.0f} MB, {lines} lines), "
          f"{reps} reps each, alternating, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'':8} {'median wall':>12} {'spread':>16} {'peak RSS':>10} {'lrtop is':>10}  loss points")
    for name, runs in results.items():
        walls = [r["wall_s"] for r in runs]
        print(f"{name:8} {med(runs):>10.3f} s {min(walls):>7.3f}-{max(walls):.3f} s "
              f"{max(r['rss_mb'] for r in runs):>7.0f} MB {med(runs) / base:>9.1f}x  {points[name]}")
    print("command: " + " ".join(commands["lrtop"]))
    if os.environ.get("BENCH_JSONL"):
        walls = lambda name: [r["wall_s"] for r in results[name]]
        with open(os.environ["BENCH_JSONL"], "a") as out:
            for name in results:
                if name == "lrtop":
                    continue
                out.write(json.dumps({
                    "figure": f"attach --summary, {lines:,} lines ({os.path.getsize(path) / 1e6:.0f} MB), s (lower is better)",
                    "threads": os.cpu_count(), "peer": name, "lower_is_better": True,
                    "lrtop": walls("lrtop"), "other": walls(name),
                    "command": " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                                        for c in commands["lrtop"]),
                }) + "\n")


if __name__ == "__main__":
    main()
