#!/usr/bin/env bash
# Headless Chromium for tests/pipelines/report/test_report_browser.py: Debian's `chromium` package.
# Idempotent: prints the browser's path when it is there or once installed. Exits 1 when it
# cannot be installed (not root and no sudo, no apt-get, no package registry); the browser
# test then skips and says why.
set -uo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then command -v "$b"; exit 0; fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "browser_setup: not root and no sudo: cannot install chromium" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser_setup: no apt-get here: install Chromium yourself to run the browser test" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq chromium >/dev/null; }; then
  echo "browser_setup: apt-get install chromium failed" >&2; exit 1
fi
command -v chromium
