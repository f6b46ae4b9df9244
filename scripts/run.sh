#!/usr/bin/env bash
# Runs the project's main job: `katctl demo`, a whole at-home session against
# a real clinic server started in-process on loopback. Extra arguments go to
# the demo (e.g. --plain, --data-dir DIR, --keep-running to open the care
# team's dashboard on the demo's data afterwards). Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked -p katctl
exec target/debug/katctl demo "$@"
