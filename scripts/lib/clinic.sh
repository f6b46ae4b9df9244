# Sourced by the binding suites (scripts/kotlin-test.sh, scripts/swift-test.sh):
# a real katcore-clinic on loopback for their sync tests.
#
#   start_test_clinic WORK NAME [SERVER ARGS...]
#
# Initialises a SQLite clinic database in WORK (clinic name NAME, one
# clinician), starts `$target/debug/katcore-clinic` on a free loopback port
# with SERVER ARGS added (for example --tls-cert/--tls-key), and waits until
# it listens. Sets `clinic_url`, `clinic_token` (the clinician's bearer token)
# and `clinic_pid`; `stop_test_clinic` ends it. Needs `target` (Cargo's
# output directory) and the debug builds of katcore-clinic and katctl.

json_field() { tr -d '\n' <"$2" | sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"; }

start_test_clinic() {
  local work="$1" name="$2"
  shift 2
  "$target/debug/katctl" clinic init --db "$work/clinic.db" --name "$name" --clinician "Test Clinician" \
    --signing-key-out "$work/pack-signing.pem" --record-key-out "$work/record.key" >"$work/init.json"
  clinic_token="$(json_field clinician_token "$work/init.json")"
  "$target/debug/katcore-clinic" --db "$work/clinic.db" --record-key "$work/record.key" --listen 127.0.0.1:0 "$@" \
    >"$work/server.out" 2>"$work/server.err" &
  clinic_pid=$!
  clinic_url=""
  for _ in $(seq 1 100); do
    clinic_url="$(sed -n 's/^katcore-clinic listening on \(http[^ ]*\).*/\1/p' "$work/server.out")"
    [ -n "$clinic_url" ] && return 0
    kill -0 "$clinic_pid" 2>/dev/null || { cat "$work/server.err" >&2; return 1; }
    sleep 0.1
  done
  echo "the clinic server did not start within 10 s" >&2
  return 1
}

# stop_test_clinic [PID]: ends the clinic `start_test_clinic` last started,
# or the one whose PID is given (kept from an earlier start).
stop_test_clinic() {
  local pid="${1-${clinic_pid:-}}"
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [ $# -gt 0 ] || clinic_pid=""
}
