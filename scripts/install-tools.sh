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

# promtool: make test checks deploy/prometheus/alerts.yml with it (check
# rules, test rules). Debian's prometheus package ships it beside the
# server; only promtool is unpacked from the downloaded package into
# .tools/bin, so no Prometheus daemon, service or system user is installed.
# Without apt (or without the package), make test skips the check and says so.
if [ ! -x "$bin/promtool" ] && ! command -v promtool >/dev/null; then
  if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
    tmp=$(mktemp -d)
    fetch() { (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>&1); }
    if ! fetch && [ "$(id -u)" = 0 ]; then
      apt-get update -q >/dev/null 2>&1 || true
      fetch || true
    fi
    deb=$(ls "$tmp"/prometheus_*.deb 2>/dev/null | head -n1 || true)
    if [ -n "$deb" ] && dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/bin/promtool; then
      echo "install-tools: promtool from Debian's prometheus package $(basename "$deb")" >&2
      mv "$tmp/usr/bin/promtool" "$bin/promtool"
    else
      echo "install-tools: could not get Debian's prometheus package: make test will skip promtool check rules" >&2
    fi
    rm -rf "$tmp"
  else
    echo "install-tools: no apt-get: promtool not installed; make test will skip promtool check rules" >&2
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
