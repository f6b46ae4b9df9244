#!/usr/bin/env bash
# Runs the care team's dashboard end to end in headless Chromium
# (tests/dashboard/dashboard.test.mjs): `katctl clinic` bootstraps a clinic,
# the katcore-clinic binary serves on loopback, `katctl device` is the
# client's phone, and Debian's chromium, driven by the npm package
# playwright-core, is the clinician's browser. Installs what is missing on
# a fresh machine: chromium (Debian), Node.js and npm (Debian) and
# playwright-core and axe-core (npm, pinned by tests/dashboard/package-lock.json).
#
#   scripts/dashboard-test.sh [--screenshots]
#
# --screenshots writes the pages' screenshots to docs/dashboard/ (what the
# README shows); otherwise they go to a temporary directory.
# Ends with node's test runner's summary (`# pass N`, `# fail N`).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

screenshots=""
case "${1:-}" in
  --screenshots) screenshots="$root/docs/dashboard" ;;
  "") ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "dashboard-test.sh: unknown argument $1" >&2; exit 2 ;;
esac

apt_packages=()
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
# A font with the glyphs the pages use, so screenshots read the same everywhere.
[ -d /usr/share/fonts/truetype/dejavu ] || apt_packages+=(fonts-dejavu-core)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "==> installing ${apt_packages[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

if [ ! -d tests/dashboard/node_modules/playwright-core ] || [ ! -d tests/dashboard/node_modules/axe-core ]; then
  echo "==> installing playwright-core and axe-core (npm)"
  (cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

echo "==> building katctl and katcore-clinic"
cargo build --locked -p katctl -p katcore-clinic

echo "==> the dashboard in headless Chromium"
cd tests/dashboard
KATCORE_BIN_DIR="$target/debug" KATCORE_SCREENSHOTS="$screenshots" \
  node --test --test-timeout=180000 dashboard.test.mjs
