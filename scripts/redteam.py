#!/usr/bin/env python3
"""Hostile inputs at the import door: every case must be refused cleanly (one MotionlibError, the
library unchanged) or accepted as a version that loads and exports. Prints the counts per door:
refused cleanly / accepted and usable / traceback / changed on refusal.

Usage: .venv/bin/python scripts/redteam.py [-v]
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionlib.core.errors import MotionlibError  # noqa: E402
from motionlib.core.skeleton import MEDIAPIPE_POSE_33  # noqa: E402
from motionlib.library import Library  # noqa: E402

J = MEDIAPIPE_POSE_33.num_joints


def _npz(path: Path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def _meta(**over) -> np.ndarray:
    meta = {"format": "motionlib-npz", "format_version": 1, "skeleton": "mediapipe_pose_33",
            "joint_names": list(MEDIAPIPE_POSE_33.joint_names), "width": 640, "height": 480, "duration": 1.0}
    meta.update(over)
    return np.array(json.dumps(meta))


def _good(T=30):
    rng = np.random.default_rng(0)
    kp = (rng.random((T, J, 2)) * [640, 480]).astype(np.float32)
    return {"keypoints": kp, "confidence": np.full((T, J), 0.9, np.float32),
            "timestamps": np.arange(T) / 30.0, "meta": _meta(duration=T / 30.0)}


def npz_cases(d: Path) -> dict[str, Path]:
    g = _good()
    cases = {}

    def case(name, **over):
        arrays = dict(g, **over)
        cases[name] = _npz(d / f"{name}.npz", **{k: v for k, v in arrays.items() if v is not None})

    case("good")
    case("coords_1e38", keypoints=np.full((30, J, 2), 1e38, np.float32))
    case("coords_inf", keypoints=np.full((30, J, 2), np.inf, np.float32))
    case("conf_strings", confidence=np.array([["0.9"] * J] * 30))
    case("conf_bytes", confidence=np.array([[b"x"] * J] * 30))
    case("ts_strings", timestamps=np.array([str(i) for i in range(30)]))
    case("ts_tiny_steps", timestamps=np.arange(30) * 1e-300)
    case("ts_equal", timestamps=np.zeros(30))
    case("kp_strings", keypoints=np.array([[["a", "b"]] * J] * 30))
    case("kp_int_huge", keypoints=np.full((30, J, 2), 2**62, np.int64))
    case("kp_wrong_shape", keypoints=np.zeros((30, J, 3), np.float32))
    case("meta_width_inf", meta=_meta(width=float("inf")))
    case("meta_width_1e30", meta=_meta(width=1e30))
    case("meta_width_2_63", meta=_meta(width=2**63))
    case("meta_width_400_digits", meta=np.array('{"skeleton": "mediapipe_pose_33", "width": ' + "9" * 400
                                                + ', "height": 480, "duration": 1.0}'))
    case("meta_duration_inf", meta=_meta(duration=float("inf")))
    case("meta_duration_negative", meta=_meta(duration=-1))
    case("meta_skeleton_list", meta=_meta(skeleton=["mediapipe_pose_33"]))
    case("meta_not_json", meta=np.array("{not json"))
    case("meta_deep", meta=np.array("[" * 100_000 + "]" * 100_000))
    case("holistic_with_33", meta=_meta(skeleton="mediapipe_holistic_543",
                                        joint_names=list(MEDIAPIPE_POSE_33.joint_names)))
    # a member holding a pickled object: np.load(allow_pickle=False) must refuse it
    obj = np.empty(1, dtype=object)
    obj[0] = {"a": 1}
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)
    path = d / "pickled.npz"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in g.items():
            b = io.BytesIO()
            np.save(b, v)
            z.writestr(f"{k}.npy", b.getvalue())
        z.writestr("world.npy", buf.getvalue())
    cases["pickled_member"] = path
    (d / "garbage.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    cases["garbage"] = d / "garbage.npz"
    return cases


def json_cases(d: Path) -> dict[str, Path]:
    def frame(pose, **extra):
        return {"version": 1.3, "people": [{"pose_keypoints_2d": pose}], **extra}

    good = [float(v) for _ in range(18) for v in (100, 100, 0.9)]
    docs = {
        "good": [frame(good, canvas_width=640, canvas_height=480)] * 10,
        "coords_1e38": [frame([1e38 if i % 3 != 2 else 0.9 for i in range(54)])] * 3,
        "int_400_digits": [frame([int("9" * 400)] * 54)],
        "strings": [frame(["a"] * 54)],
        "deep": None,
        "canvas_inf": [frame(good, canvas_width=1e400, canvas_height=480)],
        "canvas_bool": [frame(good, canvas_width=True, canvas_height=480)],
        "timestamps_tiny": [frame(good, canvas_width=640, canvas_height=480, timestamp=i * 1e-300) for i in range(5)],
        "people_not_list": [{"people": {"a": 1}}],
        "empty_list": [],
    }
    cases = {}
    for name, doc in docs.items():
        path = d / f"{name}.json"
        path.write_text("[" * 50_000 + "]" * 50_000 if doc is None else json.dumps(doc))
        cases[name] = path
    return cases


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")
            if p.is_file() and "tmp" not in p.parts and not p.name.endswith(("-wal", "-shm"))}


def run(verbose: bool) -> dict:
    results: dict[str, dict[str, list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        lib_root = tmp / "lib"
        with Library(lib_root) as lib:
            for door, fmt, cases in (("import npz", "npz", npz_cases(tmp)),
                                     ("import openpose-json", "openpose-json", json_cases(tmp))):
                outcome = results.setdefault(door, {"refused": [], "usable": [], "traceback": [], "changed": []})
                for name, path in cases.items():
                    before = snapshot(lib_root)
                    try:
                        got = lib.import_keypoints(path, fmt, name=f"{fmt}-{name}".replace("_", "-"),
                                                   fps=30 if fmt == "openpose-json" and "timestamps" not in name else None)
                        m = lib.load(got.record.ref)
                        lib.export(got.record.ref, "csv", tmp / f"{fmt}-{name}.csv")
                        assert np.isfinite(m.timestamps).all()
                        outcome["usable"].append(name)
                    except MotionlibError as err:
                        outcome["refused"].append(name)
                        if snapshot(lib_root) != before:
                            outcome["changed"].append(name)
                        if verbose:
                            print(f"  {door} {name}: error: {err}")
                    except BaseException as err:  # noqa: BLE001 - what the red team looks for
                        outcome["traceback"].append(f"{name}: {type(err).__name__}: {str(err)[:100]}")
    return results


def main() -> None:
    verbose = "-v" in sys.argv[1:]
    results = run(verbose)
    print(f"{'door':<22} {'cases':>5} {'refused':>8} {'usable':>7} {'traceback':>10} {'changed':>8}")
    for door, o in results.items():
        n = sum(len(o[k]) for k in ("refused", "usable", "traceback"))
        print(f"{door:<22} {n:>5} {len(o['refused']):>8} {len(o['usable']):>7} {len(o['traceback']):>10} "
              f"{len(o['changed']):>8}")
        for t in o["traceback"]:
            print(f"  traceback: {t}")
        if verbose:
            print(f"  usable: {', '.join(o['usable'])}")
    if any(o["traceback"] or o["changed"] for o in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
