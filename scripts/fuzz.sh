#!/usr/bin/env bash
# Builds the `cargo fuzz` targets of fuzz/ once and runs each in turn for
# SECONDS (default 600), then prints executions and crashes per target (see
# RELIABILITY.md). One fuzzer at a time: the machine has two cores.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default: every target)
#
# The toolchain is stable: `RUSTC_BOOTSTRAP=1` lets cargo-fuzz pass its
# `-Z` flags (AddressSanitizer and coverage instrumentation). If the
# sanitizer build fails, the targets are built without a sanitizer
# (`--sanitizer none`): panics are still caught, memory errors in C code
# (SQLite) are not. FUZZ_SANITIZER=none forces that.
#
# Each target reads the committed seeds (fuzz/seeds/TARGET) and grows its
# own corpus in fuzz/corpus/TARGET (not committed). A crashing input lands in
# fuzz/artifacts/TARGET; copy it to fuzz/regressions/TARGET once fixed, so
# that `cargo test -p katcore --test fuzz_corpus` replays it on every run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(pack_verify sync_body record_load)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

sanitizer=(--sanitizer "${FUZZ_SANITIZER:-address}")
echo "==> building the fuzz targets (${sanitizer[*]})"
if ! cargo fuzz build -O "${sanitizer[@]}"; then
  echo "==> the sanitizer build failed; building without a sanitizer"
  sanitizer=(--sanitizer none)
  cargo fuzz build -O "${sanitizer[@]}"
fi

summary=()
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  before="$(find "artifacts/$target" -type f | wc -l)"
  log="$(mktemp -t "fuzz-$target.XXXXXX.log")"
  echo "==> $target for ${seconds} s (log: $log)"
  set +e
  cargo fuzz run -O "${sanitizer[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 >"$log" 2>&1
  code=$?
  set -e
  # libFuzzer's final stats: `stat::number_of_executed_units: N`, and
  # `Done N runs in S second(s)` when it ran out its time without a crash.
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n1 | grep -o '[0-9]*$' || true)"
  if [[ -z "$execs" ]]; then
    execs="$(grep -o 'Done [0-9]* runs' "$log" | tail -n1 | grep -o '[0-9]*' || true)"
  fi
  if [[ -z "$execs" ]]; then
    execs="$(grep -o '^#[0-9]*' "$log" | tail -n1 | tr -d '#' || true)"
  fi
  done_line="$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -n1 || true)"
  after="$(find "artifacts/$target" -type f | wc -l)"
  crashes=$((after - before))
  corpus="$(find "corpus/$target" -type f | wc -l)"
  coverage="$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | grep -o '[0-9]*' || true)"
  if [[ $code -ne 0 || $crashes -ne 0 ]]; then
    status=1
    grep -E 'panicked|ERROR: |SUMMARY|Test unit written' "$log" | head -n 10 || true
  fi
  line="$target: ${execs:-?} executions, $crashes crashes, exit $code, coverage ${coverage:-?}, corpus $corpus${done_line:+ ($done_line)}"
  echo "$line"
  summary+=("$line")
done

echo "==> summary (${seconds} s per target, ${sanitizer[*]})"
printf '%s\n' "${summary[@]}"
exit "$status"
