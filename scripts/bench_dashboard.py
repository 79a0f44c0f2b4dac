#!/usr/bin/env python3
"""The dashboard's cost: training throughput with the TUI vs --headless, and
the idle CPU of an attached dashboard.

1. Throughput. `lrtop train --steps N` with the same seed and policy, run
   alternately headless and with the dashboard inside tmux (ABBA order, so
   drift in the machine's load hits both alike), REPS pairs. Throughput is
   taken from the JSONL log both modes write: (N - 1) / (time of update N -
   time of update 1), the `time` field the trainer stamps on each update.
   That covers everything the trainer thread does per update (the step, the
   log line, handing records to the UI), which is where a busy UI would show.
   The dashboard quits with `q` once the final evaluation is logged.

2. Idle CPU. `lrtop attach FILE` on a static 100k-line log inside tmux: CPU
   time (utime + stime from /proc) used over IDLE_SECS after a settling
   period.

usage: scripts/bench_dashboard.py [--steps N] [--reps R] [--idle-secs S]
env: CARGO_TARGET_DIR (default target)
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCKET = f"lrtop-bench-{os.getpid()}"


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", SOCKET, *args], check=check,
                          capture_output=True, text=True)


def build():
    subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "lrtop")


def update_times(log):
    """(step, time) of every per-update record (those with an lr)."""
    out = []
    with open(log) as f:
        for line in f:
            if '"lr": ' not in line or '"step": ' not in line:
                continue
            rec = json.loads(line.replace("NaN", "null").replace("Infinity", "null"))
            out.append((rec["step"], rec["time"]))
    return out


def throughput(log, steps):
    times = update_times(log)
    assert len(times) == steps, f"{log}: {len(times)} updates, expected {steps}"
    (s0, t0), (s1, t1) = times[0], times[-1]
    return (s1 - s0) / (t1 - t0)


def train_args(bin_, steps, log):
    policy = f"cosine(lr=0.05,num_warmup_steps={steps // 20},num_training_steps={steps})"
    return [bin_, "train", "--steps", str(steps), "--seed", "0", "--eval-every", "0",
            "--policy", policy, "--log", log]


def run_headless(bin_, steps, work, i):
    log = os.path.join(work, f"headless-{i}.jsonl")
    subprocess.run(train_args(bin_, steps, log) + ["--headless"], check=True,
                   capture_output=True, cwd=work)
    return throughput(log, steps)


def run_tui(bin_, steps, work, i):
    log = os.path.join(work, f"tui-{i}.jsonl")
    cmd = " ".join(f"'{a}'" for a in train_args(bin_, steps, log))
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "b", "-x", "160", "-y", "48",
         "-e", "LRTOP_CONFIG=/nonexistent/config.toml", f"sh -c \"exec {cmd}\"")
    done_marker = f'"step": {steps}, "eval_loss"'
    deadline = time.time() + 3600
    while time.time() < deadline:
        try:
            with open(log) as f:
                if done_marker in f.read():
                    break
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    screen = tmux("capture-pane", "-p", "-t", "b").stdout
    tmux("send-keys", "-t", "b", "q")
    for _ in range(100):
        if tmux("has-session", "-t", "b", check=False).returncode != 0:
            break
        time.sleep(0.1)
    tmux("kill-server", check=False)
    if "lrtop train" not in screen:
        sys.exit(f"the dashboard did not show:\n{screen}")
    return throughput(log, steps)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def idle_cpu(bin_, work, secs):
    log = os.path.join(work, "static.jsonl")
    with open(log, "w") as f:
        for s in range(1, 100_001):
            f.write(json.dumps({"step": s, "loss": 2.0 / s ** 0.3, "learning_rate": 3e-4,
                                "grad_norm": 0.5}) + "\n")
    pidfile = os.path.join(work, "pid")
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "i", "-x", "160", "-y", "48",
         "-e", "LRTOP_CONFIG=/nonexistent/config.toml",
         f"sh -c 'echo $$ > {pidfile}; exec {bin_} attach {log}'")
    for _ in range(100):
        if os.path.exists(pidfile) and open(pidfile).read().strip():
            break
        time.sleep(0.05)
    pid = int(open(pidfile).read())
    time.sleep(5)  # load, first frames, settle
    c0, t0 = cpu_seconds(pid), time.time()
    time.sleep(secs)
    c1, t1 = cpu_seconds(pid), time.time()
    tmux("send-keys", "-t", "i", "q")
    time.sleep(0.5)
    tmux("kill-server", check=False)
    return c1 - c0, t1 - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5, help="headless/TUI pairs")
    ap.add_argument("--idle-secs", type=float, default=30)
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if not shutil.which("tmux"):
        sys.exit("tmux is needed")
    bin_ = build()
    work = tempfile.mkdtemp()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    if not args.skip_throughput:
        rows = {"headless": [], "tui": []}
        for i in range(args.reps):
            order = ["headless", "tui"] if i % 2 == 0 else ["tui", "headless"]
            for mode in order:
                run = run_headless if mode == "headless" else run_tui
                rows[mode].append(run(bin_, args.steps, work, i))
            print(f"pair {i + 1}: headless {rows['headless'][-1]:.0f}, "
                  f"tui {rows['tui'][-1]:.0f} updates/s "
                  f"({rows['tui'][-1] / rows['headless'][-1] - 1:+.1%})", flush=True)
        h, t = statistics.median(rows["headless"]), statistics.median(rows["tui"])
        pairs = [b / a - 1 for a, b in zip(rows["headless"], rows["tui"])]
        print(f"\n{args.steps} updates per run, {args.reps} pairs, "
              f"load average {os.getloadavg()[0]:.2f} at the end")
        print(f"median updates/s: headless {h:.0f}, dashboard {t:.0f}: "
              f"the dashboard costs {1 - t / h:.1%} (median of pairs {-statistics.median(pairs):.1%}, "
              f"pairs from {-max(pairs):.1%} to {-min(pairs):.1%})")
    if not args.skip_idle:
        cpu, wall = idle_cpu(bin_, work, args.idle_secs)
        print(f"idle attached dashboard (100k-line static log, 160x48): {cpu:.2f} s CPU "
              f"in {wall:.1f} s = {100 * cpu / wall:.2f}% of one core")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
