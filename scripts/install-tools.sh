#!/usr/bin/env bash
# install-tools.sh: installs what the tests and the demo need that is not Go
# source of this module, into .tools/bin (ignored by git), so a fresh machine
# needs nothing installed by hand. Idempotent: a tool already at the pinned
# version is kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"

# versitygw: a real S3-compatible server (posix backend) for tests and demo.
# It checks SigV4 signatures and SHA-256 checksums, and supports Object Lock.
VERSITYGW_VERSION=v1.8.0
stamp="$bin/.versitygw-$VERSITYGW_VERSION"
if [ ! -x "$bin/versitygw" ] || [ ! -f "$stamp" ]; then
  echo "install-tools: building versitygw $VERSITYGW_VERSION (about 2 min on a cold module cache)" >&2
  GOBIN="$bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  rm -f "$bin"/.versitygw-*
  touch "$stamp"
fi

# Info-ZIP's unzip and zipinfo: the zip export's tests check that a standard
# unzip accepts what internal/zipstream writes. Installed from the system's
# packages when missing (Debian: the unzip package holds both).
if ! command -v unzip >/dev/null || ! command -v zipinfo >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "install-tools: installing unzip (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >&2
  else
    echo "install-tools: unzip and zipinfo are needed by the tests; install Info-ZIP unzip" >&2
    exit 1
  fi
fi

# Chromium: the web UI's browser test (internal/webui) drives it headless
# through chromedp. Installed from the distribution's packages when missing;
# the test looks for /usr/bin/chromium, or the path in $CHROMIUM.
if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "install-tools: installing chromium (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2; }
  else
    echo "install-tools: chromium is needed by the browser test; install it (Debian: apt-get install chromium) or set CHROMIUM" >&2
    exit 1
  fi
fi
