#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: a fresh cluster in a temporary directory,
# listening on a free loopback port, removed afterwards. The command gets its address in
# FLETCHER_TEST_POSTGRES_URL (a database created for it; it may create more).
#
#   scripts/with-postgres.sh swift test
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[[ -z "$bin" ]] && bin=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
[[ -x "$bin/initdb" ]] || { echo "PostgreSQL server binaries (initdb) not found" >&2; exit 1; }

# Tests trade durability for speed; FLETCHER_PG_SETTINGS replaces that (scripts/perf runs durable).
settings=${FLETCHER_PG_SETTINGS:--c fsync=off -c synchronous_commit=off -c full_page_writes=off}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/fletcher-pg.XXXXXX)
chmod 755 "$dir"

# initdb refuses to run as root: run the server as the postgres system user then.
as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi

cleanup() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U fletcher --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=1000 $settings" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
"$bin/createdb" -h 127.0.0.1 -p "$port" -U fletcher fletcher_test

export FLETCHER_TEST_POSTGRES_URL="postgres://fletcher@127.0.0.1:$port/fletcher_test?sslmode=disable"
export FLETCHER_TEST_POSTGRES_BIN="$bin" FLETCHER_TEST_POSTGRES_DATA="$dir/data"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
"$@"
