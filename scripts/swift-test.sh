#!/usr/bin/env bash
# Builds and tests the Swift package ios/ on this machine's Swift toolchain
# (Linux: swift-corelibs-foundation, XCTest and Swift Testing) against the
# real katcore_ffi library, including sync through URLSessionTransport
# against a clinic server started here on loopback.
#
#   scripts/swift-test.sh [--profile dev|release|mobile]   (default: dev)
#
# Steps: scripts/bindings.sh builds the library and generates the Swift
# bindings with the workspace's own uniffi-bindgen; the generated Swift and
# C header are copied into ios/Sources (never committed); the Swift
# examples of docs/mobile.md, README.md and ios/README.md are extracted into the test
# target (ios/extract-doc-examples.sh), so they compile with the suite;
# `swift build` and `swift test` then build the hand-written Swift in the
# Swift 6 language mode with every warning an error (Package.swift).
#
# It prints `BENCH swift_checklist_evaluate_us=…` (use an optimized profile,
# which also builds the Swift in release mode, for a number worth quoting)
# and ends with `swift: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's output directory (honours CARGO_TARGET_DIR).
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) target_abs="$target" ;; *) target_abs="$PWD/$target" ;; esac
started=$(date +%s)

. scripts/lib/profile.sh
katcore_profile_args "$@"
# An optimized profile is for benchmark figures: release Swift, and tests one at a time.
case "$profile" in dev) configuration=debug; serial=() ;; *) configuration=release; serial=(--no-parallel) ;; esac
command -v swift >/dev/null 2>&1 || { echo "swift-test.sh: no swift on the PATH" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "swift-test.sh: needs curl" >&2; exit 1; }
command -v openssl >/dev/null 2>&1 || { echo "swift-test.sh: needs openssl (for the TLS test's certificate)" >&2; exit 1; }

# ---- builds ------------------------------------------------------------------
scripts/bindings.sh --profile "$profile"
echo "==> building the clinic server and katctl"
cargo build --locked -p katcore-clinic -p katctl

generated="$target/bindings/$dir/swift"
lib="$target_abs/bindings/$dir/lib"
# The generated target's directory holds only generated files, so a fresh clone has none.
mkdir -p ios/Sources/KatcoreBindings
cp "$generated/Katcore.swift" ios/Sources/KatcoreBindings/Katcore.swift
cp "$generated/KatcoreFFI.h" ios/Sources/KatcoreFFI/KatcoreFFI.h
ios/extract-doc-examples.sh
# The library's directory for the linker, and for the test binary at run time.
link=(-Xlinker -L"$lib" -Xlinker -rpath -Xlinker "$lib")
echo "==> swift build ($configuration; Swift 6 mode, warnings as errors, for the hand-written Swift)"
swift build --package-path ios -c "$configuration" --build-tests "${link[@]}"

# ---- clinics on loopback: one over HTTP, one over TLS with a certificate nobody trusts ----
. scripts/lib/clinic.sh
work="$(mktemp -d)"
tls_pid=""
cleanup() {
  stop_test_clinic
  stop_test_clinic "$tls_pid"
  rm -rf "$work"
}
trap cleanup EXIT
echo "==> starting clinic servers on loopback"
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null
start_test_clinic "$work/tls" "Untrusted TLS Clinic" --tls-cert "$work/tls/cert.pem" --tls-key "$work/tls/key.pem"
tls_url="$clinic_url" tls_pid="$clinic_pid" clinic_pid=""
start_test_clinic "$work" "Swift Test Clinic"

# ---- run -------------------------------------------------------------------------
echo "==> swift test against $lib (server $clinic_url)"
set +e
KATCORE_CLINIC_URL="$clinic_url" KATCORE_CLINICIAN_TOKEN="$clinic_token" KATCORE_UNTRUSTED_TLS_URL="$tls_url" \
  swift test --package-path ios -c "$configuration" ${serial[@]+"${serial[@]}"} "${link[@]}" 2>&1 | tee "$work/swift-test.log"
status=${PIPESTATUS[0]}
set -e
# Swift Testing prints one line per test: `✔ Test name() passed after …` / `✘ Test name() failed after …`.
passed="$(grep -v '^. Test run with' "$work/swift-test.log" | grep -c '^✔ Test .* passed after' || true)"
failed="$(grep -v '^. Test run with' "$work/swift-test.log" | grep -c '^✘ Test .* failed after' || true)"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "==> Swift suite took $(($(date +%s) - started)) s"
echo "swift: $passed passed, $failed failed"
exit "$status"
