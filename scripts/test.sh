#!/usr/bin/env bash
# The whole test suite: every target's tests, the storage and HTTP tests on both SQLite and a
# throwaway PostgreSQL, then the browser and process tests (on the same PostgreSQL). Installs what
# is missing first; fails at once when the build warns in the project's own code. Arguments go to
# `swift test` (and then the Python tests are skipped), e.g. --filter Search.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh test
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
swift build --build-tests 2>&1 | tee "$build_log"
# The project's own code builds without warnings (dependencies' aside): a warning in a file under
# Sources/ or Tests/ fails the run. The compiler reports a warning only when it compiles the file,
# so the files warned about are touched for the next build to report them again.
own_warnings=$(awk -v logical="$PWD/" -v physical="$(pwd -P)/" '
    / warning: / {
        for (i = 0; i < 2; i++) {
            root = i ? physical : logical
            if (index($0, root "Sources/") == 1 || index($0, root "Tests/") == 1) { print; next }
        }
    }
' "$build_log" | sort -u)
rm -f "$build_log"
if [[ -n $own_warnings ]]; then
  echo "error: the build warns in the project's own code; fix each at its cause:" >&2
  echo "$own_warnings" >&2
  cut -d: -f1 <<<"$own_warnings" | sort -u | while IFS= read -r file; do touch "$file"; done
  exit 1
fi
if [[ $# -gt 0 ]]; then
  FLETCHER_REQUIRE_POSTGRES=1 exec scripts/with-postgres.sh swift test --skip-build "$@"
fi
FLETCHER_REQUIRE_POSTGRES=1 scripts/with-postgres.sh bash -c 'swift test --skip-build && scripts/e2e.sh'
