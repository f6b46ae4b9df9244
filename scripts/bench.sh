#!/usr/bin/env bash
# Runs the benchmarks (see BENCHMARKS.md). Extra arguments go to criterion,
# e.g. `scripts/bench.sh open_store` runs only that benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p katcore --bench record -- "$@"
