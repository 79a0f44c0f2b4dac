#!/usr/bin/env bash
# lrtop vs PyTorch: training steps per second of the same MLP (64-128-128-10,
# batch 64, SGD with a per-step cosine LR, loss and gradient norm read every
# step) on the digits data, on this machine's CPU, side by side.
#
# Repetitions are interleaved (torch, lrtop, torch, lrtop, ...) so that load
# from other processes hits both alike; each repetition is a fresh process
# with its own warm-up. Prints every measurement, then the medians and ratios.
#
# Thread settings: PyTorch gets torch.set_num_threads(T); lrtop gets
# RAYON_NUM_THREADS=T and a T-thread pool. lrtop's default engine for an MLP
# on the CPU ("fused") is single-threaded whatever T is; "autograd" is
# Candle's graph path (used for the other models), shown for comparison.
#
#   scripts/train_bench_mlp.sh                      # 5 rounds, 1 and 2 threads
#   ROUNDS=9 STEPS=5000 THREADS="1 2" scripts/train_bench_mlp.sh
#   PYTHON=/path/to/python-with-torch scripts/train_bench_mlp.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/work/pyref/bin/python}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-3000}
WARMUP=${WARMUP:-300}
THREADS=${THREADS:-"1 2"}
ENGINES=${ENGINES:-"fused autograd"}
OUT=$(mktemp)

echo "building (cargo test --release --test it train_bench) ..." >&2
BIN=$(cargo test --release --test it train_bench --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*it-[^)]*\)).*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "could not find the train_bench test binary" >&2; exit 1; }
"$PYTHON" -c "import torch" || { echo "no torch in $PYTHON (set PYTHON=...)" >&2; exit 1; }

for round in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    "$PYTHON" scripts/train_bench_mlp.py --threads "$t" --steps "$STEPS" --warmup "$WARMUP" --reps 1 | tee -a "$OUT"
    for engine in $ENGINES; do
      RAYON_NUM_THREADS=$t LRTOP_BENCH_THREADS=$t LRTOP_BENCH_ENGINE=$engine LRTOP_BENCH_STEPS=$STEPS \
        LRTOP_BENCH_WARMUP=$WARMUP LRTOP_BENCH_REPS=1 \
        "$BIN" --ignored --nocapture --test-threads 1 train_bench_mlp 2>/dev/null | grep -o '{"impl".*}' | tee -a "$OUT"
    done
  done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
groups = {}
for r in rows:
    key = (r["impl"] if r["impl"] == "torch" else "lrtop-" + r["engine"], r["threads"])
    groups.setdefault(key, []).append(r["steps_per_s"])
print("\nmedian steps/s (n runs):")
med = {k: statistics.median(v) for k, v in groups.items()}
for k in sorted(med):
    print(f"  {k[0]:16s} threads={k[1]}  {med[k]:9.1f}  (n={len(groups[k])}, min {min(groups[k]):.1f}, max {max(groups[k]):.1f})")
best_torch = max((v, k[1]) for k, v in med.items() if k[0] == "torch")
print(f"\nbest PyTorch: {best_torch[0]:.1f} steps/s with torch.set_num_threads({best_torch[1]})")
for k in sorted(med):
    if k[0] != "torch":
        same = med.get(("torch", k[1]))
        line = f"  {k[0]} threads={k[1]}: {med[k] / best_torch[0]:.2f}x best PyTorch"
        if same:
            line += f", {med[k] / same:.2f}x PyTorch at the same thread count"
        print(line)
PY
rm -f "$OUT"
