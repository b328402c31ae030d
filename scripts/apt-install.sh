#!/usr/bin/env bash
# Installs the Debian packages named (with apt, without recommends), starting none of their
# services: installing a server's package (PostgreSQL, etcd, HAProxy, PgBouncer, Prometheus, podman)
# starts its service where an init system runs, and the tests start their own, on free ports. A
# policy-rc.d answering 101 forbids starting services: one is put in place for the install only,
# unless there is one already (Debian's container images have it). Nothing named: nothing to do.
set -euo pipefail
(($#)) || exit 0
echo "Installing missing system packages: $*"
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# Put by scripts/apt-install.sh for the length of an install: start no service.\nexit 101\n' |
    $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "$@"
