"""Keypoints in and out of the library: OpenPose JSON, ControlNet / ComfyUI pose JSON, BVH, NPZ,
CSV (see docs/exchange.md).

* ``openpose-json``: a directory with one file per frame, ``<stem>_<frame:012d>_keypoints.json``,
  as OpenPose itself writes them:
  ``{"version": 1.3, "people": [{"pose_keypoints_2d": [x, y, c] * 18, "face_keypoints_2d": [...] * 70,
  "hand_left_keypoints_2d": [...] * 21, "hand_right_keypoints_2d": [...] * 21, ...}],
  "canvas_width": W, "canvas_height": H, "timestamp": seconds}``. Pixels and the estimator's
  confidences; an unknown point is ``0, 0, 0``; a frame without the performer has ``"people": []``.
  ``timestamp`` is our addition (other tools ignore it); without it, import takes ``--fps``. Import
  also reads one JSON file that holds a list of such frames (ComfyUI's POSE_KEYPOINT) or a single
  frame.
* ``controlnet-aux`` / ``comfyui``: the same frames as the ControlNet annotators (controlnet_aux,
  comfyui_controlnet_aux) write and read them: coordinates divided by the canvas size (0-1), the
  confidence 1.0 for a point seen at ``threshold`` or more and ``0, 0, 0`` for any other point
  (``decode_json_as_poses`` keeps only points of confidence 1.0, its drawing wants 0-1
  coordinates), ``null`` for a block the layout has no points for (hands, face). ``controlnet-aux``
  writes one file per frame (``decode_json_as_poses`` reads one frame), ``comfyui`` one file
  holding the list of frames (the POSE_KEYPOINT type). Both keep ``timestamp``.
* ``bvh``: the 3D world landmarks as a skeleton with rest pose and rotations per frame
  (``motionlib.core.bvh``).
* ``npz``: NumPy arrays ``keypoints``, ``confidence``, ``timestamps`` (+ ``world``, ``presence``
  when stored) and ``meta`` (a JSON string: skeleton, joint_names, width, height, duration). Lossless.
* ``csv`` (export only): one row per frame: ``frame, time, <joint>_x, <joint>_y, <joint>_c`` ...;
  empty cells for unknown points.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motionlib.core.errors import InputError
from motionlib.core.motion import Motion
from motionlib.core.openpose import OpenPoseFrames, from_openpose, to_openpose
from motionlib.core.skeleton import SKELETONS, get_skeleton
from motionlib.store.files import atomic_dir, atomic_path

EXPORT_FORMATS = ("openpose-json", "controlnet-aux", "comfyui", "bvh", "npz", "csv", "mp4")
# the formats written as a directory of files, one per frame
DIRECTORY_FORMATS = ("openpose-json", "controlnet-aux")
IMPORT_FORMATS = ("openpose-json", "npz")
NPZ_FORMAT_VERSION = 1
MAX_IMPORT_FRAMES = 200_000


@dataclass
class Imported:
    motion: Motion
    file_name: str
    sha256: str
    size_bytes: int
    settings: dict
    notes: list[str]


def _flt(v) -> float:
    return float(v)


# ------------------------------------------------------------------------------------- export
def write(motion: Motion, fmt: str, out: Path, *, stem: str, meta: dict | None = None,
          threshold: float = 0.3) -> dict:
    """Write ``motion`` as ``fmt`` (any of EXPORT_FORMATS but mp4); returns what was written.
    ``threshold``: controlnet-aux and comfyui keep the points of at least this confidence."""
    if fmt == "openpose-json":
        return {"path": str(out), "files": len(export_openpose_json(motion, out, stem))}
    if fmt == "controlnet-aux":
        return {"path": str(out), "files": len(export_controlnet_aux(motion, out, stem, threshold)),
                "threshold": threshold}
    if fmt == "comfyui":
        return {"path": str(export_comfyui(motion, out, threshold)), "threshold": threshold}
    if fmt == "bvh":
        return export_bvh(motion, out)
    if fmt == "npz":
        return {"path": str(export_npz(motion, out, meta))}
    if fmt == "csv":
        return {"path": str(export_csv(motion, out))}
    raise InputError(f"{{format}} {fmt!r}: write takes {', '.join(f for f in EXPORT_FORMATS if f != 'mp4')}",
                     params=["format"])


def export_openpose_json(motion: Motion, out_dir: Path, stem: str) -> list[Path]:
    """Write one OpenPose JSON file per frame into ``out_dir`` (created; must be empty or new)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} exists and is not an empty directory")
    op = to_openpose(motion)
    files = []
    with atomic_dir(out_dir) as tmp:
        for t in range(op.frames):
            doc = {
                "version": 1.3,
                "people": [_person(op, t)] if np.isfinite(op.body[t]).any() else [],
                "canvas_width": motion.width,
                "canvas_height": motion.height,
                "timestamp": _flt(motion.timestamps[t]),
            }
            name = f"{stem}_{t:012d}_keypoints.json"
            (tmp / name).write_text(json.dumps(doc, separators=(",", ":")))
            files.append(out_dir / name)
    return files


