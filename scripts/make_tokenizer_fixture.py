#!/usr/bin/env python3
"""Makes tests/fixtures/tokenizer/: a small byte-level BPE `tokenizer.json`
trained with Hugging Face's `tokenizers` on `text.txt` (generated here),
and `expected.json`, the ids that library gives for the text, which
lrtop's `--task text=FILE --tokenizer tokenizer.json` must reproduce.

    python scripts/make_tokenizer_fixture.py   # needs `pip install tokenizers`
"""
import json
import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

out = Path(__file__).resolve().parent.parent / "tests/fixtures/tokenizer"
out.mkdir(parents=True, exist_ok=True)
random.seed(0)
words = ("the learning rate warmup decays cosine schedule step loss converges "
         "model train eval gradient norm spike plateau déjà vu naïve 学习率 🚀").split()
lines = [" ".join(random.choice(words) for _ in range(random.randint(4, 12))) + "."
         for _ in range(400)]
text = "\n".join(lines) + "\n"
(out / "text.txt").write_text(text, encoding="utf-8")

tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                              special_tokens=["<|endoftext|>"])
tok.train_from_iterator(lines, trainer)
tok.save(str(out / "tokenizer.json"))
ids = tok.encode(text).ids
(out / "expected.json").write_text(json.dumps({
    "vocab_size": tok.get_vocab_size(with_added_tokens=True),
    "tokens": len(ids),
    "ids": ids,
    "decoded_first_40": tok.decode(ids[:40]),
}), encoding="utf-8")
print(f"{len(text.encode())} bytes -> {len(ids)} tokens, vocab {tok.get_vocab_size(True)}")
