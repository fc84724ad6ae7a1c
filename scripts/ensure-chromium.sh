#!/usr/bin/env bash
# Makes sure a Chromium is there for the console's browser tests (tests/console): Debian's
# `chromium` package, installed with apt when /usr/bin/chromium (or $CHROMIUM) is missing.
# Playwright's own browser download is not used: it is not reachable from every machine.
set -euo pipefail

browser=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$browser" ]; then
  echo "chromium: $browser"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "no Chromium at $browser: install Debian's chromium package (apt-get install chromium)," \
    "or point CHROMIUM at one; the browser tests fail under CI without it" >&2
  exit 1
fi
echo "installing chromium with apt" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x "$browser" ] || { echo "chromium was installed but $browser is still missing" >&2; exit 1; }
echo "chromium: $browser"
