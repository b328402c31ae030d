#!/usr/bin/env bash
# Builds the release executable as it ships: optimized, with the Swift runtime and Foundation linked
# in (--static-swift-stdlib) and its resources embedded, so that the one file runs wherever its
# system libraries are (README, "Install"). In .build-release/release/fletcher; prints that path.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh >&2
swift build -c release --scratch-path .build-release --product fletcher --static-swift-stdlib >&2
echo "$PWD/.build-release/release/fletcher"
