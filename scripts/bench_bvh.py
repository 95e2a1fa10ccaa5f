#!/usr/bin/env python3
"""BVH export fidelity (docs/exchange.md, "BVH"): how far the skeleton's joints, as the exported
file is parsed back and run through forward kinematics, land from the raw world landmarks.

Each clip is ingested (real pipeline), exported with ``motionlib export --format bvh`` (the
library's ``export``), parsed back with the reader of tests/test_exports.py and its forward
kinematics, and every joint or End Site that stands on landmarks of its own (the 19 the test
measures: all but Hips, Spine, Chest and the two shoulder joints) is set against those landmarks,
relative to the hips, in the frames where the body was seen (every landmark present). Beside it,
from the same run and the same motions:

* ``baseline``: the fit of ``--baseline REV`` (default 7e84b29, the last with each bone turned
  onto its landmarks' direction), its module loaded from git and its file parsed back the same way;
* ``asymmetric``: this fit with left and right bones of their own lengths (``fit(symmetric=False)``).

Prints per clip and method the median / p90 / max distance (cm) per joint group and over all,
and the largest change of any bone's length across frames (it must be ~0: BVH bones are rigid).

Needs the samples (scripts/fetch_samples.py --pose2sim, run for you). Ingests once into
``--library`` (default: a folder under the system's temp dir, reused by later runs); ~20 s on 2 cores.
Usage: .venv/bin/python scripts/bench_bvh.py [--baseline REV] [--library DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "assets" / "samples"

from tests.test_exports import LANDMARK_OF, _bones, _landmarks, forward_kinematics, parse_bvh  # noqa: E402

CLIPS = {  # name -> sample file
    "demo": "demo.mp4",  # Sports2D's outdoor demo: 230 frames at 30 fps, performer lost for some
    "p2s-single-cam01": "pose2sim/single/cam01.mp4",  # Pose2Sim, one performer, 100 frames at 60 fps
    "p2s-single-cam03": "pose2sim/single/cam03.mp4",  # the same take from another camera
    "p2s-multi-cam02": "pose2sim/multi/cam02.mp4",  # another performance (two people)
}
MEASURED = [k for k in LANDMARK_OF if k not in ("Hips", "Spine", "Chest", "LeftShoulder", "RightShoulder")]
GROUPS = {
    "legs": [k for k in MEASURED if "Leg" in k or "Foot" in k],
    "head": ["Neck", "Head", "Head_end"],
    "arms": [k for k in MEASURED if k.endswith(("Arm", "ForeArm"))],
    "hands": [k for k in MEASURED if "Hand" in k],
}
GROUPS["all"] = MEASURED


def load_baseline(rev: str):
    """The bvh module as it was at ``rev`` (from git), under a name of its own."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:motionlib/core/bvh.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "bvh_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("bvh_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def measure(text: str, motion) -> dict:
    """The file parsed back: per joint [seen frames] distances (m) to the raw landmarks, relative to
    the hips, and the largest change of a bone's length across frames (m)."""
    joints, ends, _, data = parse_bvh(text)
    fk = forward_kinematics(joints, ends, data)
    seen = np.isfinite(motion.world).all(axis=(1, 2))
    lm = _landmarks(motion)
    rel = {k: v - fk["Hips"] for k, v in fk.items()}
    drift = max(float(np.ptp(np.linalg.norm(fk[c] - fk[p], axis=1)[seen])) for p, c, _ in _bones(joints, ends))
    return {"errors": {k: np.linalg.norm(rel[k] - lm[k], axis=1)[seen] for k in MEASURED}, "drift": drift,
            "seen": int(seen.sum()), "frames": len(data)}


def summary(errors: dict) -> dict:
    out = {}
    for group, names in GROUPS.items():
        e = np.concatenate([errors[n] for n in names]) * 100
        out[group] = {"median": round(float(np.median(e)), 2), "p90": round(float(np.percentile(e, 90)), 2),
                      "max": round(float(e.max()), 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="7e84b29", help="git revision whose bvh fit is the baseline")
    ap.add_argument("--library", type=Path, default=Path(tempfile.gettempdir()) / "motionlib-bench-bvh")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    if not all((SAMPLES / f).exists() for f in CLIPS.values()):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_samples.py"), "--pose2sim"], check=True)
    from motionlib.core import bvh
    from motionlib.ingest.pipeline import IngestOptions
    from motionlib.library import Library

    old = load_baseline(args.baseline)
    results = {}
    with Library(args.library) as lib, tempfile.TemporaryDirectory() as tmp:
        for name, file in CLIPS.items():
            lib.ingest(SAMPLES / file, name=name, options=IngestOptions(workers=1), keep_source=False)
            motion = lib.load(name)
            path = Path(tmp) / f"{name}.bvh"
            lib.export(name, "bvh", path, overwrite=True)
            runs = {
                f"baseline ({args.baseline})": measure(old.text(old.fit(motion)), motion),
                "this fit": measure(path.read_text(), motion),
                "asymmetric": measure(bvh.text(bvh.fit(motion, symmetric=False)), motion),
            }
            results[name] = {}
            for method, r in runs.items():
                results[name][method] = {**summary(r["errors"]), "bone_length_drift_mm": round(r["drift"] * 1000, 4),
                                         "seen_frames": r["seen"], "frames": r["frames"]}
    width = max(len(m) for m in next(iter(results.values())))
    for name, methods in results.items():
        first = next(iter(methods.values()))
        print(f"\n{name}: {first['frames']} frames, {first['seen_frames']} with the body seen; "
              "cm from the raw world landmarks (median / p90 / max)")
        print(f"  {'':{width}}  " + "  ".join(f"{g:>19}" for g in GROUPS) + "  bone drift")
        for method, r in methods.items():
            cells = "  ".join(f"{r[g]['median']:5.2f} /{r[g]['p90']:5.2f} /{r[g]['max']:5.1f}" for g in GROUPS)
            print(f"  {method:{width}}  {cells}  {r['bone_length_drift_mm']:.4f} mm")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
