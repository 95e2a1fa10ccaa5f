#!/usr/bin/env bash
# Set up (or refresh) .venv, fetch the sample media, run the whole test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
