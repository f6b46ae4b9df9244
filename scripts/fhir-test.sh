#!/usr/bin/env bash
# Checks the FHIR R4 export (docs/fhir.md) with an outside validator: runs
# the demo, exports its clinic's records with `katctl clinic fhir` (with and
# without the shared journal), and runs tests/fhir/test_fhir_export.py with
# the PyPI package fhir.resources (R4 4.0.1 models) in a virtual
# environment it creates under ~/.cache/katcore-tools (python3-venv from
# Debian if missing). Ends with pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

tools="${KATCORE_TOOLS:-$HOME/.cache/katcore-tools}"
venv="$tools/fhir-r4-$(sha256sum tests/fhir/requirements.txt | cut -c1-12)"
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "==> installing python3-venv"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$venv/bin/pytest" ]; then
  echo "==> installing the FHIR R4 validator (fhir.resources, PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/fhir/requirements.txt
fi

echo "==> building katctl"
cargo build --locked -p katctl
katctl="$target/debug/katctl"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "==> the demo's record"
"$katctl" demo --plain --data-dir "$work/demo" >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
clinic="$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT id FROM clinics").fetchone()[0])' "$work/demo/clinic.db")"
for variant in default journal; do
  flag=""; [ "$variant" = journal ] && flag="--journal"
  "$katctl" clinic fhir --db "$work/demo/clinic.db" --record-key "$work/demo/clinic.db.record-key" \
    --clinic "$clinic" --out "$work/fhir/$variant" $flag >/dev/null
done

echo "==> validating the export (FHIR R4, LOINC, UCUM, references)"
KATCORE_FHIR_DIR="$work/fhir" "$venv/bin/pytest" -q -p no:cacheprovider tests/fhir/test_fhir_export.py
