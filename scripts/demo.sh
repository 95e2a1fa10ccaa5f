#!/usr/bin/env bash
# The main job on the shipped default: set up, fetch the sample clip, ingest it, show the library.
# Uses ./library (git-ignored) unless MOTIONLIB_LIBRARY is set, so your own library is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export MOTIONLIB_LIBRARY="${MOTIONLIB_LIBRARY:-$PWD/library}"
ml=.venv/bin/motionlib
echo "== library: $MOTIONLIB_LIBRARY"
$ml ingest assets/samples/demo.mp4 --name sample-demo --tag sample
$ml list
$ml show sample-demo
