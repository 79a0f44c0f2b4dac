#!/usr/bin/env python3
"""PyTorch baseline for lrtop's MLP training speed (compare with `lrtop`'s
`train_bench_mlp` ignored test; `scripts/train_bench_mlp.sh` runs both).

Same data (the embedded UCI digits, pixels / 16, the same 80/20 split size),
same model (64-128-128-10, ReLU, PyTorch's default init), batch 64, SGD with a
learning rate that changes every step (cosine), one `loss.item()` per step and
the global gradient norm per step (lrtop reports both every step).

Prints one JSON line per repetition: {"impl": "torch", "threads": N, "steps_per_s": ...}.
"""
import argparse, gzip, json, math, os, time

import torch


def load_digits(path):
    rows = [list(map(float, line.split(","))) for line in gzip.open(path, "rt") if line.strip()]
    data = torch.tensor(rows, dtype=torch.float32)
    return data[:, :64] / 16.0, data[:, 64].long()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "..", "assets", "data", "digits.csv.gz"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--no-grad-norm", action="store_true", help="skip the per-step gradient norm")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x_all, y_all = load_digits(args.data)
    n_train = 1438  # lrtop's train split size (80% of 1,797, stratified)
    x, y = x_all[:n_train].contiguous(), y_all[:n_train].contiguous()

    for rep in range(args.reps):
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=args.momentum)
        params = list(model.parameters())
        g = torch.Generator().manual_seed(rep)
        perm, pos = torch.randperm(n_train, generator=g), 0
        total = args.warmup + args.steps
        t0 = None
        for step in range(total):
            if step == args.warmup:
                t0 = time.perf_counter()
            if pos + 64 > n_train:
                perm, pos = torch.randperm(n_train, generator=g), 0
            idx = perm[pos:pos + 64]
            pos += 64
            lr = 0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * step / total))
            for group in opt.param_groups:
                group["lr"] = lr
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not args.no_grad_norm:
                gn = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])).item()
            opt.step()
            _ = loss.item()
        dt = time.perf_counter() - t0
        print(json.dumps({"impl": "torch", "threads": args.threads, "rep": rep,
                          "grad_norm": not args.no_grad_norm, "momentum": args.momentum,
                          "steps_per_s": args.steps / dt}), flush=True)


if __name__ == "__main__":
    main()
