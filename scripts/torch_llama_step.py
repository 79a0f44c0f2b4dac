#!/usr/bin/env python3
"""PyTorch's training step on the Llama that scripts/gpu_check.sh times in
lrtop: transformers' LlamaForCausalLM of width 256, 4 layers, 4 heads,
vocabulary 64, batch 16 x 128 tokens, AdamW; f32, then bf16 autocast on a
GPU. Prints tokens/s (median of 3 timed blocks after warm-up).

usage: scripts/torch_llama_step.py [--device cuda|cpu] [--steps N] [--threads T] [--json]
"""

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--json", action="store_true", help="one JSON line per mode")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "cuda" or torch.cuda.is_available() else "cpu")
    cfg = LlamaConfig(vocab_size=64, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    torch.manual_seed(7)
    batch, seq = 16, 128
    ids = torch.randint(0, 64, (batch, seq + 1), device=device)
    modes = [("f32", None)] + ([("bf16", torch.bfloat16)] if device.type == "cuda" else [])
    for name, dtype in modes:
        model = LlamaForCausalLM(cfg).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step():
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = model(input_ids=ids[:, :-1], labels=ids[:, 1:]).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss

        for _ in range(5):
            step()
        rates = []
        for _ in range(3):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(args.steps):
                loss = step()
            loss.item()
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(args.steps * batch * seq / (time.perf_counter() - t))
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0
        if args.json:
            import json
            print(json.dumps({"impl": "torch", "mode": name, "threads": torch.get_num_threads(),
                              "tokens_per_s": statistics.median(rates)}))
            continue
        print(f"PyTorch {torch.__version__} {device.type} {name}: {statistics.median(rates):,.0f} tokens/s "
              f"(blocks {', '.join(f'{r:,.0f}' for r in rates)}), peak allocated {peak:.0f} MiB")


if __name__ == "__main__":
    main()
