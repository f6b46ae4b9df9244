#!/usr/bin/env bash
# Runs the clinic server's suites (storage, API, sync, access matrix, server
# kills, two instances on one database) against a real PostgreSQL server:
# Debian's `postgresql`, installed if missing, in a cluster of its own on a
# free loopback port, stopped and removed at the end. `scripts/test.sh` runs
# the same suites on SQLite first.
#
#   scripts/postgres-test.sh            # the suites
#   scripts/postgres-test.sh --shell    # a cluster for manual work: prints
#                                       # KATCORE_TEST_POSTGRES, stops on Enter
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/postgres.sh

cluster="$(mktemp -d /tmp/katcore-pg-XXXXXX)"
trap 'stop_postgres "$cluster"' EXIT
start_postgres "$cluster"

if [ "${1:-}" = "--shell" ]; then
  echo "export KATCORE_TEST_POSTGRES=$KATCORE_TEST_POSTGRES KATCORE_TEST_POSTGRES_CA=$KATCORE_TEST_POSTGRES_CA"
  read -r -p "press Enter to stop the cluster " _
  exit 0
fi

cargo nextest run -p katcore-clinic -p katcore-e2e --locked --profile ci

echo "==> katctl and the server binary on PostgreSQL"
cargo build -q --locked -p katctl -p katcore-clinic
bin=target/debug
work="$cluster/smoke"
mkdir -p "$work"
"$(postgres_bin)/psql" -q "$KATCORE_TEST_POSTGRES" -c 'CREATE DATABASE katcore_smoke' >/dev/null
url="${KATCORE_TEST_POSTGRES%/*}/katcore_smoke"
export KATCORE_CLINIC_DATABASE_CA="$KATCORE_TEST_POSTGRES_CA"
created="$(printf 'a long enough password\n' | "$bin/katctl" clinic init --database-url "$url" --name "Smoke Clinic" \
  --clinician "Dr. Smoke" --signing-key-out "$work/signing.pem" --record-key-out "$work/record.key" --login smoke)"
token="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["clinician_token"])' <<<"$created")"
clinic="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["clinic_id"])' <<<"$created")"
"$bin/katctl" clinic add-clinician --database-url "$url" --clinic "$clinic" --name "Nurse Smoke" >/dev/null
"$bin/katcore-clinic" --database-url "$url" --record-key "$work/record.key" --listen 127.0.0.1:0 \
  >"$work/server.out" 2>"$work/server.err" &
server=$!
trap 'kill "$server" 2>/dev/null || true; stop_postgres "$cluster"' EXIT
for _ in $(seq 1 100); do grep -q listening "$work/server.out" 2>/dev/null && break; sleep 0.1; done
base="$(awk '/listening/ {print $NF}' "$work/server.out")"
# HTTP from python3 (already needed here), not curl, which a fresh machine may lack.
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=10)' "$base"
client="$(python3 - "$base" "$token" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/v1/clients", data=json.dumps({"label": "client-smoke"}).encode(),
                                 headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request, timeout=10))["client_id"])
PY
)"
"$bin/katctl" clinic fhir --database-url "$url" --record-key "$work/record.key" --client "$client" \
  | python3 -c 'import json,sys; b = json.load(sys.stdin); assert b["resourceType"] == "Bundle", b'
kill "$server"
wait "$server" 2>/dev/null || true
# A clinic on SQLite, copied into an empty PostgreSQL database.
"$bin/katctl" clinic init --db "$work/old.db" --name "Old Clinic" --clinician "Dr. Old" \
  --signing-key-out "$work/old-signing.pem" >/dev/null
"$(postgres_bin)/psql" -q "$KATCORE_TEST_POSTGRES" -c 'CREATE DATABASE katcore_moved' >/dev/null
"$bin/katctl" clinic copy-to-postgres --db "$work/old.db" --database-url "${KATCORE_TEST_POSTGRES%/*}/katcore_moved" \
  | python3 -c 'import json,sys; r = json.load(sys.stdin)["copied_rows"]; assert r["clinics"] == 1 and r["clinicians"] == 1, r'
echo "katctl clinic init / add-clinician / fhir / copy-to-postgres and katcore-clinic on PostgreSQL: ok"
