#!/usr/bin/env bash
# lrtop vs PyTorch: training throughput of the same Llama on this machine's
# CPU (width 256, 4 layers, 4 heads, SwiGLU 704, vocabulary 64, batch 16 x
# 128 tokens, AdamW, f32), side by side at 1 and 2 threads. Repetitions
# alternate (torch, lrtop, torch, lrtop, ...), each a fresh process; lrtop's
# figure is its summary's steps_per_s (the optimisation loop), PyTorch's the
# median of 3 timed blocks after 5 warm-up steps. Prints every measurement,
# then medians and ratios.
#
#   cargo build --release && PYTHON=<python with torch, transformers> scripts/bench_llama_cpu.sh
#   ROUNDS=5 THREADS="1 2" scripts/bench_llama_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/work/pyref/bin/python}
LRTOP=${LRTOP:-target/release/lrtop}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-"1 2"}
OUT=$(mktemp)
"$PYTHON" -c "import torch, transformers" || { echo "no torch/transformers in $PYTHON (set PYTHON=...)" >&2; exit 1; }

for round in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    "$PYTHON" scripts/torch_llama_step.py --device cpu --threads "$t" --steps 5 --json | tee -a "$OUT"
    "$LRTOP" train --headless --model 'llama(dim=256,layers=4,heads=4,kv_heads=4)' \
      --task tokens=tests/fixtures/reference-models/progressions --seq-len 128 --batch-size 16 \
      --optimizer adamw --steps 15 --eval-every 0 --device cpu --threads "$t" \
      --log "$OUT.lrtop.jsonl" 2>/dev/null | tail -n 1 |
      python3 -c "import json,sys; s=json.loads(sys.stdin.read()); print(json.dumps({'impl': 'lrtop', 'threads': $t, 'tokens_per_s': s['steps_per_s'] * 16 * 128}))" |
      tee -a "$OUT"
    rm -f "$OUT.lrtop.jsonl"*
  done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\n| threads | lrtop tokens/s (median; all) | PyTorch tokens/s (median; all) | lrtop / PyTorch |")
print("|---|---|---|---|")
for t in sorted({r["threads"] for r in rows}):
    got = {i: [r["tokens_per_s"] for r in rows if r["threads"] == t and r["impl"] == i] for i in ("lrtop", "torch")}
    m = {i: statistics.median(v) for i, v in got.items()}
    cell = lambda i: f"{m[i]:,.0f} ({', '.join(f'{v:,.0f}' for v in got[i])})"
    print(f"| {t} | {cell('lrtop')} | {cell('torch')} | **{m['lrtop'] / m['torch']:.2f}x** |")
PY
rm -f "$OUT"
