#!/usr/bin/env bash
# Issue 16's table in one command: lrtop against the tool a user would
# otherwise reach for, on this machine, side by side.
#
#   1. `lrtop attach FILE --no-follow --summary` on a 2,000,000-line HF-style
#      log against a Python json.loads loop, polars and pandas
#      (scripts/bench_cold_load.py; whole processes timed from outside).
#   2. Training throughput against PyTorch on the CPU, same models, same
#      batch, SGD with momentum and a per-step LR (scripts/torch_train_step.py,
#      scripts/torch_llama_step.py): the MLP 64-H-H-10 at H = 128, 512, 1024,
#      LeNet-5 on the embedded digits, ResNet-20 on a small synthetic set in
#      CIFAR-10's binary format (made here), and the Llama of
#      scripts/bench_llama_cpu.sh. lrtop's figure is `lrtop train --headless`'s
#      summary steps_per_s (the optimisation loop, its first steps included);
#      PyTorch's is timed after warm-up steps.
#
# Repetitions alternate (peer, lrtop, peer, lrtop, ...), each a fresh
# process. Prints one Markdown table: figure, threads, lrtop, peer, ratio
# (>1: lrtop is better), spread (min-max of each), command.
#
#   cargo build --release && scripts/bench_all.sh
#   ROUNDS=5 THREADS="1 2" ONLY="train" scripts/bench_all.sh
#   ONLY=train MODELS="LeNet Llama" scripts/bench_all.sh  (rows whose name has a word)
#   PYTHON=<python with torch, transformers, polars, pandas> scripts/bench_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/work/pyref/bin/python}
LRTOP=${LRTOP:-target/release/lrtop}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-"1 2"}
ONLY=${ONLY:-"load train"}
MODELS=${MODELS:-""}
BIG=${BIG:-/tmp/lrtop_big.jsonl}
OUT=$(mktemp)
WORK=$(mktemp -d)
trap 'rm -rf "$OUT" "$WORK"' EXIT
[ -x "$LRTOP" ] || { echo "no $LRTOP: cargo build --release" >&2; exit 1; }

# Whether the training row `$1` is asked for (MODELS empty: every row).
wanted() {
  [ -z "$MODELS" ] && return 0
  for word in $MODELS; do [[ "$1" == *"$word"* ]] && return 0; done
  return 1
}

if [[ " $ONLY " == *" load "* ]]; then
  echo "== attach --summary against Python, polars, pandas ($ROUNDS reps) ==" >&2
  BENCH_JSONL=$OUT LRTOP=$LRTOP PYTHON=$PYTHON python3 scripts/bench_cold_load.py "$BIG" "$ROUNDS" >&2
fi

if [[ " $ONLY " == *" train "* ]]; then
  "$PYTHON" -c "import torch, transformers" || { echo "no torch/transformers in $PYTHON (set PYTHON=...)" >&2; exit 1; }
  # A small CIFAR-10-format set: 5 x 256 training images and 256 test images.
  python3 - "$WORK/cifar" <<'PY'
import os, random, sys
random.seed(0)
os.makedirs(sys.argv[1], exist_ok=True)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        for _ in range(256):
            f.write(bytes([random.randrange(10)]) + random.randbytes(3072))
