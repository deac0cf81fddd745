#!/usr/bin/env bash
# Installs what the dashboard needs (once, into .venv) and starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
# Install once: again only when requirements.txt or pyproject.toml changed.
cat requirements.txt pyproject.toml > .venv/.wanted-app
if ! cmp -s .venv/.wanted-app .venv/.installed-app 2>/dev/null; then
  pip install --quiet --upgrade pip
  pip install --quiet -r requirements.txt
  pip install --quiet --no-deps -e .  # bbbcore itself, and the `bbb` command
  cp .venv/.wanted-app .venv/.installed-app
fi
exec streamlit run app.py "$@"
