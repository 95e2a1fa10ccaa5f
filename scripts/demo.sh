#!/usr/bin/env bash
# The main job on the shipped default: set up, fetch the sample clip, ingest it, clean it up into a
# smoothed version and a seamless loop, show the library, write preview videos, and render the
# motion onto the sample portrait with the model-free pose backend.
# Uses ./library and ./previews (git-ignored) unless MOTIONLIB_LIBRARY is set. Safe to re-run:
# what exists already is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export MOTIONLIB_LIBRARY="${MOTIONLIB_LIBRARY:-$PWD/library}"
ml=.venv/bin/motionlib
echo "== library: $MOTIONLIB_LIBRARY"
$ml ingest assets/samples/demo.mp4 --name sample-demo --tag sample
$ml show sample-demo-smooth >/dev/null 2>&1 || $ml smooth sample-demo@1 --name sample-demo-smooth --tag sample
$ml show sample-demo-loop >/dev/null 2>&1 || $ml loop sample-demo-smooth@1 --name sample-demo-loop --tag sample --tag loop
$ml list tag:sample
$ml show sample-demo
mkdir -p previews
$ml preview sample-demo@1 --over-source -o previews/sample-demo-over-source.mp4
$ml preview sample-demo-smooth@1 -o previews/sample-demo-smooth.mp4
$ml preview sample-demo-loop@1 -o previews/sample-demo-loop.mp4
echo "== previews in $PWD/previews"
# render: the sample's seamless loop onto the astronaut portrait with the model-free pose backend
$ml identity show astronaut >/dev/null 2>&1 || $ml identity add assets/samples/astronaut.png --name astronaut
$ml render --motion sample-demo-loop@1 --identity astronaut --backend pose --seed 1 --force \
  -o previews/sample-demo-on-astronaut.mp4
$ml renders --limit 5
echo "== render in $PWD/previews/sample-demo-on-astronaut.mp4 (its record beside it, .json)"
# the diffusion backends need weights fetched beforehand (nothing is downloaded at render time):
# show what each needs, what is here, and how to fetch the rest
$ml models
if command -v nvidia-smi >/dev/null 2>&1 && $ml models controlnet --json | .venv/bin/python -c \
    'import json,sys; sys.exit(not all(m["present"] for m in json.load(sys.stdin)["models"]))'; then
  $ml render --motion sample-demo-loop@1 --identity astronaut --backend controlnet --seed 1 --force \
    --prompt "an astronaut dancing, photo" -o previews/sample-demo-on-astronaut-controlnet.mp4
fi
echo "== done. motionlib is in $PWD/.venv/bin (not on your PATH yet): run"
echo "     source .venv/bin/activate      # in each new shell, or once:"
echo "     ln -s \"$PWD/.venv/bin/motionlib\" ~/.local/bin/motionlib"
