#!/usr/bin/env bash
# Installs what the tests need from Debian's packages: HAProxy (the load
# balancer in front of the cluster) and a C compiler (the race detector the
# unit tests run with needs cgo). Runs as root in CI; elsewhere it
# uses sudo when it must, and says what is missing if it cannot.
set -euo pipefail
need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing test dependencies: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "missing ${need[*]}; install them (apt-get install ${need[*]}) and re-run" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || true
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
