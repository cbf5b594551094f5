#!/usr/bin/env bash
# Install the project with its development tools in .venv, then run every check:
# lint (ruff), types (mypy --strict on raft/), and the test suite (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

echo "== ruff"
.venv/bin/ruff check raft tests bench
echo "== mypy --strict raft/"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
