#!/usr/bin/env bash
# Set up (or refresh) .venv, fetch the sample media, run the whole test suite on every core (one
# pytest-xdist worker per core, each test file on one worker). Extra args go to pytest: `-n 0` runs
# in one process, `-m "not slow"` skips the tests that take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest -n auto --dist loadfile "$@"
