#!/usr/bin/env python3
"""Cold load of a big TensorBoard event file: `lrtop attach FILE --no-follow
--summary` against tensorboard's own EventAccumulator (Reload, then every
scalar tag's Scalars), side by side in one go.

Both are timed as whole processes (start-up included), REPS times,
alternating, on a file in the page cache; the report gives each median,
the ratio and each peak RSS (/usr/bin/time -v).

usage: scripts/bench_tfevents.py [SCALARS] [REPS]
  SCALARS (default 2000000) scalars in 4 tags, written once to
  /tmp/lrtop_bench/events.out.tfevents.bench by tensorboard's EventFileWriter.
  env: PYTHON (an interpreter with tensorboard; default: this one),
       LRTOP (default target/release/lrtop)
"""

import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.environ.get("PYTHON", sys.executable)
LRTOP = os.environ.get("LRTOP", os.path.join(ROOT, "target/release/lrtop"))

WRITE = r"""
import math, os, sys
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
n, out = int(sys.argv[1]), sys.argv[2]
steps = n // 4
w = EventFileWriter(out)
for s in range(steps):
    lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * s / steps))
    loss = 2.3 * math.exp(-s / (steps / 5)) + 0.05 * math.sin(s)
    for tag, v in (("train/loss", loss), ("train/lr", lr), ("grad_norm", 1 + 0.1 * math.cos(s)), ("epoch", s / 1000)):
        e = event_pb2.Event(wall_time=1.7e9 + s * 0.01, step=s)
        e.summary.value.add(tag=tag, simple_value=v)
        w.add_event(e)
w.close()
"""

READ = r"""
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
ea.Reload()
print(sum(len(ea.Scalars(t)) for t in ea.Tags()["scalars"]))
"""


def make(n):
    d = f"/tmp/lrtop_bench/tfevents_{n}"
    os.makedirs(d, exist_ok=True)
    files = [f for f in os.listdir(d) if "tfevents" in f]
    if not files:
        print(f"writing {n} scalars with tensorboard's EventFileWriter ...", file=sys.stderr)
        subprocess.run([PYTHON, "-c", WRITE, str(n), d], check=True)
        files = [f for f in os.listdir(d) if "tfevents" in f]
    return os.path.join(d, files[0])


def timed(cmd):
    timer = "/usr/bin/time"
    full = ([timer, "-v"] if os.access(timer, os.X_OK) else []) + cmd
    t0 = time.perf_counter()
    p = subprocess.run(full, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd} failed:\n{p.stdout}\n{p.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return wall, (int(m.group(1)) / 1024 if m else float("nan")), p.stdout


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    path = make(n)
    with open(path, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass
    lr, tb = [], []
    for _ in range(reps):
        w, rss, out = timed([LRTOP, "attach", path, "--no-follow", "--summary"])
        records = int(re.search(r'"records":(\d+)', out).group(1))
        lr.append((w, rss))
        w, rss, out = timed([PYTHON, "-c", READ, path])
        tb.append((w, rss))
        points = int(out.strip())
    ml = statistics.median(x[0] for x in lr)
    mt = statistics.median(x[0] for x in tb)
    print(f"file: {path} ({os.path.getsize(path) / 1e6:.0f} MB, {n} scalars)")
    print(f"lrtop attach --no-follow --summary: median {ml:.3f} s over {reps} runs "
          f"(all {', '.join(f'{x[0]:.3f}' for x in lr)}), peak RSS {max(x[1] for x in lr):.0f} MB, records {records}")
    print(f"EventAccumulator Reload + Scalars:  median {mt:.3f} s over {reps} runs "
          f"(all {', '.join(f'{x[0]:.3f}' for x in tb)}), peak RSS {max(x[1] for x in tb):.0f} MB, points {points}")
    print(f"ratio: {mt / ml:.1f}x")


if __name__ == "__main__":
    main()
