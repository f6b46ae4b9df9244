#!/usr/bin/env bash
# Runs the Kotlin test suite on the host JVM against the real katcore_ffi
# library (through JNA), including sync against a clinic server started here
# on loopback. Installs what is missing on a fresh machine: a JRE, JNA and
# JUnit 5 (Debian packages), and the Kotlin compiler (npm package
# kotlin-compiler, into ~/.cache/katcore-tools; it ships kotlinx-coroutines).
#
#   scripts/kotlin-test.sh [--profile dev|release|mobile]   (default: dev)
#
# The suite is bindings/tests/kotlin/*.kt plus the Kotlin examples of
# docs/mobile.md and README.md, compiled by kotlinc -Werror with the generated bindings and
# the Android module's hand-written Kotlin (its HTTP transport, which the
# sync test goes through).
# It prints `BENCH kotlin_checklist_evaluate_us=…` (use an optimized
# profile for a number worth quoting) and ends with `kotlin: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's output directory (honours CARGO_TARGET_DIR).
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) target_abs="$target" ;; *) target_abs="$PWD/$target" ;; esac
root="$PWD"
started=$(date +%s)

. scripts/lib/profile.sh
katcore_profile_args "$@"

# ---- tools -------------------------------------------------------------------
kotlin_version="${KOTLIN_COMPILER_VERSION:-2.4.20}"
tools="${KATCORE_TOOLS:-$HOME/.cache/katcore-tools}"
kotlin_home="$tools/kotlin-$kotlin_version/node_modules/kotlin-compiler"
jna_jar=/usr/share/java/jna.jar
junit_jar=/usr/share/java/junit-platform-console-standalone.jar

apt_packages=()
command -v java >/dev/null 2>&1 || apt_packages+=(openjdk-17-jre-headless)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
[ -f "$jna_jar" ] || apt_packages+=(libjna-java libjna-jni)
[ -f "$junit_jar" ] || apt_packages+=(junit5)
if [ ! -x "$kotlin_home/bin/kotlinc" ] && ! command -v npm >/dev/null 2>&1; then apt_packages+=(nodejs npm); fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "==> installing ${apt_packages[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
if [ ! -x "$kotlin_home/bin/kotlinc" ]; then
  echo "==> installing kotlin-compiler@$kotlin_version (npm) into $tools"
  npm install --prefix "$tools/kotlin-$kotlin_version" --no-audit --no-fund --loglevel=error \
    "kotlin-compiler@$kotlin_version" >/dev/null
fi
kotlinc="$kotlin_home/bin/kotlinc"
coroutines_jar="$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"
stdlib_jar="$kotlin_home/lib/kotlin-stdlib.jar"

# ---- builds ------------------------------------------------------------------
scripts/bindings.sh --profile "$profile"
echo "==> building the clinic server and katctl"
cargo build --locked -p katcore-clinic -p katctl

. scripts/lib/clinic.sh
work="$(mktemp -d)"
cleanup() {
  stop_test_clinic
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> compiling the generated Kotlin and the suite (kotlinc $kotlin_version, -Werror)"
kotlin_blocks() { awk '/^```kotlin$/ { keep = 1; next } /^```$/ { keep = 0 } keep' "$1"; }
kotlin_blocks docs/mobile.md >"$work/MobileDocExample.kt"
kotlin_blocks README.md >"$work/ReadmeExample.kt"
compile_cp="$jna_jar:$coroutines_jar:$junit_jar"
"$kotlinc" -Werror -jvm-target 17 -cp "$compile_cp" -d "$work/classes" \
  "$target/bindings/$dir/kotlin/org/katcore/katcore_ffi.kt" android/katcore/src/main/kotlin/org/katcore/*.kt \
  bindings/tests/kotlin/*.kt "$work/MobileDocExample.kt" "$work/ReadmeExample.kt"

# ---- a clinic on loopback -------------------------------------------------------
echo "==> starting a clinic server on loopback"
start_test_clinic "$work" "Kotlin Test Clinic"
url="$clinic_url"
token="$clinic_token"
api() { curl -fsS -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" "$@"; }
api -d '{"label": "Kotlin test client"}' "$url/v1/clients" >"$work/client.json"
client_id="$(json_field client_id "$work/client.json")"
api -d '{}' "$url/v1/clients/$client_id/enrollment-codes" >"$work/code.json"
code="$(json_field code "$work/code.json")"
# A note from the care team, waiting for the device's first sync.
note="Welcome: write to us here whenever you need to."
api -d "{\"text\": \"$note\"}" "$url/v1/clients/$client_id/notes" >/dev/null

# ---- run -------------------------------------------------------------------------
echo "==> running the Kotlin suite against $target/bindings/$dir/lib (server $url)"
set +e
KATCORE_CLINIC_URL="$url" KATCORE_ENROLLMENT_CODE="$code" KATCORE_CARE_TEAM_NOTE="$note" \
  java -Djna.library.path="$target_abs/bindings/$dir/lib" \
  -cp "$work/classes:$stdlib_jar:$coroutines_jar:$jna_jar:$junit_jar" \
  org.junit.platform.console.ConsoleLauncher --disable-banner --disable-ansi-colors --details=tree \
  --scan-class-path "$work/classes" --include-classname '.*Test' 2>&1 | tee "$work/junit.log"
status=${PIPESTATUS[0]}
set -e
passed="$(sed -n 's/.*\[ *\([0-9]*\) tests successful.*/\1/p' "$work/junit.log")"
failed="$(sed -n 's/.*\[ *\([0-9]*\) tests failed.*/\1/p' "$work/junit.log")"
echo "==> Kotlin suite took $(($(date +%s) - started)) s"
echo "kotlin: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
