#!/usr/bin/env bash
# Builds and runs Fletcher on the embedded default (SQLite file fletcher.sqlite in this folder).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh
swift build -c release --product fletcher
exec .build/release/fletcher serve "$@"
