#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, property and
# integration tests, and doc tests. Installs what it needs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Crates from the registry, or from ../shared/offline where it cannot be reached.
. scripts/lib/provision.sh
katcore_provision

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy || true
fi
# A step that cannot run fails the run, naming what is missing: never a silent skip.
cargo fmt --version >/dev/null 2>&1 || { echo "test.sh: no rustfmt for $(rustc --version)" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "test.sh: no clippy for $(rustc --version)" >&2; exit 1; }

echo "==> format"
cargo fmt --all --check
echo "==> lints"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> rooms (files under 800 lines, no two modules importing each other)"
python3 scripts/check-rooms.py
echo "==> tests"
cargo nextest run --workspace --locked --profile ci
echo "==> the core and bindings as a phone builds them (no clinic or pem features: the run above unifies them on)"
cargo nextest run -p katcore -p katcore-bindings --locked --profile ci
echo "==> doc tests"
cargo test --workspace --doc --locked
echo "==> benchmarks build (they run with scripts/bench.sh, never in CI)"
cargo bench --workspace --no-run --locked
echo "==> the fuzz targets build (they run with scripts/fuzz.sh, never in CI)"
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
echo "==> the clinic server's suites again, on PostgreSQL (Debian's package, a cluster of its own)"
scripts/postgres-test.sh
echo "==> the FHIR R4 export, checked by an outside validator"
scripts/fhir-test.sh
echo "==> the care team's dashboard in headless Chromium"
scripts/dashboard-test.sh
echo "==> Kotlin bindings on the JVM"
scripts/kotlin-test.sh
echo "==> Swift package on this platform's Swift toolchain"
if command -v swift >/dev/null 2>&1; then
  scripts/swift-test.sh
else
  echo "test.sh: no swift on the PATH: the Swift suite (scripts/swift-test.sh) did NOT run"
fi
