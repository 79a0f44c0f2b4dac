#!/usr/bin/env python3
"""PyTorch's training speed on the models `lrtop train` has, built the same
way, for `scripts/bench_all.sh`: the MLP (64-H-...-10 on the embedded
digits), LeNet-5 (digits as 1x8x8 images, both convolutions padded by 2, as
lrtop does for small images) and ResNet-20 (CIFAR-10's binary format, He et
al.'s option-A shortcuts, no bias in the convolutions, BatchNorm).

Each step does what `lrtop train` does each update: set the step's LR
(cosine), forward, cross-entropy, backward, the global gradient norm, an
SGD-with-momentum (0.9) update, and read the loss as a number.

Prints one JSON line: {"impl": "torch", "model": ..., "threads": N, "steps_per_s": ...}
(the steps after --warmup, timed as one block).

    python3 scripts/torch_train_step.py --model lenet5 --threads 1
    python3 scripts/torch_train_step.py --model resnet20 --cifar DIR --batch 32
"""
import argparse, gzip, json, math, os, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def digits(path):
    rows = [list(map(float, line.split(","))) for line in gzip.open(path, "rt") if line.strip()]
    data = torch.tensor(rows, dtype=torch.float32)
    return data[:, :64] / 16.0, data[:, 64].long()


def cifar(folder):
    raw = b"".join(open(os.path.join(folder, f"data_batch_{i}.bin"), "rb").read() for i in range(1, 6))
    t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, 3073)
    x = t[:, 1:].float().view(-1, 3, 32, 32) / 255.0
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    return (x - mean) / std, t[:, 0].long()


class LeNet5(nn.Module):
    def __init__(self, channels, side, classes=10):
        super().__init__()
        pad1 = 2 if side < 32 else 0
        after1 = (side + 2 * pad1 - 4) // 2
        pad2 = 0 if after1 >= 10 else 2
        after2 = (after1 + 2 * pad2 - 4) // 2
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=pad1)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=pad2)
        self.fc1 = nn.Linear(16 * after2 * after2, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.extra = outputs - inputs if (stride != 1 or inputs != outputs) else None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        if self.extra is None:
            short = x
        else:
            short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(h + short)


class ResNet(nn.Module):
    def __init__(self, n, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, inputs = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(Block(inputs, width, 2 if stage > 0 and b == 0 else 1))
                inputs = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(h.mean((2, 3)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "lenet5", "resnet20"], required=True)
    ap.add_argument("--hidden", default="128,128", help="MLP hidden widths")
    ap.add_argument("--digits", default=os.path.join(here, "..", "assets", "data", "digits.csv.gz"))
    ap.add_argument("--cifar", help="folder with data_batch_1..5.bin (resnet20)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model == "resnet20":
        x, y = cifar(args.cifar)
        model = ResNet(3)
    else:
        x, y = digits(args.digits)
        x, y = x[:1438].contiguous(), y[:1438].contiguous()  # lrtop's train split size
        if args.model == "mlp":
            widths = [64] + [int(w) for w in args.hidden.split(",")]
            layers = []
            for a, b in zip(widths, widths[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            model = nn.Sequential(*layers, nn.Linear(widths[-1], 10))
        else:
            x = x.view(-1, 1, 8, 8)
            model = LeNet5(1, 8)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    params = [p for p in model.parameters() if p.requires_grad]
    n = x.shape[0]
    g = torch.Generator().manual_seed(0)
    perm, pos = torch.randperm(n, generator=g), 0
    total = args.warmup + args.steps
    for step in range(total):
        if step == args.warmup:
            t0 = time.perf_counter()
        if pos + args.batch > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        for group in opt.param_groups:
            group["lr"] = 0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * step / total))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])).item()
        opt.step()
        loss.item()
    dt = time.perf_counter() - t0
    print(json.dumps({"impl": "torch", "model": args.model, "threads": args.threads,
                      "steps_per_s": args.steps / dt}), flush=True)


if __name__ == "__main__":
    main()
