#!/usr/bin/env bash
# Create or refresh the virtualenv .venv in the repository root, fetch the pose model where the
# Python needs it, then fetch the sample media.
# Re-installs only when pyproject.toml changed (the package itself is installed editable).
#
# Python 3.11-3.14 (zarr >= 3.1.3 needs 3.11). On 3.11 and 3.12 mediapipe 0.10.21 runs the legacy
# Pose with the models in its wheel, offline. On 3.13 and 3.14 only the Tasks-API mediapipe exists,
# which ships no model: the pose model is fetched once into the user cache (`motionlib models fetch
# pose`). A Python with the legacy path is preferred when several are installed; PYTHON= chooses.
set -euo pipefail
cd "$(dirname "$0")/.."

in_range='import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 14))'
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in python3.11 python3.12 python3.13 python3.14 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "$in_range"; then
      py="$candidate"; break
    fi
  done
fi
if [ -z "$py" ]; then
  echo "error: motionlib needs Python 3.11-3.14 (none found on PATH); install one or set PYTHON=" >&2
  exit 1
fi
if ! "$py" -c 'import sys' >/dev/null 2>&1; then
  echo "error: $py does not run here (set PYTHON= to a Python 3.11-3.14 interpreter's path)" >&2
  exit 1
fi
if ! "$py" -c "$in_range"; then
  echo "error: $py is Python $("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])'); motionlib needs 3.11-3.14" >&2
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

# Python 3.13+: the Tasks estimator is the only one, and its model is not in the wheel
if .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] < (3, 13))'; then
  if ! .venv/bin/motionlib models fetch pose; then
    cat >&2 <<'MSG'
warning: the pose model could not be fetched (the reason is above). Everything else is installed,
but on this Python (3.13+) `motionlib ingest` needs that model. Fetch it when this machine is
online:
    .venv/bin/motionlib models fetch pose
or download the address `motionlib models pose` shows on another machine and give the file:
    .venv/bin/motionlib models fetch pose --url file:/path/to/pose_landmarker_full.task
(or use Python 3.11 or 3.12, whose mediapipe carries its models: rm -rf .venv, then
PYTHON=python3.12 scripts/bootstrap.sh)
MSG
  fi
fi
# PostgreSQL's server programs for the tests of a team's library (tests/pgserver.py starts a
# throwaway server; without them those tests are skipped). Installed only where this can be done
# without asking (root, or sudo without a password) with apt-get; never fails the bootstrap.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
  as_root=""
  if [ "$(id -u)" -eq 0 ]; then as_root=" "; elif sudo -n true 2>/dev/null; then as_root="sudo -n"; fi
  if [ -n "$as_root" ]; then
    echo "installing PostgreSQL for the team-library tests (apt-get) ..." >&2
    # shellcheck disable=SC2086  # as_root is a command prefix (or nothing)
    if ! { $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 \
           || { $as_root apt-get update -qq >/dev/null 2>&1 \
                && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1; }; }; then
      echo "warning: PostgreSQL could not be installed; the tests on PostgreSQL will be skipped" >&2
    fi
  else
    echo "note: PostgreSQL is not installed (apt-get install postgresql); the tests on PostgreSQL will be skipped" >&2
  fi
fi

.venv/bin/python scripts/fetch_samples.py