def _triplets(xy: np.ndarray, c: np.ndarray) -> list[float]:
    out: list[float] = []
    for (x, y), conf in zip(xy, c):
        if np.isfinite(x) and np.isfinite(y):
            out += [_flt(x), _flt(y), _flt(conf)]
        else:
            out += [0.0, 0.0, 0.0]
    return out


def _person(op: OpenPoseFrames, t: int) -> dict:
    p = {"person_id": [-1], "pose_keypoints_2d": _triplets(op.body[t], op.body_conf[t])}
    p["face_keypoints_2d"] = _triplets(op.face[t], op.face_conf[t]) if op.face is not None else []
    for side, key in ((0, "hand_left_keypoints_2d"), (1, "hand_right_keypoints_2d")):
        p[key] = _triplets(op.hands[t, side], op.hands_conf[t, side]) if op.hands is not None else []
    for key in ("pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d"):
        p[key] = []
    return p


def _pose_frames(motion: Motion, threshold: float) -> list[dict]:
    """Each frame as the ControlNet annotators write and read it (see the module)."""
    op = to_openpose(motion)
    size = np.array([motion.width, motion.height], np.float64)

    def block(xy: np.ndarray, c: np.ndarray) -> list[float]:
        out: list[float] = []
        for (x, y), conf in zip(xy / size, c):
            # seen, and on the canvas: controlnet's drawing takes a keypoint outside 0-1 for a pixel
            # coordinate and would scale the whole body wrongly
            if conf >= threshold and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0:
                out += [_flt(x), _flt(y), 1.0]
            else:
                out += [0.0, 0.0, 0.0]
        return out

    frames = []
    for t in range(op.frames):
        people = []
        if np.isfinite(op.body[t]).any():
            person = {"pose_keypoints_2d": block(op.body[t], op.body_conf[t])}
            person["face_keypoints_2d"] = block(op.face[t], op.face_conf[t]) if op.face is not None else None
            for side, key in ((0, "hand_left_keypoints_2d"), (1, "hand_right_keypoints_2d")):
                person[key] = block(op.hands[t, side], op.hands_conf[t, side]) if op.hands is not None else None
            people.append(person)
        frames.append({"people": people, "canvas_width": motion.width, "canvas_height": motion.height,
                       "timestamp": _flt(motion.timestamps[t])})
    return frames


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold <= 1:
        raise InputError("{threshold} must lie in [0, 1]", params=["threshold"])


def export_controlnet_aux(motion: Motion, out_dir: Path, stem: str, threshold: float = 0.3) -> list[Path]:
    """One JSON file per frame in ``out_dir`` (created; must be empty or new), each what
    controlnet_aux's ``decode_json_as_poses`` reads."""
    _check_threshold(threshold)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} exists and is not an empty directory")
    files = []
    with atomic_dir(out_dir) as tmp:
        for t, doc in enumerate(_pose_frames(motion, threshold)):
            name = f"{stem}_{t:012d}_keypoints.json"
            (tmp / name).write_text(json.dumps(doc, separators=(",", ":")))
            files.append(out_dir / name)
    return files


def export_comfyui(motion: Motion, path: Path, threshold: float = 0.3) -> Path:
    """One JSON file holding the list of frames: ComfyUI's POSE_KEYPOINT."""
    _check_threshold(threshold)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(_pose_frames(motion, threshold), separators=(",", ":")))
    return path


def export_bvh(motion: Motion, path: Path) -> dict:
    """The world landmarks as BVH (motionlib.core.bvh); what was written: the BVH frames, their
    time, how many were filled in or whether they were re-sampled, the bone lengths."""
    from motionlib.core import bvh

    fitted = bvh.fit(motion)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(bvh.text(fitted))
    return {"path": str(path), "frame_time": fitted.frame_time, "bvh_frames": fitted.frames,
            "filled_frames": int((~fitted.measured).sum()), "resampled": fitted.resampled,
            "lengths": {k: round(v, 4) for k, v in fitted.lengths.items()}}


