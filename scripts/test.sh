#!/usr/bin/env bash
# Install the project with its development tools in .venv, then run every check:
# lint (ruff), types (mypy --strict on raft/), the documentation site
# (mkdocs build --strict, which also runs every tutorial), and the test suite
# (pytest, on every core).
# The visualizer's browser test drives Debian's Chromium, installed here if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "== installing chromium (for the visualizer's browser test)"
    $SUDO apt-get update
    $SUDO apt-get install -y chromium
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

echo "== ruff"
.venv/bin/ruff check raft tests bench visualizer tutorials hatch_build.py docs/hooks.py docs/rst_docstrings.py docs/sitegen
echo "== mypy --strict raft/"
.venv/bin/mypy
echo "== mkdocs build --strict"
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$(mktemp -d)"
echo "== pytest"
.venv/bin/pytest -n auto "$@"
