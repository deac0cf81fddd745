#!/usr/bin/env bash
# Installs what the dashboard needs (once, into .venv) and starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
if ! cmp -s requirements.txt .venv/.installed-app 2>/dev/null; then
  pip install --quiet --upgrade pip
  pip install --quiet -r requirements.txt
  cp requirements.txt .venv/.installed-app
fi
exec streamlit run app.py "$@"