PY
  # name | lrtop arguments | torch_train_step.py arguments | lrtop steps | torch steps, warm-up
  CONFIGS=(
    "MLP 64-128-128-10, batch 64|--model mlp --hidden 128,128|--model mlp --hidden 128,128|3000|3000 300"
    "MLP 64-512-512-10, batch 64|--model mlp --hidden 512,512|--model mlp --hidden 512,512|1000|1000 100"
    "MLP 64-1024-1024-10, batch 64|--model mlp --hidden 1024,1024|--model mlp --hidden 1024,1024|400|400 40"
    "LeNet-5 on digits, batch 64|--model lenet5|--model lenet5|1000|1000 100"
    "ResNet-20, 32x32x3, batch 64|--model resnet20 --task cifar10=$WORK/cifar|--model resnet20 --cifar $WORK/cifar|15|15 3"
  )
  for round in $(seq 1 "$ROUNDS"); do
    for t in $THREADS; do
      for config in "${CONFIGS[@]}"; do
        IFS='|' read -r name lrtop_args torch_args lrtop_steps torch_steps <<<"$config"
        wanted "$name" || continue
        read -r steps warmup <<<"$torch_steps"
        # shellcheck disable=SC2086
        torch=$("$PYTHON" scripts/torch_train_step.py $torch_args --threads "$t" --steps "$steps" --warmup "$warmup" |
          python3 -c "import json,sys; print(json.loads(sys.stdin.read())['steps_per_s'])")
        # shellcheck disable=SC2086
        ours=$("$LRTOP" train --headless $lrtop_args --steps "$lrtop_steps" --eval-every 0 --threads "$t" \
          --log "$WORK/run.jsonl" 2>/dev/null | tail -n 1 |
          python3 -c "import json,sys; print(json.loads(sys.stdin.read())['steps_per_s'])")
        rm -f "$WORK"/run.jsonl*
        echo "round $round, $t thread(s), $name: torch $torch, lrtop $ours steps/s" >&2
        python3 -c "import json,sys; print(json.dumps({'figure': sys.argv[1] + ', steps/s', 'threads': int(sys.argv[2]), 'peer': 'PyTorch', 'lrtop': [float(sys.argv[3])], 'other': [float(sys.argv[4])], 'command': sys.argv[5]}))" \
          "$name" "$t" "$ours" "$torch" "lrtop train --headless ${lrtop_args//$WORK\/cifar/DIR} --steps $lrtop_steps --eval-every 0 --threads $t" >>"$OUT"
      done
      wanted "Llama" || continue
      torch=$("$PYTHON" scripts/torch_llama_step.py --device cpu --threads "$t" --steps 5 --json |
        python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['tokens_per_s'])")
      llama_args="--model llama(dim=256,layers=4,heads=4,kv_heads=4) --task tokens=tests/fixtures/reference-models/progressions --seq-len 128 --batch-size 16 --optimizer adamw --steps 15 --eval-every 0 --device cpu --threads $t"
      # shellcheck disable=SC2086
      ours=$("$LRTOP" train --headless $llama_args --log "$WORK/run.jsonl" 2>/dev/null | tail -n 1 |
        python3 -c "import json,sys; print(json.loads(sys.stdin.read())['steps_per_s'] * 16 * 128)")
      rm -f "$WORK"/run.jsonl*
      echo "round $round, $t thread(s), Llama: torch $torch, lrtop $ours tokens/s" >&2
      python3 -c "import json,sys; print(json.dumps({'figure': 'Llama dim 256, 4 layers, seq 128, batch 16, AdamW, tokens/s', 'threads': int(sys.argv[1]), 'peer': 'PyTorch', 'lrtop': [float(sys.argv[2])], 'other': [float(sys.argv[3])], 'command': 'lrtop train --headless ' + sys.argv[4]}))" \
        "$t" "$ours" "$torch" "$llama_args" >>"$OUT"
    done
  done
fi

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["figure"], r["threads"], r["peer"])
    acc = rows.setdefault(key, {"lrtop": [], "other": [], "lower": r.get("lower_is_better", False), "command": r["command"]})
    acc["lrtop"] += r["lrtop"]
    acc["other"] += r["other"]
fmt = lambda v: f"{v:,.3g}" if v < 100 else f"{v:,.0f}"
print("\n| figure | threads | lrtop (median) | peer (median) | lrtop is | spread: lrtop; peer | command |")
print("|---|---|---|---|---|---|---|")
for (figure, threads, peer), r in rows.items():
    ours, theirs = statistics.median(r["lrtop"]), statistics.median(r["other"])
    ratio = theirs / ours if r["lower"] else ours / theirs
    spread = f"{fmt(min(r['lrtop']))}-{fmt(max(r['lrtop']))}; {fmt(min(r['other']))}-{fmt(max(r['other']))}"
    print(f"| {figure} | {threads} | {fmt(ours)} | {peer}: {fmt(theirs)} | **{ratio:.2f}x** | {spread} | `{r['command']}` |")
PY
