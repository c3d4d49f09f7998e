#!/usr/bin/env bash
# Second command of the README (and what CI runs): lint, type-check, the whole test suite.
# The store tests also run against a throwaway PostgreSQL that scripts/postgres.sh starts
# here and that is stopped and deleted on exit, whatever the result (pytest's exit code is
# kept). Without PostgreSQL (and no root to install it) those tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."
# .venv/.installed is written by scripts/setup.sh after each install.
if [ ! -x .venv/bin/fournil ] || [ pyproject.toml -nt .venv/.installed ]; then
  bash scripts/setup.sh --quiet
fi
.venv/bin/ruff check .
.venv/bin/mypy

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
_cleanup() {
  local status=$?
  trap - EXIT
  postgres_stop || true
  exit "$status"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
postgres_start
.venv/bin/python -m pytest "$@"
