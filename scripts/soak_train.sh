#!/usr/bin/env bash
# Memory over a long training run: `lrtop train` for STEPS updates (default
# 100000) headless, then with the dashboard inside tmux, sampling the
# process's resident memory (VmRSS) every second. Prints the samples'
# summary: RSS at 10%, 50% and 100% of the run and the growth per 10k steps.
#
#   scripts/soak_train.sh                 # 100k steps, both modes
#   STEPS=1000000 MODES=headless scripts/soak_train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-100000}
MODES=${MODES:-"headless tui"}
cargo build --release >&2
BIN=${CARGO_TARGET_DIR:-target}/release/lrtop
[ -x "$BIN" ] || BIN=$(pwd)/$BIN
WORK=$(mktemp -d)
trap 'tmux -L lrtop-soak kill-server 2>/dev/null || true; rm -rf "$WORK"' EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
last_step() { grep -o '"step": [0-9]*, "epoch"' "$1" 2>/dev/null | tail -1 | grep -o '[0-9]*' | head -1 || true; }

for mode in $MODES; do
  log="$WORK/$mode.jsonl"
  samples="$WORK/$mode.rss"
  : >"$samples"
  args="train --steps $STEPS --seed 0 --eval-every 10000 --log $log --policy cosine(lr=0.05,num_warmup_steps=1000,num_training_steps=$STEPS)"
  if [ "$mode" = headless ]; then
    "$BIN" $args --headless >"$WORK/out.txt" 2>&1 &
    pid=$!
  else
    command -v tmux >/dev/null || { echo "no tmux: skipping the dashboard run" >&2; continue; }
    # A script file, so that the policy's parentheses need no second quoting.
    printf '#!/bin/sh\necho $$ > %s/pid\nexec "%s" train --steps %s --seed 0 --eval-every 10000 --log "%s" --policy "%s"\n' \
      "$WORK" "$BIN" "$STEPS" "$log" "cosine(lr=0.05,num_warmup_steps=1000,num_training_steps=$STEPS)" >"$WORK/run.sh"
    chmod +x "$WORK/run.sh"
    tmux -L lrtop-soak -f /dev/null new-session -d -s soak -x 160 -y 48 "$WORK/run.sh"
    for _ in $(seq 100); do [ -s "$WORK/pid" ] && break; sleep 0.05; done
    pid=$(cat "$WORK/pid")
  fi
  start=$(date +%s.%N)
  while kill -0 "$pid" 2>/dev/null; do
    step=$(last_step "$log")
    r=$(rss_kb "$pid")
    [ -n "$r" ] && echo "$(date +%s.%N) ${step:-0} $r" >>"$samples"
    if [ "$mode" = tui ] && grep -q "\"step\": $STEPS, \"eval_loss\"" "$log" 2>/dev/null; then
      sleep 1; tmux -L lrtop-soak send-keys -t soak q; sleep 1
    fi
    sleep 1
  done
  python3 - "$samples" "$mode" "$STEPS" <<'PY'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
mode, steps = sys.argv[2], int(sys.argv[3])
if not rows:
    sys.exit(f"{mode}: no samples")
def at(frac):
    target = steps * frac
    return min(rows, key=lambda r: abs(r[1] - target))
t0 = rows[0][0]
print(f"{mode}: {len(rows)} samples over {rows[-1][0] - t0:.0f} s, last step {int(rows[-1][1])}")
for frac in (0.1, 0.5, 1.0):
    r = at(frac)
    print(f"  RSS at step {int(r[1]):>7}: {r[2] / 1024:7.1f} MB")
lo, hi = at(0.1), at(1.0)
if hi[1] > lo[1]:
    per10k = (hi[2] - lo[2]) / 1024 / ((hi[1] - lo[1]) / 10000)
    print(f"  growth from 10% to the end: {(hi[2] - lo[2]) / 1024:+.1f} MB ({per10k:+.2f} MB per 10k steps)")
print(f"  peak {max(r[2] for r in rows) / 1024:.1f} MB")
PY
done
