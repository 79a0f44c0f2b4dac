#!/usr/bin/env python3
"""Follow N small JSONL logs with `lrtop attach --headless` and measure what
following costs: seconds to the first status of every run, peak RSS, OS
threads, CPU used while idle, and how soon an append to one file is seen.

usage: scripts/bench_many_files.py N [IDLE_SECS] [BINARY]
"""
import os
import subprocess
import sys
import tempfile
import time


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / ticks


def start(binary, tmp, interval, out):
    return subprocess.Popen(
        [binary, "attach", tmp, "--headless", "--interval", str(interval)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def main():
    n = int(sys.argv[1])
    idle = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    binary = sys.argv[3] if len(sys.argv) > 3 else "target/release/lrtop"
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            with open(os.path.join(tmp, f"run{i:05}.jsonl"), "w") as f:
                for step in range(1, 6):
                    f.write(f'{{"step": {step}, "loss": {1.0 / step}, "learning_rate": 0.001}}\n')
        # The output goes elsewhere: writes to it would wake watches on tmp.
        out = tempfile.NamedTemporaryFile("w+", suffix=".lrtop-out")

        def text():
            out.flush()
            with open(out.name) as f:
                return f.read()

        # Phase 1, status lines every 0.5 s: how soon every run is read,
        # and how soon one append among many idle files is seen.
        t0 = time.monotonic()
        proc = start(binary, tmp, 0.5, out)
        first_status = seen = None
        try:
            while time.monotonic() - t0 < 120 and proc.poll() is None:
                if text().count("5 records") >= n:
                    first_status = time.monotonic() - t0
                    break
                time.sleep(0.1)
            time.sleep(2)
            target = os.path.join(tmp, f"run{n // 2:05}.jsonl")
            with open(target, "a") as f:
                f.write('{"step": 6, "loss": 0.1, "learning_rate": 0.001}\n')
            a0 = time.monotonic()
            while time.monotonic() - a0 < 30:
                if "6 records" in text():
                    seen = time.monotonic() - a0
                    break
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait()
        # Phase 2, the default status interval (10 s): memory, threads and
        # the CPU an idle follow costs once everything was read.
        proc = start(binary, tmp, 10, subprocess.DEVNULL)
        try:
            time.sleep(5)
            c0, i0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(idle)
            c1, i1 = cpu_seconds(proc.pid), time.monotonic()
            status = proc_status(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
        print(
            f"files {n}: all runs read in {first_status if first_status is None else round(first_status, 2)} s, "
            f"append seen in {seen if seen is None else round(seen, 2)} s (status every 0.5 s); "
            f"peak RSS {int(status['VmHWM'].split()[0]) // 1024} MB, threads {status['Threads']}, "
            f"idle CPU {100 * (c1 - c0) / (i1 - i0):.1f}% of a core over {idle:.0f} s"
        )


if __name__ == "__main__":
    main()
