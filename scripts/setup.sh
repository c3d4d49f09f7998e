#!/usr/bin/env bash
# First command of the README: create .venv, install Fournil with its dev tools, and show a
# coach card for an example opener. Needs only Python 3.11+ and pip; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# The marker scripts/test.sh compares with pyproject.toml: it installs again only when the
# dependencies changed since this install.
touch .venv/.installed
if [ "${1:-}" != "--quiet" ]; then
  .venv/bin/fournil coach --example
fi
