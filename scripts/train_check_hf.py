#!/usr/bin/env python3
"""Makes Llama checkpoints of several shapes with Hugging Face transformers
(random init, saved with save_pretrained) plus a token file, and records the
validation loss transformers computes for each (llama_eval.py's convention:
val.bin cut into consecutive blocks of SEQ tokens, mean cross-entropy of
tokens 1..SEQ-1). `tests/it/train_llama.rs::hf_checkpoints_match_transformers`
(ignored; set LRTOP_HF_CHECK_DIR) evaluates the same with lrtop.

    /work/pyref/bin/python scripts/train_check_hf.py /tmp/hf-check
    LRTOP_HF_CHECK_DIR=/tmp/hf-check cargo test --test it train_llama -- --ignored --nocapture
"""
import json, os, struct, sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SEQ = 24
CASES = {
    # name: LlamaConfig overrides
    "gqa": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2),
    "mha-tied": dict(hidden_size=48, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                     num_key_value_heads=4, tie_word_embeddings=True),
    "mqa-theta500k": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=1, rope_theta=500000.0, rms_norm_eps=1e-6),
    "head-dim-32": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=32),
    "llama3-scaling": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=1, num_attention_heads=4,
                           num_key_value_heads=2, rope_theta=500000.0,
                           rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    vocab = 80
    tokens = torch.randint(0, vocab, (SEQ * 40,))
    tokens[0] = vocab - 1  # so max id + 1 == vocab
    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)
    for name in ("train.bin", "val.bin"):
        with open(os.path.join(data, name), "wb") as f:
            f.write(struct.pack("<%dH" % len(tokens), *tokens.tolist()))
    expected = {}
    for i, (name, overrides) in enumerate(CASES.items()):
        torch.manual_seed(i + 1)
        cfg = LlamaConfig(vocab_size=vocab, max_position_embeddings=64, initializer_range=0.2, **overrides)
        model = LlamaForCausalLM(cfg).eval()
        with torch.no_grad():  # non-trivial norms
            for p_name, p in model.named_parameters():
                if "norm" in p_name:
                    p.uniform_(0.5, 1.5)
        model.save_pretrained(os.path.join(out, name), safe_serialization=True)
        ids = tokens.view(-1, SEQ)
        with torch.no_grad():
            loss = model(input_ids=ids, labels=ids).loss.item()
        expected[name] = loss
        print(f"{name}: transformers eval_loss {loss:.6f}")
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"seq_len": SEQ, "losses": expected}, f, indent=1)


if __name__ == "__main__":
    main()
