#!/usr/bin/env bash
# Long tailing soak: 8 files followed for SECONDS (default 3600) while
# writers append in random partial writes and, round after round, rotate,
# truncate, delete and recreate their files. Every round checks that each
# complete record arrived exactly once, in order; the memory use is printed
# every 10 rounds. (The short versions run in `cargo test --test it fault_follow`.)
#
#   scripts/soak_follow.sh            # one hour
#   scripts/soak_follow.sh 86400      # a day
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3600}
LRTOP_SOAK_SECS=$SECS cargo test --release --test it fault_follow -- \
  --ignored --exact soak_follow_with_faults --nocapture
