#!/usr/bin/env bash
# Makes .venv-e2e, the Python environment of the process-level tests (Tests/e2e, Tests/ha), when it
# is missing or incomplete. The webhook tests check Fletcher's messages with the formats' own
# libraries: signatures with standardwebhooks, CloudEvents with cloudevents, lineage with
# openlineage-python; the pages' accessibility with axe-core, which axe-selenium-python bundles;
# the deploy files' tests read YAML with PyYAML; the stand-in trace collector decodes OTLP with
# opentelemetry-proto.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv-e2e/bin/pytest || ! -x .venv-e2e/bin/schemathesis ]] ||
  ! .venv-e2e/bin/python -c "import standardwebhooks, cloudevents.http, openlineage.client, axe_selenium_python, yaml, opentelemetry.proto" 2>/dev/null; then
  python3 -m venv .venv-e2e
  .venv-e2e/bin/pip install --quiet --disable-pip-version-check "selenium>=4.20,<5" "pytest>=8,<10" "schemathesis>=4,<5" \
    "standardwebhooks>=1.0,<2" "cloudevents>=1.11,<2" "openlineage-python>=1.20,<2" "axe-selenium-python>=2.1,<3" \
    "PyYAML>=6,<7" "opentelemetry-proto>=1.20,<2"
fi
