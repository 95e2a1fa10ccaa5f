#!/usr/bin/env bash
# Set up (or refresh) .venv, fetch the sample media, run the whole test suite on every core (one
# pytest-xdist worker per core, each test file on one worker). Extra args go to pytest: `-n 0` runs
# in one process, `-m "not slow"` skips the tests that take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# Python 3.13+: every ingest runs the Tasks estimator, which needs the pose model in the cache. When
# bootstrap could not fetch it (offline), stop here with one line rather than hundreds of errors.
if ! .venv/bin/python - <<'PY'
import sys
if sys.version_info[:2] >= (3, 13):
    from motionlib.ingest.estimators.models import locate
    found = locate()
    if not found.present:
        print(f"error: the tests ingest with the Tasks estimator on Python {sys.version_info[0]}.{sys.version_info[1]}, "
              f"which needs the pose model ({found.problem}): fetch it with `.venv/bin/motionlib models fetch pose` "
              "(or --url file:PATH), or run the tests on Python 3.11/3.12 (rm -rf .venv; PYTHON=python3.12)",
              file=sys.stderr)
        sys.exit(1)
PY
then
  exit 1
fi
exec .venv/bin/python -m pytest -n auto --dist loadfile "$@"
