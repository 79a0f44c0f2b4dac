#!/usr/bin/env bash
# The paper's LLM experiment in miniature (issue 15): LoRA fine-tuning of a
# tiny pretrained Llama on instruction data under several LR policies and
# seeds, with `lrtop tune`. Everything on the CPU, about 20 minutes on 2 cores.
#
#   cargo build --release && scripts/llm_evidence.sh
#
# 1. Data (scripts/make_llm_evidence_data.py): reversing four letters, as
#    sentences ("reverse a b c d is d c b a .") and as instructions
#    ("a b c d ->" -> " d c b a"); 200 strings held out of both for
#    validation.
# 2. A base model pretrained with lrtop on the sentences (full training,
#    the committed test tokenizer), saved as a transformers checkpoint.
# 3. LoRA (all seven projections) on the instructions: each policy, each
#    seed; exact match of greedy answers on the held-out strings every 25
#    updates.
# The raw JSON and logs go under $OUT; the tables to docs/evidence-llm.md.
set -euo pipefail
cd "$(dirname "$0")/.."

LRTOP=${LRTOP:-target/release/lrtop}
OUT=${OUT:-runs/llm-evidence}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-2500}
STEPS=${STEPS:-400}
SEEDS=${SEEDS:-"0 1 2 3 4"}
JOBS=${JOBS:-2}
TOKENIZER=tests/fixtures/tokenizer/tokenizer.json
mkdir -p "$OUT" docs

python3 scripts/make_llm_evidence_data.py "$OUT/data" >&2

if [ ! -f "$OUT/base/model.safetensors" ]; then
  echo "pretraining the base ($PRETRAIN_STEPS updates)" >&2
  "$LRTOP" train --headless --task "text=$OUT/data/pretrain.txt" --tokenizer "$TOKENIZER" \
    --model llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --seq-len 32 --batch-size 32 \
    --optimizer adamw --seed 0 --steps "$PRETRAIN_STEPS" --eval-every 500 --threads 1 \
    --policy "cosine(lr=3e-3,num_warmup_steps=100,num_training_steps=$PRETRAIN_STEPS)" \
    --save-hf "$OUT/base" --log "$OUT/pretrain.jsonl" > "$OUT/pretrain.out"
  cp "$TOKENIZER" "$OUT/base/tokenizer.json"
fi

MODEL=(--task "instruct=$OUT/data/train.jsonl" --val "$OUT/data/val.jsonl"
  --model llama --init "$OUT/base"
  --lora "r=8,alpha=16,targets=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
  --seq-len 24 --batch-size 16 --optimizer adamw)
RUN=(--steps "$STEPS" --eval-every 25 --target-acc 0.9 --jobs "$JOBS" --format json)
WARM=$((STEPS / 10))
# The schedules peak at 3e-3, the best LR of the fixed grid in a first look
# (1e-2 diverges at a fixed LR).
PEAK=0.003
POLICIES=(
  --policy "FIX(k0={0.001,0.003,0.01})"
  --policy "linear(lr=$PEAK,num_warmup_steps=0,num_training_steps=$STEPS)"
  --policy "cosine(lr=$PEAK,num_warmup_steps=$WARM,num_training_steps=$STEPS)"
  --policy "warmup_stable_decay(lr=$PEAK,num_warmup_steps=$WARM,num_training_steps=$STEPS,num_decay_steps=$((STEPS / 5)))"
  --policy "OneCycleLR(max_lr=$PEAK,total_steps=$STEPS)"
  --policy "TRI2(k0=0.0003,k1=$PEAK,l=$((STEPS / 4)))"
)

for seed in $SEEDS; do
  echo "seed $seed" >&2
  "$LRTOP" tune "${MODEL[@]}" --seed "$seed" "${RUN[@]}" "${POLICIES[@]}" \
    --out "$OUT/seed-$seed" > "$OUT/seed-$seed.json"
done

python3 scripts/llm_evidence_table.py "$OUT" $SEEDS > docs/evidence-llm.md
echo "wrote docs/evidence-llm.md" >&2