def export_npz(motion: Motion, path: Path, meta: dict | None = None) -> Path:
    meta = dict(meta or {})
    meta.update(
        format="motionlib-npz", format_version=NPZ_FORMAT_VERSION, skeleton=motion.skeleton.name,
        joint_names=list(motion.skeleton.joint_names), width=motion.width, height=motion.height,
        duration=motion.duration,
    )
    arrays = {
        "keypoints": motion.keypoints, "confidence": motion.confidence, "timestamps": motion.timestamps,
        "meta": np.array(json.dumps(meta)),
    }
    if motion.world is not None:
        arrays["world"] = motion.world
    if motion.presence is not None:
        arrays["presence"] = motion.presence
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def export_csv(motion: Motion, path: Path) -> Path:
    names = motion.skeleton.joint_names
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time"] + [f"{n}_{k}" for n in names for k in ("x", "y", "c")])
        for t in range(motion.frames):
            row: list = [t, f"{motion.timestamps[t]:.6f}"]
            for j in range(len(names)):
                x, y = motion.keypoints[t, j]
                if np.isfinite(x) and np.isfinite(y):
                    row += [f"{x:.3f}", f"{y:.3f}", f"{motion.confidence[t, j]:.4f}"]
                else:
                    row += ["", "", ""]
            w.writerow(row)
    return path


# ------------------------------------------------------------------------------------- import
def read(path: Path, fmt: str, *, fps: float | None = None, size: tuple[int, int] | None = None,
         person: int = 0) -> Imported:
    """Read keypoints written as ``fmt`` (IMPORT_FORMATS); ``fps``, ``size`` and ``person`` are
    for OpenPose JSON."""
    if fmt == "npz":
        return import_npz(path)
    if fmt == "openpose-json":
        return import_openpose_json(path, fps=fps, size=size, person=person)
    raise InputError(f"{{format}} {fmt!r}: import reads {', '.join(IMPORT_FORMATS)}", params=["format"])


def _sha_of(paths: list[Path], root: Path | None) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    for p in paths:
        if root is not None:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
        data = p.read_bytes()
        h.update(data)
        size += len(data)
    return h.hexdigest(), size


def _natural(p: Path):
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)]


