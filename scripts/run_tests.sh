#!/usr/bin/env bash
# Installs what the tests need (venv, both requirement files, Debian's chromium
# when run as root) and runs the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
cat requirements.txt requirements-dev.txt > .venv/.wanted-dev
if ! cmp -s .venv/.wanted-dev .venv/.installed-dev 2>/dev/null; then
  pip install --quiet --upgrade pip
  pip install --quiet -r requirements-dev.txt
  cp .venv/.wanted-dev .venv/.installed-dev
fi
exec python -m pytest "$@"
