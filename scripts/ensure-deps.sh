#!/usr/bin/env bash
# Installs the system packages Fletcher needs to build and test, when they are missing (Debian/Ubuntu
# via apt; on macOS, Homebrew). Safe to run repeatedly: it does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_test_tools=${1:-}

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if [[ "$(uname)" == "Darwin" ]]; then
  command -v brew >/dev/null || { echo "Install Homebrew (https://brew.sh) first." >&2; exit 1; }
  brew list graphviz >/dev/null 2>&1 || brew install graphviz
  [[ -n "$need_test_tools" ]] && { brew list postgresql@15 >/dev/null 2>&1 || brew install postgresql@15; }
  exit 0
fi

command -v swift >/dev/null || { echo "Swift 6.2 or later must be on PATH (https://swift.org/install)." >&2; exit 1; }
command -v dpkg-query >/dev/null || { echo "No dpkg: install SQLite's headers (libsqlite3-dev) yourself." >&2; exit 0; }

have_pkg libsqlite3-dev || missing+=(libsqlite3-dev)
have_pkg libgraphviz-dev || missing+=(libgraphviz-dev)
if [[ -n "$need_test_tools" ]]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  # Prometheus and promtool, for the tests of deploy/prometheus and deploy/grafana.
  command -v promtool >/dev/null || missing+=(prometheus)
fi

scripts/apt-install.sh "${missing[@]}"
