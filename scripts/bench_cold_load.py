#!/usr/bin/env python3
"""Cold load of a big JSONL log: lrtop's loader against a plain Python
`json.loads` loop reading the same fields, side by side in one go.

Runs both REPS times, alternating, on a file in the page cache, and reports
the median load time of each (timed inside each program, so process start-up
is left out), the median wall time of each process, their ratio, and the peak
RSS of each (from /usr/bin/time -v when present, else self-reported).

usage: scripts/bench_cold_load.py [FILE] [REPS]
  FILE defaults to /tmp/lrtop_big.jsonl (made by gen_big_jsonl.py if missing)
  env: CARGO_TARGET_DIR (default target), PYTHON (default: this interpreter)
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_rust_probe():
    out = subprocess.run(
        ["cargo", "test", "--release", "--test", "ingest_perf", "--no-run",
         "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
                and msg["target"]["name"] == "ingest_perf"):
            return msg["executable"]
    sys.exit("could not find the ingest_perf test binary")


def run(cmd, env, tag):
    timer = "/usr/bin/time"
    use_time = os.access(timer, os.X_OK)
    full = ([timer, "-v"] if use_time else []) + cmd
    started = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
    line = next(l for l in proc.stdout.splitlines() if tag in l)
    fields = dict(kv.split("=", 1) for kv in line[line.index(tag):].split()[1:])
    rss_kb = int(fields["peak_rss_kb"])
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m:
        rss_kb = int(m.group(1))
    return {
        "load_s": float(fields["seconds"]),
        "wall_s": wall,
        "rss_mb": rss_kb / 1024,
        "records": int(fields["records"]),
        "loss_points": int(fields["loss_points"]),
    }


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lrtop_big.jsonl"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    python = os.environ.get("PYTHON", sys.executable)
    if not os.path.exists(path):
        subprocess.run([python, os.path.join(ROOT, "scripts/gen_big_jsonl.py"), path],
                       check=True)
    probe = build_rust_probe()
    with open(path, "rb") as f:  # into the page cache, for both
        while f.read(1 << 24):
            pass
    size_mb = os.path.getsize(path) / 1e6
    env = dict(os.environ, LRTOP_BIG_JSONL=path, LRTOP_REPS="1")
    py_cmd = [python, os.path.join(ROOT, "scripts/py_baseline_load.py"), path]
    rust_cmd = [probe, "--ignored", "--exact", "cold_load_big_jsonl", "--nocapture",
                "--test-threads=1"]
    results = {"python": [], "lrtop": []}
    for i in range(reps):
        results["python"].append(run(py_cmd, env, "PY_RESULT"))
        results["lrtop"].append(run(rust_cmd, env, "LRTOP_RESULT"))
        print(f"rep {i + 1}: python {results['python'][-1]['load_s']:.2f} s, "
              f"lrtop {results['lrtop'][-1]['load_s']:.3f} s", flush=True)
    py, rs = results["python"], results["lrtop"]
    assert py[0]["loss_points"] == rs[0]["loss_points"], (py[0], rs[0])
    med = lambda runs, key: statistics.median(r[key] for r in runs)
    print(f"\nfile: {path} ({size_mb:.0f} MB, {rs[0]['records']} lines), "
          f"{reps} reps each, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'':8} {'load (median)':>14} {'process wall':>13} {'peak RSS':>10}")
    for name, runs in (("python", py), ("lrtop", rs)):
        print(f"{name:8} {med(runs, 'load_s'):>12.3f} s {med(runs, 'wall_s'):>11.3f} s "
              f"{max(r['rss_mb'] for r in runs):>7.0f} MB")
    print(f"ratio (python / lrtop): load {med(py, 'load_s') / med(rs, 'load_s'):.1f}x, "
          f"process wall {med(py, 'wall_s') / med(rs, 'wall_s'):.1f}x")


if __name__ == "__main__":
    main()
