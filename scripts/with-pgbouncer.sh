#!/usr/bin/env bash
# Runs a command with Debian's PgBouncer in transaction pooling mode in front of the test
# PostgreSQL server (run it under scripts/with-postgres.sh): PgBouncer listens on a free loopback
# port, passes every database through (`* =`), and is stopped afterwards. The command gets
#   FLETCHER_TEST_POSTGRES_URL         the same database, through PgBouncer
#   FLETCHER_TEST_POSTGRES_DIRECT_URL  the server's own URL (for change listeners)
#   FLETCHER_TEST_POSTGRES_POOLER      transaction
#
#   scripts/with-postgres.sh scripts/with-pgbouncer.sh swift test --skip-build
set -euo pipefail

[[ -n "${FLETCHER_TEST_POSTGRES_URL:-}" ]] || { echo "run under scripts/with-postgres.sh" >&2; exit 1; }
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
[[ -x "$pgbouncer" ]] || { echo "PgBouncer not found: apt-get install pgbouncer" >&2; exit 1; }

direct=$FLETCHER_TEST_POSTGRES_URL
server=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname, p.port, p.username)' "$direct")
read -r host server_port user <<<"$server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/fletcher-pgbouncer.XXXXXX)
chmod 755 "$dir"

# The usual transaction-pooling set-up: prepared statements are not carried across transactions
# (PgBouncer before 1.21 cannot), and the one startup parameter drivers commonly send is ignored.
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
ignore_startup_parameters = extra_float_digits
max_client_conn = 4000
default_pool_size = 200
server_idle_timeout = 10
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
echo "\"$user\" \"\"" >"$dir/userlist.txt"

# PgBouncer refuses to run as root: as the postgres system user then.
as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown -R postgres "$dir"
  as_owner=(runuser -u postgres --)
fi

cleanup() {
  [[ -f "$dir/pgbouncer.pid" ]] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_owner[@]}" "$pgbouncer" -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; exit 1; }
for _ in $(seq 100); do
  python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null && break
  sleep 0.1
done

export FLETCHER_TEST_POSTGRES_DIRECT_URL=$direct
export FLETCHER_TEST_POSTGRES_URL=${direct/:$server_port\//:$port\/}
export FLETCHER_TEST_POSTGRES_POOLER=transaction
echo "PgBouncer $("$pgbouncer" --version | head -1 | awk '{print $2}') (transaction pooling) on 127.0.0.1:$port"
"$@"
