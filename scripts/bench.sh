#!/usr/bin/env bash
# Runs the benchmarks (see BENCHMARKS.md). Extra arguments go to criterion,
# e.g. `scripts/bench.sh open_store` runs only that benchmark.
#
# Without arguments it then runs the sync measurements (BENCHMARKS.md, "Sync
# (issue 4)"): bytes and round trips on the wire (`sync_wire`), then the clinic
# server's throughput with `katcore-load`, closed loop and paced at 500
# syncs/s. Set KATCORE_BENCH_SYNC=0 to skip them.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p katcore --bench record -- "$@"

if [[ $# -eq 0 && "${KATCORE_BENCH_SYNC:-1}" != 0 ]]; then
  cargo bench -p katcore-e2e --bench sync_wire
  cargo run --release -p katcore-e2e --bin katcore-load -- --levels 50,200,1000 --seconds 10 --runs 3
  cargo run --release -p katcore-e2e --bin katcore-load -- --levels 50,200,1000 --seconds 10 --runs 3 --rate 500
fi
