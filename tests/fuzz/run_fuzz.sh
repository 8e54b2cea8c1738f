#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run_fuzz.sh FUZZER SEED_DIR SECONDS: fuzzes for a bounded time, starting from the seeds.
# New inputs go to a scratch directory (never the source tree); a crash leaves its input in
# fuzz-artifacts/ under the current (build) directory, and fails the test.
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p fuzz-artifacts
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz-artifacts/$(basename "$fuzzer")-" "$work" "$seeds"
