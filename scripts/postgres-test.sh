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

cargo nextest run -p katcore-clinic --locked --profile ci
