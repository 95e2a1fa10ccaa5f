#!/usr/bin/env python
"""Import a version's BVH export with Blender's own importer and compare the joints it poses with
the positions motionlib fitted (docs/exchange.md, "BVH"). Blender comes as the ``bpy`` package in
an environment of its own (it pins its Python and numpy)::

    python3.11 -m venv /tmp/bpy && /tmp/bpy/bin/pip install bpy
    python scripts/check_bvh_blender.py --library LIB demo --blender-python /tmp/bpy/bin/python

Prints the largest distance between a joint as Blender poses it (File > Import > Motion Capture,
default axes: forward -Z, up Y) and where motionlib's fit puts it, and Blender's joints against
the raw world landmarks (relative to the hips: median, 95th percentile, max)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

# run by Blender's Python: import the file, write every bone's head and tail per frame in BVH axes
BLENDER = r"""
import sys, numpy as np, bpy
path, out, frames = sys.argv[-3], sys.argv[-2], int(sys.argv[-1])
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=path, axis_forward='-Z', axis_up='Y', rotate_mode='NATIVE', update_scene_fps=True)
arm = [o for o in bpy.context.scene.objects if o.type == 'ARMATURE'][0]
scene = bpy.context.scene
names = [pb.name for pb in arm.pose.bones]
heads, tails = np.zeros((frames, len(names), 3)), np.zeros((frames, len(names), 3))
for i in range(frames):
    scene.frame_set(scene.frame_start + i)
    for k, pb in enumerate(arm.pose.bones):
        h, t = arm.matrix_world @ pb.head, arm.matrix_world @ pb.tail
        heads[i, k], tails[i, k] = (h.x, h.z, -h.y), (t.x, t.z, -t.y)  # Blender's Z up -> BVH's Y up
np.savez(out, names=np.array(names), heads=heads, tails=tails, fps=scene.render.fps / scene.render.fps_base)
"""

# joints (and End Sites) that stand on landmarks of their own
ON_LANDMARKS = {
    "LeftUpLeg": "left_hip", "LeftLeg": "left_knee", "LeftFoot": "left_ankle", "LeftFoot_end": "left_foot_index",
    "RightUpLeg": "right_hip", "RightLeg": "right_knee", "RightFoot": "right_ankle",
    "RightFoot_end": "right_foot_index", "Neck": "mid_shoulder", "Head": "mid_ear", "Head_end": "nose",
    "LeftArm": "left_shoulder", "LeftForeArm": "left_elbow", "LeftHand": "left_wrist",
    "LeftHand_end": "left_knuckles", "RightArm": "right_shoulder", "RightForeArm": "right_elbow",
    "RightHand": "right_wrist", "RightHand_end": "right_knuckles",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref")
    ap.add_argument("--library", required=True, type=Path)
    ap.add_argument("--blender-python", required=True, help="a Python that can import bpy")
    args = ap.parse_args()

    from motionlib.core import bvh
    from motionlib.library import Library

    with Library(args.library) as lib, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.bvh"
        lib.export(args.ref, "bvh", path)
        fitted = bvh.fit(lib.load(args.ref))
        dump = Path(tmp) / "blender.npz"
        subprocess.run([args.blender_python, "-c", BLENDER, str(path), str(dump), str(fitted.frames)], check=True,
                       stdout=subprocess.DEVNULL)
        z = np.load(dump)
        names, heads, tails = list(z["names"]), z["heads"], z["tails"]
    target = bvh.target_positions(fitted)
    seen = fitted.measured
    worst = 0.0
    for j in bvh.JOINTS:
        k = names.index(j.name)
        worst = max(worst, float(np.linalg.norm(heads[:, k] - target[j.name], axis=1)[seen].max()))
        if j.end:
            worst = max(worst, float(np.linalg.norm(tails[:, k] - target[j.name + "_end"], axis=1)[seen].max()))
    hips = heads[:, names.index("Hips")]
    errors = []
    for joint, point in ON_LANDMARKS.items():
        name, end = (joint[:-4], True) if joint.endswith("_end") else (joint, False)
        at = (tails if end else heads)[:, names.index(name)] - hips
        errors.append(np.linalg.norm(at - (fitted.points[point] - fitted.points["mid_hip"]), axis=1)[seen])
    e = np.concatenate(errors)
    print(f"{args.ref}: {fitted.frames} frames at {z['fps']:.3f} fps in Blender, {int(seen.sum())} with landmarks")
    print(f"Blender's joints vs motionlib's fit: at most {worst * 1000:.4f} mm")
    print(f"Blender's joints vs the raw world landmarks (relative to the hips): median {np.median(e) * 100:.2f} cm, "
          f"95th percentile {np.percentile(e, 95) * 100:.2f} cm, max {e.max() * 100:.2f} cm")


if __name__ == "__main__":
    main()
