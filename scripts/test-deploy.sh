#!/usr/bin/env bash
# The deployment tests (Tests/deploy): the container image and the systemd unit.
#
#   - builds the release binary when $FLETCHER_RELEASE_BIN (default .build-release/release/fletcher)
#     is missing (scripts/release.sh: the Swift runtime linked statically, resources embedded);
#   - installs it with `make install` into a scratch prefix: the manual page, the completions,
#     `--version` (Tests/deploy/test_install.py);
#   - builds the image from Debian's packages (scripts/image.sh: mmdebstrap, podman; no registry);
#   - runs it with podman on SQLite in a volume and on a throwaway PostgreSQL: plans in and out,
#     the HEALTHCHECK, the non-root uid, a graceful stop (Tests/deploy/test_image.py);
#   - checks deploy/systemd/fletcher.service: systemd-analyze verify and its exposure score, the
#     binary run with the unit's environment as an unprivileged user, and the unit run by systemd
#     booted in a podman container from a minimal Debian (Tests/deploy/test_systemd.py).
#
# Installs what is missing (mmdebstrap, podman, runc, systemd, postgresql, python3-venv;
# starting no service) and the Python packages of .venv-e2e. Arguments go to pytest, e.g.
# `scripts/test-deploy.sh -k systemd`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
scripts/apt-install.sh "${missing[@]}"

export FLETCHER_RELEASE_BIN=${FLETCHER_RELEASE_BIN:-$PWD/.build-release/release/fletcher}
if [[ ! -x $FLETCHER_RELEASE_BIN ]]; then
  FLETCHER_RELEASE_BIN=$(scripts/release.sh)
  started=$SECONDS
fi

export FLETCHER_IMAGE=${FLETCHER_IMAGE:-localhost/fletcher:latest}
scripts/image.sh "$FLETCHER_RELEASE_BIN"
scripts/e2e-venv.sh
status=0
scripts/with-postgres.sh .venv-e2e/bin/pytest -q -s -p no:cacheprovider Tests/deploy "$@" || status=$?
echo "test-deploy: $((SECONDS - started)) s (without building the binary)"
exit "$status"
