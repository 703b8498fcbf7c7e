#!/usr/bin/env bash
# Installs the Debian packages urok needs, only when they are missing.
#   system-deps.sh build   a C compiler for the package's C extensions (sfu._sendmmsg,
#                          sfu._fastpath, benchmarks._rxbatch); without one, and without root, it
#                          only warns: the server then runs its pure-Python paths
#   system-deps.sh test    the above, required, chromium for the browser tests, and for the Firefox
#                          tests (tests/e2e/firefox) firefox-esr, node/npm and the pinned WebDriver BiDi
#                          driver (puppeteer-core, `npm ci` from its package-lock.json; it never
#                          downloads a browser: the tests use Debian's /usr/bin/firefox-esr)
#                          and postgresql (initdb, pg_ctl) for the store suite's throwaway cluster,
#                          redis-server for the cluster suite's throwaway Redis
set -euo pipefail
mode="${1:-test}"
need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ "$mode" = test ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v firefox-esr >/dev/null 2>&1 || need+=(firefox-esr)
  command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
  # the store suite's throwaway PostgreSQL cluster (tests/unit/store/conftest.py: initdb + pg_ctl)
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # the cluster tests' throwaway Redis (tests/redis_server.py: redis-server on a free port)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  # recordings are probed (ffprobe) and compared; speech for the caption tests is synthesised
  # (espeak-ng); whiteboard exports are rendered back (pdftoppm)
  command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
  command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
  # recorded speech for the noise-suppression tests (tests/noise_audio.py: speaker-test's voice)
  [ -f /usr/share/sounds/alsa/Front_Left.wav ] || need+=(alsa-utils)
  command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
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
# the browser libraries urok serves itself (web/vendor: Yjs, MediaPipe, Twemoji), pinned in its
# package-lock.json; for `make run` only where npm is there (without them the whiteboard, the
# virtual background and the emoji glyphs are off), for the tests always
vendor="$(dirname "$0")/../web/vendor"
if command -v npm >/dev/null 2>&1; then
  if [ ! -d "$vendor/node_modules/yjs" ] || [ "$vendor/package-lock.json" -nt "$vendor/node_modules" ]; then
    echo "system-deps: installing the browser libraries (npm ci in web/vendor)" >&2
    (cd "$vendor" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
    touch "$vendor/node_modules"
  fi
elif [ "$mode" = build ]; then
  echo "system-deps: no npm: the whiteboard, the virtual background and the emoji glyphs are off" >&2
fi
if [ "$mode" = test ]; then
  driver="$(dirname "$0")/../tests/e2e/firefox/driver"
  if [ ! -d "$driver/node_modules/puppeteer-core" ] || [ "$driver/package-lock.json" -nt "$driver/node_modules" ]; then
    echo "system-deps: installing the Firefox test driver (npm ci in tests/e2e/firefox/driver)" >&2
    (cd "$driver" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
    touch "$driver/node_modules"
  fi
fi
