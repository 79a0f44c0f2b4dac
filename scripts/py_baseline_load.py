#!/usr/bin/env python3
"""The baseline lrtop's cold load is compared with: a plain `json.loads` loop
reading step, loss, learning rate, grad norm and epoch into lists.

usage: py_baseline_load.py PATH
"""

import json
import resource
import sys
import time


def main():
    path = sys.argv[1]
    started = time.perf_counter()
    steps, losses, lrs, grad_norms, epochs = [], [], [], [], []
    bad = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                d = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if not isinstance(d, dict):
                bad += 1
                continue
            steps.append(d.get("step"))
            losses.append(d.get("loss"))
            lrs.append(d.get("learning_rate", d.get("lr")))
            grad_norms.append(d.get("grad_norm"))
            epochs.append(d.get("epoch"))
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loss_points = sum(1 for x in losses if x is not None)
    print(
        f"PY_RESULT seconds={seconds:.3f} records={len(steps)} bad={bad} "
        f"loss_points={loss_points} peak_rss_kb={peak_kb}"
    )


if __name__ == "__main__":
    main()
