#!/usr/bin/env bash
# The whole test suite: every target's tests, the storage and HTTP tests on both SQLite and a
# throwaway PostgreSQL, then the browser and process tests (on the same PostgreSQL). Installs what
# is missing first. Arguments go to `swift test` (and then the Python tests are skipped),
# e.g. --filter Search.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh test
swift build --build-tests
if [[ $# -gt 0 ]]; then
  FLETCHER_REQUIRE_POSTGRES=1 exec scripts/with-postgres.sh swift test --skip-build "$@"
fi
FLETCHER_REQUIRE_POSTGRES=1 scripts/with-postgres.sh bash -c 'swift test --skip-build && scripts/e2e.sh'
