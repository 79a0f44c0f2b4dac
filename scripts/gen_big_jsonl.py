#!/usr/bin/env python3
"""Writes a large Hugging Face Trainer-style JSONL log for the cold-load benchmark.

Lines are what a `TrainerCallback.on_log` writing `json.dumps({"step": s, **logs})`
produces: training lines (loss, grad_norm, learning_rate, epoch rounded as
HF does, num_input_tokens_seen) with full-precision floats, and an eval line every 500
steps. Default: 2,000,000 lines, about 330 MB, in /tmp.

usage: gen_big_jsonl.py [PATH] [LINES] [EXTRA]

EXTRA (default 0): that many more numeric fields on each training line
(per-layer grad norms `grad_norm/layer_K`), for issue 16's 20-field case:
EXTRA=14 makes 20 numeric fields a line.
"""

import json
import math
import random
import sys


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lrtop_big.jsonl"
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
    extra = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    rng = random.Random(1234)
    steps_per_epoch = 7813
    total_steps = lines
    peak_lr = 3e-4
    written = 0
    step = 0
    with open(path, "w") as out:
        while written < lines:
            step += 1
            warmup = min(1.0, step / 2000)
            lr = peak_lr * warmup * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            loss = 4.5 * math.exp(-step / 400_000) + 0.8 + rng.gauss(0, 0.05)
            log = {
                "step": step,
                "loss": loss,
                "grad_norm": abs(rng.gauss(0.6, 0.2)),
                "learning_rate": lr,
                "epoch": round(step / steps_per_epoch, 4),
                "num_input_tokens_seen": step * 16384,
            }
            for k in range(extra):
                log[f"grad_norm/layer_{k}"] = abs(rng.gauss(0.1, 0.03))
            out.write(json.dumps(log) + "\n")
            written += 1
            if step % 500 == 0 and written < lines:
                ev = {
                    "step": step,
                    "eval_loss": loss + rng.gauss(0.05, 0.01),
                    "eval_runtime": rng.uniform(10, 20),
                    "eval_samples_per_second": rng.uniform(300, 400),
                    "eval_steps_per_second": rng.uniform(10, 13),
                    "epoch": round(step / steps_per_epoch, 4),
                }
                out.write(json.dumps(ev) + "\n")
                written += 1
    print(f"wrote {written} lines to {path}")


if __name__ == "__main__":
    main()
