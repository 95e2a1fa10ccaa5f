#!/usr/bin/env bash
# Create or refresh the virtualenv .venv in the repository root, then fetch the sample media.
# Re-installs only when pyproject.toml changed (the package itself is installed editable).
set -euo pipefail
cd "$(dirname "$0")/.."

py="${PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))'; then
      py="$candidate"; break
    fi
  done
fi
if [ -z "$py" ]; then
  echo "error: motionlib needs Python 3.10-3.12 (mediapipe 0.10.14 has no wheels for newer); set PYTHON=" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.motionlib-install
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing motionlib and its dependencies into .venv ..." >&2
  .venv/bin/python -m pip install -qq --upgrade pip
  # torch first and pinned: an unpinned torch would pull the newest build with several GB of CUDA
  # packages. Set TORCH_SPEC to choose another build (e.g. a CUDA one on a GPU machine).
  # shellcheck disable=SC2086  # TORCH_SPEC may hold pip options (--index-url ...): split on purpose
  .venv/bin/python -m pip install -qq ${TORCH_SPEC:-torch==2.13.0}
  .venv/bin/python -m pip install -qq -e '.[diffusion,dev]'
  echo "$want" > "$stamp"
fi
.venv/bin/python scripts/fetch_samples.py
