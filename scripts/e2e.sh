#!/usr/bin/env bash
# Browser tests: the web UI in a real headless Chromium (Debian's chromium and chromium-driver),
# driven by Selenium from PyPI, against a Fletcher server the tests start themselves.
# Screenshots go to a temporary folder; to refresh the README's, set
# FLETCHER_SCREENSHOTS=docs/screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

# The webhook tests check Fletcher's messages with the formats' own libraries: signatures with
# standardwebhooks, CloudEvents with cloudevents, lineage with openlineage-python; the pages'
# accessibility with axe-core, which axe-selenium-python bundles.
if [[ ! -x .venv-e2e/bin/pytest || ! -x .venv-e2e/bin/schemathesis ]] ||
  ! .venv-e2e/bin/python -c "import standardwebhooks, cloudevents.http, openlineage.client, axe_selenium_python" 2>/dev/null; then
  python3 -m venv .venv-e2e
  .venv-e2e/bin/pip install --quiet --disable-pip-version-check "selenium>=4.20,<5" "pytest>=8,<10" "schemathesis>=4,<5" \
    "standardwebhooks>=1.0,<2" "cloudevents>=1.11,<2" "openlineage-python>=1.20,<2" "axe-selenium-python>=2.1,<3"
fi
export FLETCHER_BIN=${FLETCHER_BIN:-$PWD/.build/debug/fletcher}
[[ -x "$FLETCHER_BIN" ]] || swift build --product fletcher
if [[ -z "${FLETCHER_SCREENSHOTS:-}" ]]; then
  FLETCHER_SCREENSHOTS=$(mktemp -d /tmp/fletcher-screenshots.XXXXXX)
  export FLETCHER_SCREENSHOTS
fi
.venv-e2e/bin/pytest -q -s -p no:cacheprovider Tests/e2e "$@"
