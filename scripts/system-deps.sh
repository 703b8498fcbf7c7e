#!/usr/bin/env bash
# Installs the Debian packages urok needs, only when they are missing.
#   system-deps.sh build   a C compiler for the package's C extensions (sfu._sendmmsg,
#                          sfu._fastpath, benchmarks._rxbatch); without one, and without root, it
#                          only warns: the server then runs its pure-Python paths
#   system-deps.sh test    the above, required, and chromium for the browser tests
set -euo pipefail
mode="${1:-test}"
need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ "$mode" = test ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    if [ "$mode" = build ]; then
      echo "system-deps: no C compiler (${need[*]}); the C extensions are not built, the pure-Python paths run" >&2
      exit 0
    fi
    echo "system-deps: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "system-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