def import_openpose_json(path: Path, *, fps: float | None = None, size: tuple[int, int] | None = None,
                         person: int = 0) -> Imported:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file()), key=_natural)
        if not files:
            raise InputError(f"{path} holds no .json files")
        T = len(files)
        docs = map(_load_json, files)  # read one at a time: a long take's frames are not all held parsed
        root = path
    else:
        files = [path]
        root = None
        doc = _load_json(path)
        docs = doc if isinstance(doc, list) else [doc]
        T = len(docs)
    if not T:
        raise InputError(f"{path}: no frames")
    if T > MAX_IMPORT_FRAMES:
        raise InputError(f"{path}: {T} frames is more than {MAX_IMPORT_FRAMES}")
    _check_frames(path, T, 18)
    body = np.full((T, 18, 2), np.nan, np.float32)
    body_c = np.zeros((T, 18), np.float32)
    hands = np.full((T, 2, 21, 2), np.nan, np.float32)
    hands_c = np.zeros((T, 2, 21), np.float32)
    face = np.full((T, 70, 2), np.nan, np.float32)
    face_c = np.zeros((T, 70), np.float32)
    have_hands = have_face = False
    stamps: list[float | None] = []
    canvas = set()
    for t, (doc, src) in enumerate(zip(docs, files if root is not None else [path] * T)):
        where = f"{src.name}" + (f" frame {t}" if root is None and T > 1 else "")
        if not isinstance(doc, dict) or not isinstance(doc.get("people", None), list):
            raise InputError(f"{where}: not an OpenPose frame (no 'people' list)")
        if "canvas_width" in doc and "canvas_height" in doc:
            canvas.add((_int(doc["canvas_width"], where), _int(doc["canvas_height"], where)))
        ts = doc.get("timestamp")
        stamps.append(float(ts) if isinstance(ts, (int, float)) and math.isfinite(ts) else None)
        people = doc["people"]
        if len(people) <= person:
            continue
        p = people[person]
        if not isinstance(p, dict):
            raise InputError(f"{where}: people[{person}] is not an object")
        body[t], body_c[t] = _points(p.get("pose_keypoints_2d"), 18, where, "pose_keypoints_2d", required=True)
        for side, key in ((0, "hand_left_keypoints_2d"), (1, "hand_right_keypoints_2d")):
            if p.get(key):
                hands[t, side], hands_c[t, side] = _points(p[key], 21, where, key)
                have_hands = True
        if p.get("face_keypoints_2d"):
            face[t], face_c[t] = _points(p["face_keypoints_2d"], 70, where, "face_keypoints_2d")
            have_face = True
    if not np.isfinite(body).any():
        raise InputError(f"{path}: no person with body keypoints in any frame")
    notes = []
    if len(canvas) > 1:
        raise InputError(f"{path}: frames disagree on canvas size ({sorted(canvas)})")
    if size is not None:
        width, height = size
    elif canvas:
        width, height = canvas.pop()
    else:
        width = height = None
    pts = np.concatenate([body.reshape(-1, 2), hands.reshape(-1, 2), face.reshape(-1, 2)])
    pts = pts[np.isfinite(pts).all(axis=1)]
    if pts.size and float(pts.max()) <= 1.0 + 1e-6:
        if width is None:
            raise InputError(f"{path}: keypoints are normalised to [0, 1]; give the frame size with {{size=WxH}}",
                             params=["size"])
        scale = np.array([width, height], np.float32)
        body *= scale
        hands *= scale
        face *= scale
        notes.append(f"normalised coordinates scaled to {width}x{height}")
    if width is None:
        width = int(math.ceil(float(pts[:, 0].max()))) + 1
        height = int(math.ceil(float(pts[:, 1].max()))) + 1
        notes.append(f"no canvas size in the files: using the keypoints' extent {width}x{height} (--size to set it)")
    timestamps, how = _timestamps(stamps, fps, path)
    notes.append(how)
    frames = OpenPoseFrames(body, body_c, hands if have_hands else None, hands_c if have_hands else None,
                            face if have_face else None, face_c if have_face else None)
    sk, kp, conf = from_openpose(frames)
    _check_frames(path, T, sk.num_joints)
    step = float(np.median(np.diff(timestamps))) if T > 1 else 1.0 / (fps or 30.0)
    try:
        motion = Motion(sk, kp, conf, timestamps, int(width), int(height), float(timestamps[-1] + step)).validate()
    except InputError as err:
        raise InputError(f"{path.name}: {err.template}", params=err.params) from None
    sha, nbytes = _sha_of(files, root)
    settings = {"format": "openpose-json", "person": person, "fps": fps, "size": list(size) if size else None}
    return Imported(motion, path.name, sha, nbytes, settings, notes)


def _timestamps(stamps: list[float | None], fps: float | None, path: Path) -> tuple[np.ndarray, str]:
    T = len(stamps)
    if fps is None and all(s is not None for s in stamps):
        ts = np.asarray(stamps, np.float64)
        if T == 1 or (np.diff(ts) > 0).all():
            return ts - ts[0], "timing from the files' timestamps"
        raise InputError(f"{path}: the frames' timestamps do not increase; give {{fps}} to ignore them",
                         params=["fps"])
    rate = fps or 30.0
    if not 0 < rate <= 1000:
        raise InputError("{fps} must lie in (0, 1000]", params=["fps"])
    return np.arange(T) / rate, f"timing from {'--fps' if fps else 'the default'} {rate:g} fps"


def _int(v, where) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < 100_000):
        raise InputError(f"{where}: canvas size {v!r} is not a positive number of pixels")
    return int(v)


