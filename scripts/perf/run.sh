#!/usr/bin/env bash
# Re-runs the measurements of docs/PERFORMANCE.md: a release build, a throwaway PostgreSQL with
# durable settings (fsync and synchronous commit on, as in production), then scripts/perf/run.py
# (arguments pass through, e.g. --steps curve,sqlite), then the chart.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/ensure-deps.sh test
scripts/release.sh >/dev/null
export FLETCHER_PG_SETTINGS="-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=30min"
scripts/with-postgres.sh python3 scripts/perf/run.py "$@"
if [[ ! -x .venv-perf/bin/python ]]; then
  python3 -m venv .venv-perf
  .venv-perf/bin/pip install --quiet --disable-pip-version-check "matplotlib>=3.8,<4"
fi
.venv-perf/bin/python scripts/perf/chart.py docs/perf/results.json docs/perf/throughput.png
