#!/usr/bin/env bash
# The README's evidence, measured: LRBench's claim in miniature on the
# digits task. Fixed LRs against COS, TRI2, OneCycleLR and a composite, same
# model, data order and number of updates for every policy, several seeds;
# then successive halving on the same grid, checked against the full grid.
#
#   cargo build --release && scripts/tune_evidence.sh
#
# Writes the raw JSON under $OUT and the tables to docs/evidence.md.
set -euo pipefail
cd "$(dirname "$0")/.."

LRTOP=${LRTOP:-target/release/lrtop}
OUT=${OUT:-runs/evidence}
STEPS=${STEPS:-2000}
SEEDS=${SEEDS:-"0 1 2 3 4"}
JOBS=${JOBS:-2}
mkdir -p "$OUT" docs

MODEL=(--task digits --model mlp --hidden 128,128 --optimizer momentum --momentum 0.9 --batch-size 64)
RUN=(--steps "$STEPS" --eval-every 25 --target-acc 0.95 --jobs "$JOBS" --format json)
POLICIES=(
  --policy "FIX(k0={0.003,0.01,0.03,0.1,0.3})"
  --policy "COS(k0=0.001,k1=0.3,l=$STEPS)"
  --policy "TRI2(k0=0.01,k1=0.3,l=$((STEPS / 8)))"
  --policy "OneCycleLR(max_lr=0.3,total_steps=$STEPS)"
  --policy "LinearLR(lr=0.3,start_factor=0.1,total_iters=$((STEPS / 20))) for $((STEPS / 20)) then CosineAnnealingLR(lr=0.3,T_max=$((STEPS - STEPS / 20)))"
)

echo "range test (seed 0)" >&2
"$LRTOP" range-test "${MODEL[@]}" --format json > "$OUT/range-test.json"
"$LRTOP" range-test "${MODEL[@]}" --png "$OUT/range-test.png" --text 100x26 > "$OUT/range-test.txt"

for seed in $SEEDS; do
  echo "seed $seed" >&2
  "$LRTOP" tune "${MODEL[@]}" --seed "$seed" "${RUN[@]}" "${POLICIES[@]}" \
    --out "$OUT/seed-$seed" > "$OUT/seed-$seed.json"
done

echo "successive halving (seed 0, eta 3, steps to target)" >&2
"$LRTOP" tune "${MODEL[@]}" --seed 0 "${RUN[@]}" "${POLICIES[@]}" \
  --objective steps-to-target --halving 3 --halving-verify \
  --out "$OUT/halving" > "$OUT/halving.json"

python3 scripts/tune_evidence_table.py "$OUT" $SEEDS > docs/evidence.md
echo "wrote docs/evidence.md" >&2
