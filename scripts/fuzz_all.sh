#!/usr/bin/env bash
# Fuzzes lrtop's parsers with cargo-fuzz (libFuzzer): every target for
# SECONDS (default 600) in turn, and prints the executions each ran.
#
#   scripts/fuzz_all.sh                     # 10 minutes per target
#   scripts/fuzz_all.sh 3600 policy_spec    # one target for an hour
#   JOBS=2 scripts/fuzz_all.sh 600          # two libFuzzer processes per target
#   RUNS=10000000 scripts/fuzz_all.sh 3600  # stop each at 10M executions (or the hour)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). It passes nightly-only
# flags to rustc; on a stable toolchain RUSTC_BOOTSTRAP=1 (set here) allows
# them. Built without a sanitizer (-s none): the parsers are safe Rust, and
# that doubles the executions; add SANITIZER=address to use ASan.
# New inputs go to fuzz/work/TARGET (ignored by git); the committed seeds
# are fuzz/corpus/TARGET. A crash leaves its input in fuzz/artifacts/TARGET/
# and the script stops: reproduce with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECS=${1:-600}
shift || true
TARGETS=${*:-policy_spec jsonl_record csv_reader trainer_state tfrecord wandb_log}
JOBS=${JOBS:-1}
RUNS=${RUNS:-}
SANITIZER=${SANITIZER:-none}
TARGET_DIR=${FUZZ_TARGET_DIR:-target}
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
cargo fuzz build -s "$SANITIZER" --target-dir "$TARGET_DIR" >&2

summary=()
for t in $TARGETS; do
  mkdir -p "work/$t"
  log="work/$t.log"
  echo "== $t for ${SECS}s (jobs $JOBS) ==" >&2
  # -jobs=1 would still fork a worker that logs to fuzz-0.log: pass it only for several.
  parallel=()
  [ "$JOBS" -gt 1 ] && parallel=(-jobs="$JOBS" -workers="$JOBS")
  [ -n "$RUNS" ] && parallel+=(-runs="$RUNS")
  cargo fuzz run -s "$SANITIZER" --target-dir "$TARGET_DIR" "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$SECS" -max_len=8192 -print_final_stats=1 "${parallel[@]}" \
    >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "$t: CRASH (see $log and artifacts/$t)" >&2; exit 1; }
  # One "stat::number_of_executed_units" line per libFuzzer process.
  if [ "$JOBS" -gt 1 ]; then
    execs=$(cat fuzz-*.log 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' | paste -sd+ | bc)
    rm -f fuzz-*.log
  else
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | paste -sd+ | bc)
  fi
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | sed 's/.* in \([0-9]*\) second/\1/' || true)
  summary+=("$t: $execs executions in ${took:-$SECS}s without a crash ($cov, corpus $(ls "work/$t" | wc -l) inputs)")
done
printf '%s\n' "${summary[@]}"
