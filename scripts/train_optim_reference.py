#!/usr/bin/env python3
"""Reference values for tests/it/train_optim.rs: two steps of each PyTorch
optimizer on a tiny parameter, with a different LR at each step, and
clip_grad_norm_. Prints Rust array literals to paste into the test."""
import torch

torch.set_default_dtype(torch.float64)
P0 = [1.0, -2.0, 0.5, 3.0]
G = [[0.3, -0.1, 0.8, -1.2], [-0.4, 0.25, 0.1, 0.9]]
LRS = [0.1, 0.05]


def run(make, clip=None):
    p = torch.nn.Parameter(torch.tensor(P0))
    opt = make([p])
    norms = []
    for g, lr in zip(G, LRS):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g)
        if clip is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_([p], clip)))
        opt.step()
    return p.detach().tolist(), norms


cases = {
    "SGD_WD": lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.1),
    "MOMENTUM_WD": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "NESTEROV": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "ADAMW_WD": lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.1),
}
for name, make in cases.items():
    values, _ = run(make)
    print(f"const {name}: [f64; 4] = {values};")
values, norms = run(lambda ps: torch.optim.SGD(ps, lr=0.1), clip=1.0)
print(f"const SGD_CLIP1: [f64; 4] = {values};")
print(f"const CLIP_NORMS: [f64; 2] = {norms};")
