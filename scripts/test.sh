#!/usr/bin/env bash
# Runs the whole test suite: SQLite always, and PostgreSQL too.
#
# When PARLEY_TEST_POSTGRES_URL is not set and PostgreSQL's server binaries are
# installed (Debian: apt-get install postgresql), a throwaway server is started
# in a temporary directory on 127.0.0.1 and stopped afterwards. With CI=true a
# missing PostgreSQL is an error rather than a skip. Extra arguments go to
# `go test` (default: ./...).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${PARLEY_TEST_POSTGRES_URL:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
    pg_dir=$(mktemp -d /tmp/parley-pg.XXXXXX)
    chmod 755 "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
    port=$(( 20000 + RANDOM % 20000 ))
    as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U parley --auth=trust -E UTF8 >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
    as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U parley parley_test
    export PARLEY_TEST_POSTGRES_URL="postgres://parley@127.0.0.1:$port/parley_test?sslmode=disable"
    echo "test.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
  elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
  else
    echo "test.sh: PostgreSQL not installed; running SQLite tests only" >&2
  fi
fi
if [ -n "${PARLEY_TEST_POSTGRES_URL:-}" ]; then export PARLEY_REQUIRE_POSTGRES=1; fi
# In CI the local speech engines and the softphone end-to-end tests must run,
# not skip (.ci/run installs espeak-ng, pocketsphinx and baresip).
if [ "${CI:-}" = "true" ]; then
  export PARLEY_REQUIRE_LOCAL_SPEECH=1 PARLEY_REQUIRE_E2E=1
  # .ci/run installs ONNX Runtime and the model (scripts/silero-setup.sh).
  export PARLEY_REQUIRE_SILERO=1
fi

if [ "$#" -eq 0 ]; then set -- ./...; fi
go test -mod=readonly -race -count=1 "$@"
