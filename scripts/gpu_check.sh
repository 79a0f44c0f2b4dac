#!/usr/bin/env bash
# The GPU check of issue 15, for a machine with an NVIDIA GPU and no Rust
# toolchain (this workplace's lent machines: driver 580, CUDA 13.0, PyTorch
# under /opt/torch/.venv). Under 8 minutes. It runs a CUDA build of lrtop
# made elsewhere:
#
#   here:   CUDA_VERSION=13.0 scripts/cuda_build.sh build   # -> target/gpu-carry/lrtop.xz
#   there:  scripts/gpu_check.sh [BINARY]     # default: target/gpu-carry/lrtop(.xz)
#
# It trains the same Llama for 200 updates with the same seed on the CPU
# (f32), on cuda:0 in f32 and on cuda:0 in bf16, then prints:
#   - how far the loss curves are apart (f32 GPU vs CPU: within 1e-3
#     relative at step 200; bf16 vs f32: within 2%), PASS/FAIL each;
#   - tokens/s on the GPU and on the CPU;
#   - the peak GPU memory lrtop's process used (nvidia-smi, sampled);
#   - PyTorch's tokens/s for the same model and step (transformers'
#     LlamaForCausalLM, AdamW), f32 and bf16 autocast, when it is installed.
#
# GPU_CHECK_DEVICE=cpu runs every part on the CPU (a dry run of the script
# itself, on any machine with a CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/gpu-carry/lrtop}
if [ ! -x "$BIN" ] && [ -f "$BIN.xz" ]; then
  xz -dkc "$BIN.xz" >"$BIN" && chmod +x "$BIN"
fi
# Only the default falls back (to a CPU build, for a dry run): a binary
# named on the command line is the one checked.
[ -x "$BIN" ] || [ -n "${1:-}" ] || BIN=target/release/lrtop
[ -x "$BIN" ] || { echo "gpu_check: $BIN is not an executable lrtop" >&2; exit 1; }
DEV=${GPU_CHECK_DEVICE:-cuda:0}
STEPS=${GPU_CHECK_STEPS:-200}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for p in /opt/torch/.venv/bin/python3 python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then PY=$p; break; fi
  done
fi

# cuBLAS, cuRAND and the runtime from PyTorch's wheels when the system has none.
if [ -n "$PY" ]; then
  libs=$("$PY" - <<'EOF' 2>/dev/null || true
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
dirs = sorted({os.path.dirname(p) for r in roots for p in glob.glob(r + "/**/lib/lib*.so*", recursive=True)})
print(":".join(dirs))
EOF
)
  [ -n "$libs" ] && export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

echo "== gpu_check: $("$BIN" --version 2>/dev/null || echo lrtop) on $DEV, $STEPS updates, out $OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

# The model: the tiny checkpoint's shape is too small to time, so the
# throughput runs use a 4-layer Llama of width 256 on the same tokens.
TASK="tokens=tests/fixtures/reference-models/progressions"
TINY=(--model llama --init tests/fixtures/reference-models/tiny-llama --seq-len 32 --batch-size 16)
WIDE=(--model "llama(dim=256,layers=4,heads=4,kv_heads=4)" --seq-len 128 --batch-size 16)
COMMON=(train --headless --task "$TASK" --optimizer adamw --seed 7 --eval-every 0
  --policy "COS(k0=0.001,k1=0.0001,l=$STEPS)")

gpu_used() { # MiB in use on GPU 0, or nothing without nvidia-smi
  command -v nvidia-smi >/dev/null &&
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null | head -n 1 || true
}

run() { # name device dtype steps model-args...
  local name=$1 device=$2 dtype=$3 steps=$4
  shift 4
  local peak=0 pid base used
  # The GPU's used memory above what it held before the run (process ids
  # in nvidia-smi's per-process list are the host's inside a container).
  base=$(gpu_used)
  "$BIN" "${COMMON[@]}" --steps "$steps" "$@" --device "$device" --dtype "$dtype" \
    --log "$OUT/$name.jsonl" >"$OUT/$name.out" 2>"$OUT/$name.err" &
  pid=$!
  if [ "$device" != cpu ] && [ -n "$base" ]; then
    while kill -0 "$pid" 2>/dev/null; do
      used=$(gpu_used)
      [ -n "$used" ] && [ $((used - base)) -gt "$peak" ] && peak=$((used - base))
      sleep 0.2
    done
  fi
  if ! wait "$pid"; then
    echo "$name: lrtop failed:" >&2
    tail -n 20 "$OUT/$name.err" >&2
    return 1
  fi
  echo "$peak" >"$OUT/$name.peak_mib"
}

status=0
run cpu_f32 cpu f32 "$STEPS" "${TINY[@]}" || status=1
run gpu_f32 "$DEV" f32 "$STEPS" "${TINY[@]}" || status=1
run gpu_bf16 "$DEV" bf16 "$STEPS" "${TINY[@]}" || status=1
run wide_cpu cpu f32 20 "${WIDE[@]}" || status=1
run wide_gpu_f32 "$DEV" f32 "$STEPS" "${WIDE[@]}" || status=1
run wide_gpu_bf16 "$DEV" bf16 "$STEPS" "${WIDE[@]}" || status=1

python3 - "$OUT" "$STEPS" <<'EOF' || status=1
import json, os, sys
out, steps = sys.argv[1], int(sys.argv[2])
def losses(name):
    got = {}
    for line in open(os.path.join(out, name + ".jsonl")):
        rec = json.loads(line)
        if "loss" in rec and "step" in rec:
            got[rec["step"]] = rec["loss"]
    return got
def summary(name):
    return json.loads(open(os.path.join(out, name + ".out")).read().strip().splitlines()[-1])
cpu, f32, bf16 = losses("cpu_f32"), losses("gpu_f32"), losses("gpu_bf16")
last = max(cpu)
ok = True
for label, got, want, tol in (("f32 GPU vs CPU", f32, cpu, 1e-3), ("bf16 GPU vs f32 GPU", bf16, f32, 0.02)):
    rel = abs(got[last] - want[last]) / abs(want[last])
    worst = max(abs(got[s] - want[s]) / abs(want[s]) for s in want if s in got)
    verdict = "PASS" if rel <= tol else "FAIL"
    ok &= rel <= tol
    print(f"{label}: step {last} loss {got[last]:.6g} vs {want[last]:.6g}, relative {rel:.2e} "
          f"(worst step {worst:.2e}; limit {tol:g}) {verdict}")
for name, tokens in (("wide_cpu", 16 * 128), ("wide_gpu_f32", 16 * 128), ("wide_gpu_bf16", 16 * 128)):
    s = summary(name)
    peak = open(os.path.join(out, name + ".peak_mib")).read().strip()
    print(f"{name}: {s['steps_per_s'] * tokens:,.0f} tokens/s ({s['steps_per_s']:.2f} updates/s), "
          f"peak GPU memory {peak} MiB, final train loss {s.get('final_train_loss')}")
sys.exit(0 if ok else 1)
EOF

if [ -n "$PY" ]; then
  "$PY" scripts/torch_llama_step.py --device "${DEV%%:*}" --steps 30 || status=1
else
  echo "PyTorch: not installed here, no comparison"
fi
exit $status
