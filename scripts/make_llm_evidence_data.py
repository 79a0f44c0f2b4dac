#!/usr/bin/env python3
"""Data for the LLM evidence experiment (scripts/llm_evidence.sh): reversing
four letters (a-h, 4,096 strings), a skill a tiny transformer can learn in
general, in two forms.

- pretrain.txt: "reverse a b c d is d c b a ." for every string but the
  held-out ones, one per line: what the base model learns first.
- train.jsonl: the same strings as instructions, {"prompt": "a b c d ->",
  "completion": " d c b a"}: the form LoRA fine-tuning teaches.
- val.jsonl: 200 strings (seeded) that appear nowhere else, as
  instructions: exact match on them measures the skill in the new form.

usage: make_llm_evidence_data.py OUT_DIR
"""

import itertools
import json
import random
import sys
from pathlib import Path


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    strings = [" ".join(p) for p in itertools.product("abcdefgh", repeat=4)]
    random.Random(0).shuffle(strings)
    val, rest = strings[:200], strings[200:]
    rev = lambda s: " ".join(reversed(s.split()))
    (out / "pretrain.txt").write_text("".join(f"reverse {s} is {rev(s)} .\n" for s in rest))
    for name, rows in (("train.jsonl", rest), ("val.jsonl", val)):
        with open(out / name, "w") as f:
            for s in rows:
                f.write(json.dumps({"prompt": f"{s} ->", "completion": f" {rev(s)}"}) + "\n")
    print(f"{out}: {len(rest)} sentences and train instructions, {len(val)} held-out val instructions")


if __name__ == "__main__":
    main()
