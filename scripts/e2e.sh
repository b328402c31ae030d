#!/usr/bin/env bash
# Browser tests: the web UI in a real headless Chromium (Debian's chromium and chromium-driver),
# driven by Selenium from PyPI, against a Fletcher server the tests start themselves.
# Screenshots go to a temporary folder; to refresh the README's, set
# FLETCHER_SCREENSHOTS=docs/screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv-e2e/bin/pytest || ! -x .venv-e2e/bin/schemathesis ]]; then
  python3 -m venv .venv-e2e
  .venv-e2e/bin/pip install --quiet --disable-pip-version-check "selenium>=4.20,<5" "pytest>=8,<10" "schemathesis>=4,<5"
fi
export FLETCHER_BIN=${FLETCHER_BIN:-$PWD/.build/debug/fletcher}
[[ -x "$FLETCHER_BIN" ]] || swift build --product fletcher
if [[ -z "${FLETCHER_SCREENSHOTS:-}" ]]; then
  FLETCHER_SCREENSHOTS=$(mktemp -d /tmp/fletcher-screenshots.XXXXXX)
  export FLETCHER_SCREENSHOTS
fi
.venv-e2e/bin/pytest -q -s -p no:cacheprovider Tests/e2e "$@"
