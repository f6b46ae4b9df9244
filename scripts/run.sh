#!/usr/bin/env bash
# Runs the project's main job. Until `katctl demo` lands, a short tour of the
# engine through katctl: a checklist that must wait, one that is ready, and a
# PHQ-9 check-in that raises a crisis response.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked -p katctl
katctl=target/debug/katctl
for example in examples/checklist-wait.json examples/checklist-ready.json; do
  echo "==> katctl checklist evaluate $example"
  "$katctl" checklist evaluate "$example"
done
echo "==> katctl score phq9 1,1,0,1,2,0,1,0,1"
"$katctl" score phq9 1,1,0,1,2,0,1,0,1
