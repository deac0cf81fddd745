#!/usr/bin/env bash
# Installs what the tests need (venv, both requirement files, this package in
# editable mode, Debian's chromium and tesseract when run as root), checks the
# code with ruff and runs the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
if ! command -v tesseract >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's tesseract (reads scale-bar labels)"
  apt-get update -qq
  apt-get install -y -qq tesseract-ocr >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
# Install once: again only when a requirement file or pyproject.toml changed.
cat requirements.txt requirements-dev.txt pyproject.toml > .venv/.wanted-dev
if ! cmp -s .venv/.wanted-dev .venv/.installed-dev 2>/dev/null; then
  pip install --quiet --upgrade pip
  pip install --quiet -r requirements-dev.txt
  pip install --quiet --no-deps -e .  # bbbcore itself, and the `bbb` command
  cp .venv/.wanted-dev .venv/.installed-dev
fi
# Lint first, but run the tests either way; the script fails when either fails.
lint=0
echo "ruff check ."
python -m ruff check . || lint=$?
tests=0
python -m pytest "$@" || tests=$?
if [ "$tests" -ne 0 ]; then
  exit "$tests"
fi
if [ "$lint" -ne 0 ]; then
  echo "ruff check . failed (see above)" >&2
fi
exit "$lint"
