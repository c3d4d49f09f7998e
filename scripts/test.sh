#!/usr/bin/env bash
# Second command of the README (and what CI runs): lint, type-check, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/fournil ] || [ pyproject.toml -nt .venv/.installed ]; then
  bash scripts/setup.sh --quiet
  touch .venv/.installed
fi
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
