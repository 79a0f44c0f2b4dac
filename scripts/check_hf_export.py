#!/usr/bin/env python3
"""Checks what `lrtop train --save ... --save-hf ...` wrote, with the
Hugging Face libraries themselves:

- transformers loads the `--save-hf` folder (config.json + model.safetensors);
- with `--lora`, peft loads the `--save` adapter folder onto the base
  checkpoint, and its logits equal those of the merged checkpoint.

    lrtop train --headless --model llama --init BASE --lora r=4,alpha=8 \\
        --task tokens=... --save ADAPTER --save-hf MERGED
    python scripts/check_hf_export.py MERGED [BASE ADAPTER]

Needs torch and transformers (and peft for the adapter). Prints the max abs
logit difference and exits 1 above 1e-4.
"""
import sys

import torch
from transformers import AutoModelForCausalLM


def main() -> int:
    if len(sys.argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    merged_dir = sys.argv[1]
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    vocab = merged.config.vocab_size
    torch.manual_seed(0)
    tokens = torch.randint(0, vocab, (2, 24))
    with torch.no_grad():
        out = merged(tokens, labels=tokens)
    print(f"transformers loaded {merged_dir}: loss on random tokens {out.loss.item():.6f}")
    if len(sys.argv) == 2:
        return 0
    from peft import PeftModel

    base_dir, adapter_dir = sys.argv[2], sys.argv[3]
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, adapter_dir).eval()
    with torch.no_grad():
        peft_logits = adapted(tokens).logits
        with adapted.disable_adapter():
            plain_logits = adapted(tokens).logits
    diff = (peft_logits - out.logits).abs().max().item()
    moved = (peft_logits - plain_logits).abs().max().item()
    print(f"peft loaded {adapter_dir} on {base_dir}")
    print(f"max |peft - merged| logits: {diff:.3e}")
    print(f"max |peft - base| logits (the adapters changed the model): {moved:.3e}")
    return 0 if diff < 1e-4 and moved > 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
