"""Tiny random Qwen2, Mistral and biased-Llama checkpoints made by transformers itself,
and the logits transformers computes for them, for lrtop's tests.

    /work/research/venv/bin/python scripts/make_variant_checkpoints.py

Writes tests/fixtures/reference-models/tiny-{qwen2,mistral,llama-bias}/ (config.json +
model.safetensors, float32) and tests/fixtures/variant-logits.json. Weights
are redrawn with a larger spread than transformers' init (std 0.02 gives
logits near zero, which would hide differences); biases and norm weights
too, so that every tensor matters.
"""

import json
import pathlib
import sys

import torch
import transformers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

root = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
ids = [(7 * i + 3) % 64 for i in range(40)]  # longer than Mistral's window (32)

variants = {
    "qwen2": (
        Qwen2ForCausalLM,
        Qwen2Config(
            vocab_size=64,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
            use_sliding_window=False,
        ),
    ),
    "mistral": (
        MistralForCausalLM,
        MistralConfig(
            vocab_size=64,
            hidden_size=64,
            intermediate_size=160,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=128,
            rope_theta=10000.0,
            rms_norm_eps=1e-5,
            sliding_window=32,
            tie_word_embeddings=False,
        ),
    ),
    "llama-bias": (
        LlamaForCausalLM,
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            attention_bias=True,
            tie_word_embeddings=False,
        ),
    ),
}

out = {"transformers": transformers.__version__, "torch": torch.__version__}
for name, (cls, config) in variants.items():
    torch.manual_seed(0)
    model = cls(config).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.3 if p.dim() == 1 else 0.15)
    target = root / "reference-models" / f"tiny-{name}"
    model.save_pretrained(target, safe_serialization=True)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    out[name] = {"ids": ids, "logits": logits.tolist()}
    print(name, sorted(p.name for p in target.iterdir()), float(logits.abs().max()))

(root / "variant-logits.json").write_text(json.dumps(out) + "\n")
