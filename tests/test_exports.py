"""Exports other tools read, through the library API, on the real sample clip (docs/exchange.md):
``controlnet-aux`` and ``comfyui``, read back with controlnet_aux's own ``decode_json_as_poses`` and
``draw_poses`` where they can be had (an installed package that has them, or the source directory
``CONTROLNET_AUX_POSE_SRC`` names: comfyui_controlnet_aux's ``src/custom_controlnet_aux/dwpose``),
and always against the shape their code documents.

(The command line's flags and errors: test_edits_cli.py.)"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from motionlib.core.errors import InputError
from motionlib.core.openpose import to_openpose
from motionlib.library import Library
from tests.conftest import copy_library, library_snapshot


@pytest.fixture(scope="module")
def root(demo_library, tmp_path_factory) -> Path:
    # exports change nothing in the library; one copy serves the module
    return copy_library(demo_library[0], tmp_path_factory.mktemp("exports") / "lib")


@pytest.fixture(scope="module")
def lib(root):
    with Library(root) as library:
        yield library


@pytest.fixture(scope="module")
def demo(lib):
    return lib.load("demo")


# --------------------------------------------------------------------- controlnet-aux / comfyui
def _kept(motion, threshold=0.3):
    """[T, 18] which OpenPose body points the exports keep, and their pixels [T, 18, 2]."""
    op = to_openpose(motion)
    xy = op.body / np.array([motion.width, motion.height])
    with np.errstate(invalid="ignore"):
        inside = ((xy >= 0) & (xy <= 1)).all(axis=2)
    return (op.body_conf >= threshold) & inside, op.body


def _assert_pose_frame(frame: dict, motion, t: int, kept, pixels) -> None:
    """One frame as controlnet_aux's encode_poses_as_dict writes it and decode_json_as_poses
    reads it: canvas size, one person, 18 x (x, y, c), x and y in 0-1, c 1.0 where kept and
    0, 0, 0 elsewhere, null blocks for the hands and face a MediaPipe Pose motion has not."""
    assert frame["canvas_width"] == motion.width and frame["canvas_height"] == motion.height
    assert frame["timestamp"] == pytest.approx(motion.timestamps[t])
    if not np.isfinite(pixels[t]).any():
        assert frame["people"] == []
        return
    (person,) = frame["people"]
    assert person["hand_left_keypoints_2d"] is None and person["hand_right_keypoints_2d"] is None
    assert person["face_keypoints_2d"] is None
    body = np.asarray(person["pose_keypoints_2d"], float).reshape(18, 3)
    assert set(body[:, 2]) <= {0.0, 1.0}
    np.testing.assert_array_equal(body[:, 2] == 1.0, kept[t])
    assert (body[~kept[t]] == 0).all()
    assert ((body[:, :2] >= 0) & (body[:, :2] <= 1)).all()
    np.testing.assert_allclose(body[kept[t], :2] * [motion.width, motion.height], pixels[t, kept[t]], atol=1e-3)


def test_comfyui_is_one_list_of_frames_in_0_1_with_confidence_1(lib, demo, tmp_path):
    path = tmp_path / "demo.json"
    info = lib.export("demo", "comfyui", path)
    assert info["format"] == "comfyui" and info["frames"] == 230 and info["threshold"] == 0.3
    frames = json.loads(path.read_text())
    assert isinstance(frames, list) and len(frames) == 230
    kept, pixels = _kept(demo)
    assert kept[100].all() and kept[120].sum() == 16, "frame 120: the left elbow and wrist not seen"
    for t in range(230):
        _assert_pose_frame(frames[t], demo, t, kept, pixels)
    assert frames[200]["people"] == [], "frame 200 holds another person: rejected"
    # our own import reads it back (a list of frames, normalised coordinates scaled by the canvas)
    back = lib.import_keypoints(path, "openpose-json", name="from-comfy")
    m = lib.load(back.record.ref)
    assert m.frames == 230 and (m.width, m.height) == (demo.width, demo.height)
    np.testing.assert_allclose(m.keypoints[kept], pixels[kept], atol=2e-3)
    np.testing.assert_allclose(m.timestamps, demo.timestamps, atol=1e-9)
    # a higher threshold keeps fewer points
    strict = tmp_path / "strict.json"
    lib.export("demo", "comfyui", strict, threshold=0.9)
    kept9, _ = _kept(demo, 0.9)
    assert kept9.sum() < kept.sum()
    body = np.array(json.loads(strict.read_text())[100]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    np.testing.assert_array_equal(body[:, 2] == 1, kept9[100])
    assert not kept9[100].all()


def test_controlnet_aux_is_one_file_per_frame_holding_the_same_frames(lib, demo, tmp_path):
    out = tmp_path / "cn"
    info = lib.export("demo", "controlnet-aux", out)
    files = sorted(out.iterdir())
    assert info["files"] == len(files) == 230 and files[7].name == "demo-v1_000000000007_keypoints.json"
    lib.export("demo", "comfyui", tmp_path / "all.json")
    frames = json.loads((tmp_path / "all.json").read_text())
    assert [json.loads(f.read_text()) for f in files] == frames
    kept, pixels = _kept(demo)
    _assert_pose_frame(json.loads(files[100].read_text()), demo, 100, kept, pixels)
    # the directory must be new or empty, as for openpose-json
    with pytest.raises(InputError, match="not an empty directory"):
        lib.export("demo", "controlnet-aux", out)


def test_hands_and_face_come_with_a_holistic_motion(demo, tmp_path):
    """A whole-body layout writes 21 points per hand and OpenPose's 70 face points, as the
    annotators do (shape only: the sample is MediaPipe Pose, so hands and face are made up)."""
    from motionlib.core.motion import Motion
    from motionlib.core.skeleton import MEDIAPIPE_HOLISTIC_543
    from motionlib.exchange import export_comfyui

    T = 5
    kp = np.full((T, 543, 2), np.nan, np.float32)
    conf = np.zeros((T, 543), np.float32)
    kp[:, :33], conf[:, :33] = demo.keypoints[100:105], demo.confidence[100:105]
    rng = np.random.default_rng(0)
    centre = np.nanmean(demo.keypoints[100:105, :13], axis=1)
    kp[:, 33:] = centre[:, None] + rng.uniform(-40, 40, (T, 510, 2))
    conf[:, 33:] = 0.9
    conf[:, 33 + 4] = 0.1  # the left thumb tip: not seen
    m = Motion(MEDIAPIPE_HOLISTIC_543, kp, conf, demo.timestamps[:T].copy(), demo.width, demo.height, 1.0).validate()
    frames = json.loads(export_comfyui(m, tmp_path / "h.json").read_text())
    assert len(frames) == T
    person = frames[0]["people"][0]
    left, right, face = (np.array(person[k]).reshape(-1, 3) for k in
                         ("hand_left_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d"))
    assert left.shape == right.shape == (21, 3) and face.shape == (70, 3)
    assert left[4].tolist() == [0, 0, 0] and (left[[0, 1, 2, 3, 5], 2] == 1).all() and (face[:68, 2] == 1).all()
    np.testing.assert_allclose(left[0, :2] * [m.width, m.height], kp[0, 33], atol=1e-3)


def test_threshold_must_be_a_confidence(lib, root, tmp_path):
    before = library_snapshot(root)
    with pytest.raises(InputError, match="threshold must lie in"):
        lib.export("demo", "comfyui", tmp_path / "x.json", threshold=1.5)
    assert not (tmp_path / "x.json").exists() and library_snapshot(root) == before


def _controlnet_aux():
    """controlnet_aux's own (decode_json_as_poses, draw_poses), or None when not to be had.

    An installed package that has them is used as it is. Else ``CONTROLNET_AUX_POSE_SRC`` may
    name the directory of comfyui_controlnet_aux's ``src/custom_controlnet_aux/dwpose``: its
    ``__init__`` imports torch, torchvision and the detectors' models, so the two functions are
    compiled from that file's own text alone, beside its ``types.py`` and ``util.py`` (whose
    ``.body`` import, the torch model, is given the NamedTuples of ``types.py`` it takes)."""
    for name in ("custom_controlnet_aux.dwpose", "controlnet_aux.dwpose", "controlnet_aux.open_pose"):
        try:
            mod = importlib.import_module(name)
        except Exception:  # not installed, or torchvision broken under it
            continue
        if hasattr(mod, "decode_json_as_poses") and hasattr(mod, "draw_poses"):
            return mod.decode_json_as_poses, mod.draw_poses
    src = os.environ.get("CONTROLNET_AUX_POSE_SRC")
    if not src:
        return None
    src = Path(src)
    pkg = types.ModuleType("_cnaux_pose")
    pkg.__path__ = [str(src)]
    sys.modules["_cnaux_pose"] = pkg

    def load(name: str, path: Path):
        spec = importlib.util.spec_from_file_location(f"_cnaux_pose.{name}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod

    kinds = load("types", src / "types.py")
    sys.modules["_cnaux_pose.body"] = kinds
    util = load("util", src / "util.py")
    tree = ast.parse((src / "__init__.py").read_text())
    wanted = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("decode_json_as_poses", "draw_poses")]
    namespace = {"json": json, "np": np, "util": util, **{k: getattr(kinds, k) for k in dir(kinds)}}
    exec("from typing import *", namespace)
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(src / "__init__.py"), "exec"), namespace)
    return namespace["decode_json_as_poses"], namespace["draw_poses"]


def test_controlnet_aux_decodes_and_draws_our_files(lib, demo, tmp_path):
    """controlnet_aux's own decode_json_as_poses keeps exactly the points we keep, at our
    pixels once scaled by the canvas, and its draw_poses draws them where they are."""
    found = _controlnet_aux()
    if found is None:
        pytest.skip("controlnet_aux's decode_json_as_poses is not importable (set CONTROLNET_AUX_POSE_SRC)")
    decode, draw = found
    out = tmp_path / "cn"
    lib.export("demo", "controlnet-aux", out)
    files = sorted(out.iterdir())
    kept, pixels = _kept(demo)
    for t in (0, 50, 100, 120, 150, 200, 229):
        frame = json.loads(files[t].read_text())
        try:
            result = decode(frame)  # comfyui_controlnet_aux: a dict
        except TypeError:
            result = decode(json.dumps(frame))  # the older controlnet_aux: a JSON string
        poses, height, width = result[0], result[-2], result[-1]
        assert (height, width) == (demo.height, demo.width)
        if not kept[t].any():
            assert poses == []
            continue
        (pose,) = poses
        assert pose.left_hand is None and pose.right_hand is None and pose.face is None
        points = pose.body.keypoints
        assert [p is not None for p in points] == kept[t].tolist()
        got = np.array([[p.x * width, p.y * height] for p in points if p is not None])
        np.testing.assert_allclose(got, pixels[t, kept[t]], atol=1e-3)
        canvas = draw(poses, height, width)
        assert canvas.shape == (height, width, 3)
        # drawn where the points are (a circle of radius 4 on each), and only around the body
        for x, y in pixels[t, kept[t]].astype(int):
            assert canvas[y, x].any(), (t, x, y)
        ys, xs = np.nonzero(canvas.any(axis=2))
        lo, hi = pixels[t, kept[t]].min(axis=0), pixels[t, kept[t]].max(axis=0)
        assert xs.min() >= lo[0] - 10 and xs.max() <= hi[0] + 10 and ys.min() >= lo[1] - 10 and ys.max() <= hi[1] + 10
