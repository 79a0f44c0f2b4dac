#!/usr/bin/env bash
# Builds lrtop with CUDA on a machine that has no system CUDA (and no GPU):
# nvcc, the CUDA headers and libraries come from PyPI's nvidia-* wheels,
# installed into a venv of their own.
#
#   scripts/cuda_build.sh            # cargo check --features cuda (9 min on 2 cores)
#   scripts/cuda_build.sh build      # cargo build --release --features cuda, then
#                                    # target/gpu-carry/lrtop.xz (stripped, 11 MB) to carry
#   scripts/cuda_build.sh env        # print the environment (eval "$(scripts/cuda_build.sh env)")
#
#   CUDA_VERSION=13.0 scripts/cuda_build.sh build   # match a machine's driver
#   CUDA_COMPUTE_CAP=90                             # the GPU's compute capability (H100/H200: 90)
#
# cudarc 0.19 (under Candle 0.11) knows CUDA up to 13.4, hence the default.
# A binary built against CUDA 13.x runs on a driver of that minor version or
# newer. Checking compiles Candle's kernels (nvcc) and type-checks lrtop
# with the feature; only a build's final link needs the driver's libcuda.so:
# where there is none (no GPU here), the link uses a stub library generated
# from the symbols the link asks for, and the binary loads the real one
# where it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Its own target folder: a CUDA build must not replace the CPU one.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}

MODE=${1:-check}
VER=${CUDA_VERSION:-13.4}
CAP=${CUDA_COMPUTE_CAP:-90}
VENV=${CUDA_VENV:-$HOME/.cache/lrtop-cuda-$VER}

case "$VER" in
13.4) CCCL="13.3.5.0.6" ;; # the cccl release that ships with 13.4's nvcc
*) CCCL="$VER.*" ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import nvidia' 2>/dev/null ||
  [ ! -e "$VENV/.lrtop-cuda-$VER" ]; then
  echo "cuda_build: installing CUDA $VER wheels into $VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "nvidia-cuda-nvcc==$VER.*" "nvidia-cuda-runtime==$VER.*" \
    "nvidia-cuda-nvrtc==$VER.*" "nvidia-nvvm==$VER.*" "nvidia-cuda-crt==$VER.*" \
    "nvidia-cuda-cccl==$CCCL" "nvidia-cublas" "nvidia-curand" >&2
  touch "$VENV/.lrtop-cuda-$VER"
fi

# CUDA 13's wheels install under nvidia/cu13 (12's used other folders:
# this script is for 13.x, which cudarc 0.19 supports up to 13.4).
C=$(ls -d "$VENV"/lib/python3*/site-packages/nvidia/cu13 2>/dev/null | head -n 1)
[ -n "$C" ] && [ -x "$C/bin/nvcc" ] || { echo "cuda_build: no nvcc under $VENV (CUDA 13.x wheels)" >&2; exit 1; }
# The wheels ship lib*.so.13 only; the linker looks for lib*.so.
for lib in "$C"/lib/lib*.so.*; do
  base=${lib%%.so.*}.so
  [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
done

export PATH="$C/bin:$PATH" CUDA_ROOT="$C" CUDA_PATH="$C" CUDA_TOOLKIT_ROOT_DIR="$C"
export CUDA_COMPUTE_CAP="$CAP" LIBRARY_PATH="$C/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export NVCC_PREPEND_FLAGS="-I$C/include/cccl ${NVCC_PREPEND_FLAGS:-}"

# A libcuda.so stub for the link when the driver's is absent: cudarc links
# the driver API dynamically, so the link needs each cu* function it calls.
# The stub defines them all (taken from cudarc's own object code) and is
# named libcuda.so.1 inside, as the driver's library, which the binary then
# loads where it runs. The stub never ships: its folder is for the linker only.
stub_libcuda() {
  # The linker's -lcuda wants the unversioned name, as a driver's
  # development link provides it.
  local found
  found=$(ldconfig -p 2>/dev/null || true)
  if grep -q '^[[:space:]]*libcuda\.so ' <<<"$found"; then
    return
  fi
  local stub="$VENV/stub" rlib
  mkdir -p "$stub"
  export LIBRARY_PATH="$stub:$LIBRARY_PATH"
  cargo build --release --features cuda --lib # builds cudarc; no final link yet
  rlib=$(ls -t "$CARGO_TARGET_DIR"/release/deps/libcudarc-*.rlib | head -n 1)
  { nm -u --format=just-symbols "$rlib" 2>/dev/null || true; } | { grep -E '^cu[A-Z]' || true; } |
    sort -u | sed 's/.*/void &(void) {}/' >"$stub/libcuda_stub.c"
  [ -s "$stub/libcuda_stub.c" ] || { echo "cuda_build: found no driver calls in $rlib" >&2; exit 1; }
  echo "cuda_build: no libcuda.so here: linking against a stub of $(wc -l <"$stub/libcuda_stub.c") driver functions" >&2
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/libcuda_stub.c"
}

case "$MODE" in
env)
  echo "export PATH='$PATH' CUDA_ROOT='$C' CUDA_PATH='$C' CUDA_COMPUTE_CAP='$CAP'"
  echo "export LIBRARY_PATH='$LIBRARY_PATH' NVCC_PREPEND_FLAGS='$NVCC_PREPEND_FLAGS'"
  ;;
check)
  nvcc --version | tail -n 2 >&2
  cargo check --release --features cuda --all-targets
  ;;
build)
  nvcc --version | tail -n 2 >&2
  stub_libcuda
  cargo build --release --features cuda
  # What gpu_check.sh runs on a machine without Rust: stripped and
  # compressed (the kernels' PTX makes the stripped binary ~65 MB).
  mkdir -p target/gpu-carry
  strip -o target/gpu-carry/lrtop "$CARGO_TARGET_DIR/release/lrtop"
  xz -T0 -6 -f target/gpu-carry/lrtop
  echo "cuda_build: $CARGO_TARGET_DIR/release/lrtop; to carry: target/gpu-carry/lrtop.xz ($(du -h target/gpu-carry/lrtop.xz | cut -f1))" >&2
  ;;
*)
  echo "usage: scripts/cuda_build.sh [check|build|env]" >&2
  exit 2
  ;;
esac