def _points(values, n: int, where: str, key: str, required: bool = False):
    if values is None or values == []:
        if required:
            raise InputError(f"{where}: missing {key}")
        return np.full((n, 2), np.nan, np.float32), np.zeros(n, np.float32)
    if not isinstance(values, list) or len(values) != 3 * n:
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise InputError(f"{where}: {key} must hold {3 * n} numbers (x, y, c for {n} points), got {got}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise InputError(f"{where}: {key} holds something that is not a number")
    try:
        a = np.asarray(values, np.float64).reshape(n, 3)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: {key} holds a number too large to be a coordinate") from None
    if not np.isfinite(a).all():
        raise InputError(f"{where}: {key} holds NaN or infinite values")
    xy = a[:, :2].astype(np.float32)
    c = np.clip(a[:, 2], 0.0, 1.0).astype(np.float32)
    unknown = (a == 0).all(axis=1)
    xy[unknown] = np.nan
    c[unknown] = 0.0
    return xy, c


MAX_JSON_BYTES = 64 * 1024 * 1024  # one OpenPose JSON file


def _load_json(p: Path):
    try:
        if p.stat().st_size > MAX_JSON_BYTES:
            raise InputError(f"{p.name}: {p.stat().st_size / 1e6:.0f} MB is more than an OpenPose file holds "
                             f"(at most {MAX_JSON_BYTES // 2**20} MiB)")
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{p.name}: not a UTF-8 text file") from None
    except OSError as err:
        raise InputError(f"cannot read {p}: {err.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{p.name}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise InputError(f"{p.name}: JSON nested too deeply to be an OpenPose file") from None


def _whole(v, name: str) -> int:
    """A frame side from JSON: a whole, finite number of pixels in range."""
    from motionlib.core.motion import MAX_SIDE

    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= MAX_SIDE \
            or int(v) != v:
        raise ValueError(f"{name} {str(v)[:40]} is not a whole number of pixels in 1-{MAX_SIDE}")
    return int(v)


def _check_frames(path: Path, frames: int, joints: int) -> None:
    from motionlib.core.limits import max_frames

    most = max_frames(joints)
    if frames > most:
        raise InputError(f"{path.name}: {frames:,} frames; a version holds at most {most:,} frames of "
                         f"{joints} joints: split it into parts of at most {most:,} frames first")


def _check_npz_length(path: Path) -> None:
    """Refuse, before reading any array, keypoints longer than a version may hold
    (core.limits): their shape is read from the array's header alone."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf, zf.open("keypoints.npy") as f:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape = read(f, max_header_size=10_000)[0]
    except Exception:  # noqa: BLE001 - not a readable npz, or no keypoints: the full read says which
        return
    if len(shape) == 3 and shape[1] > 0:
        _check_frames(path, int(shape[0]), int(shape[1]))


def import_npz(path: Path) -> Imported:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    _check_npz_length(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path.name}: not a readable .npz file ({str(err).splitlines()[0][:120]})") from None
    except Exception as err:  # zipfile.BadZipFile and friends
        raise InputError(f"{path.name}: not a readable .npz file ({type(err).__name__})") from None
    for key in ("keypoints", "confidence", "timestamps", "meta"):
        if key not in data:
            raise InputError(f"{path.name}: missing array {key!r} (arrays: {', '.join(sorted(data)) or 'none'})")
    for key, arr in data.items():
        if key != "meta" and arr.dtype.kind not in "fiu":
            raise InputError(f"{path.name}: array {key!r} must hold numbers, not {arr.dtype}")
    try:
        text = str(data["meta"])
        if len(text) > 1_000_000:
            raise ValueError("more than a million characters")
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise TypeError("not a JSON object")
        sk_name = meta["skeleton"]
        width, height = _whole(meta["width"], "width"), _whole(meta["height"], "height")
        duration = meta["duration"]
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration):
            raise ValueError(f"duration {duration!r} is not a finite number of seconds")
        duration = float(duration)
    except (ValueError, KeyError, TypeError, OverflowError) as err:
        raise InputError(f"{path.name}: unreadable 'meta' ({str(err)[:120]})") from None
    except RecursionError:
        raise InputError(f"{path.name}: unreadable 'meta' (JSON nested too deeply)") from None
    if not isinstance(sk_name, str) or sk_name not in SKELETONS:
        raise InputError(f"{path.name}: unknown skeleton {str(sk_name)[:60]!r} (known: {', '.join(sorted(SKELETONS))})")
    skeleton = get_skeleton(sk_name)
    if list(meta.get("joint_names", skeleton.joint_names)) != list(skeleton.joint_names):
        raise InputError(f"{path.name}: joint_names do not match the {sk_name} layout")
    kp = data["keypoints"]
    if kp.dtype.kind != "f":
        raise InputError(f"{path.name}: keypoints must be floating point")
    f32 = lambda a: a.astype(np.float32, copy=False)  # noqa: E731 - read as written, not copied again
    motion = Motion(
        skeleton, f32(data.pop("keypoints")), f32(data.pop("confidence")),
        data.pop("timestamps").astype(np.float64, copy=False), width, height, duration,
        world=f32(data.pop("world")) if "world" in data else None,
        presence=f32(data.pop("presence")) if "presence" in data else None,
    )
    del data, kp
    try:
        motion.validate()
    except InputError as err:
        raise InputError(f"{path.name}: {err.template}", params=err.params) from None
    if not np.isfinite(motion.keypoints).any():
        raise InputError(f"{path.name}: no known keypoints")
    sha, nbytes = _sha_of([path], None)
    return Imported(motion, path.name, sha, nbytes, {"format": "npz"}, [])
