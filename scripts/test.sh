#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, property and
# integration tests, and doc tests. Installs what it needs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

echo "==> format"
cargo fmt --all --check
echo "==> lints"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> tests"
cargo nextest run --workspace --locked --profile ci
echo "==> doc tests"
cargo test --workspace --doc --locked
echo "==> benchmarks build (they run with scripts/bench.sh, never in CI)"
cargo bench --workspace --no-run --locked
echo "==> the clinic server's suites again, on PostgreSQL (Debian's package, a cluster of its own)"
scripts/postgres-test.sh
echo "==> the FHIR R4 export, checked by an outside validator"
scripts/fhir-test.sh
echo "==> the care team's dashboard in headless Chromium"
scripts/dashboard-test.sh
echo "==> Kotlin bindings on the JVM"
scripts/kotlin-test.sh
