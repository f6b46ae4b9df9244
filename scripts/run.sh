#!/usr/bin/env bash
# Runs the project's main job: `katctl demo`, a whole at-home session against
# a real clinic server started in-process on loopback. Extra arguments go to
# the demo (e.g. --plain, --data-dir DIR, --keep-running to open the care
# team's dashboard on the demo's data afterwards). Needs only the Rust toolchain
# (and, on a machine without the crate registry, the offline bundle beside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
# Crates from the registry, or from ../shared/offline where it cannot be reached.
. scripts/lib/provision.sh
katcore_provision
cargo build --quiet --locked -p katctl
exec target/debug/katctl demo "$@"
