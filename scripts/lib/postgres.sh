# Sourced by scripts: start_postgres DIR starts a PostgreSQL cluster of its
# own (Debian's `postgresql` package, installed if missing) in DIR, on a
# free loopback port, speaking TLS with a certificate of a CA made for it,
# and exports KATCORE_TEST_POSTGRES with a database `katcore_test` on it and
# KATCORE_TEST_POSTGRES_CA with that CA; stop_postgres DIR stops it. The cluster runs as an
# unprivileged user (`postgres` when this runs as root: initdb refuses root).

postgres_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

ensure_postgres() {
  # PostgreSQL, and openssl for the cluster's test certificates.
  if [ -z "$(postgres_bin)" ] || ! command -v openssl >/dev/null; then
    echo "==> installing PostgreSQL and openssl (Debian packages)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql openssl >/dev/null
  fi
}

# Runs a command as the cluster's owner.
as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
  local dir="$1"
  ensure_postgres
  local bin
  bin="$(postgres_bin)"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir"
  fi
  chmod 700 "$dir"
  local port
  port="$(free_port)"
  # A CA of this cluster's own and a certificate for 127.0.0.1 it signs.
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=katcore test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req "${ec[@]}" -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  chmod 600 "$dir/server.key"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir/server.key" "$dir/server.pem"
  fi
  as_pg_owner "$bin/initdb" -D "$dir/data" -U katcore --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
  as_pg_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB \
        -c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key" start >/dev/null
  "$bin/psql" -q -h 127.0.0.1 -p "$port" -U katcore -d postgres -c 'CREATE DATABASE katcore_test' >/dev/null
  export KATCORE_TEST_POSTGRES="postgres://katcore@127.0.0.1:$port/katcore_test"
  export KATCORE_TEST_POSTGRES_CA="$dir/ca.pem"
  echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, TLS ($dir)"
}

stop_postgres() {
  local dir="$1"
  [ -d "$dir/data" ] || return 0
  as_pg_owner "$(postgres_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
