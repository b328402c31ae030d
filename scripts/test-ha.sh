#!/usr/bin/env bash
# The high-availability tests (Tests/ha): PostgreSQL failing over under load through Patroni, etcd
# and HAProxy (the tests start their own clusters with scripts/ha/cluster.py), and the tests that
# need the throwaway PostgreSQL of scripts/with-postgres.sh. Installs what is missing — Debian's
# patroni, etcd-server, haproxy, pgbouncer and postgresql, without starting their services; pytest
# and the other Python packages of scripts/e2e.sh into .venv-e2e — and builds Fletcher only when
# its binary is missing. Arguments go to pytest, e.g. `scripts/test-ha.sh -k failover`.
set -euo pipefail
cd "$(dirname "$0")/.."

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null; then
  missing=()
  for package in patroni etcd-server haproxy pgbouncer; do
    have_pkg "$package" || missing+=("$package")
  done
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  scripts/apt-install.sh "${missing[@]}"
fi

scripts/e2e-venv.sh
export FLETCHER_BIN=${FLETCHER_BIN:-$PWD/.build/debug/fletcher}
if [[ ! -x "$FLETCHER_BIN" ]]; then
  scripts/ensure-deps.sh
  swift build --product fletcher
fi

# Swift's PostgreSQL suites through Debian's PgBouncer in transaction mode (DATABASE_POOLER=transaction),
# then the PgBouncer end-to-end tests; the server records every statement sent
# (pg_stat_statements), and scripts/ha/statements.py checks each against the one-dataset rule
# (docs/DEPLOYMENT.md, "sharding by dataset").
[[ -x .build/debug/fletcherPackageTests.xctest ]] || { scripts/ensure-deps.sh; swift build --build-tests; }
FLETCHER_PG_SETTINGS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=50000 -c pg_stat_statements.track=all" \
  FLETCHER_REQUIRE_POSTGRES=1 scripts/with-postgres.sh scripts/with-pgbouncer.sh bash -c '
    swift test --skip-build &&
    .venv-e2e/bin/pytest -q -s -p no:cacheprovider Tests/ha/test_pgbouncer.py &&
    .venv-e2e/bin/python scripts/ha/statements.py'

# The rest: the failover tests start their own clusters; the fault tests need a throwaway PostgreSQL.
scripts/with-postgres.sh .venv-e2e/bin/pytest -q -s -p no:cacheprovider Tests/ha --ignore Tests/ha/test_pgbouncer.py "$@"
