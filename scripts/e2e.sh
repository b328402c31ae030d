#!/usr/bin/env bash
# Browser tests: the web UI in a real headless Chromium (Debian's chromium and chromium-driver),
# driven by Selenium from PyPI, against a Fletcher server the tests start themselves.
# Screenshots go to a temporary folder; to refresh the README's, set
# FLETCHER_SCREENSHOTS=docs/screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/e2e-venv.sh
export FLETCHER_BIN=${FLETCHER_BIN:-$PWD/.build/debug/fletcher}
[[ -x "$FLETCHER_BIN" ]] || swift build --product fletcher
if [[ -z "${FLETCHER_SCREENSHOTS:-}" ]]; then
  FLETCHER_SCREENSHOTS=$(mktemp -d /tmp/fletcher-screenshots.XXXXXX)
  export FLETCHER_SCREENSHOTS
fi
.venv-e2e/bin/pytest -q -s -p no:cacheprovider Tests/e2e "$@"
