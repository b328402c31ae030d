#!/usr/bin/env bash
# The whole test suite: every target's tests, the storage and HTTP tests on both SQLite and a
# throwaway PostgreSQL, then the browser tests. Installs what is missing first.
# Arguments go to `swift test` (and then the browser tests are skipped), e.g. --filter Search.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh test
swift build --build-tests
FLETCHER_REQUIRE_POSTGRES=1 scripts/with-postgres.sh swift test --skip-build "$@"
if [[ $# -eq 0 ]]; then
  scripts/e2e.sh
fi
