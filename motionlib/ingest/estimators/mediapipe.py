"""MediaPipe estimators: Pose (legacy, the default where installed), Holistic (legacy, whole body),
and the Tasks API PoseLandmarker (a .task model: the cached pose model or one given).

mediapipe <= 0.10.21 (Python <= 3.12) still ships the legacy ``solutions`` graphs with their models
in the wheel, so the default runs offline. Model complexity 1 is the only one bundled (0 and 2 would
download). mediapipe >= 0.10.30 (the only one for Python 3.13+) has the Tasks API alone and no model:
there the Tasks estimator runs with the model ``motionlib models fetch pose`` put in the cache.
Nothing here imports mediapipe before an estimator is built.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
import warnings
from pathlib import Path

import numpy as np

from motionlib.core.errors import EstimatorError
from motionlib.ingest.estimators.base import EstimatorSpec, PoseEstimator, PoseResult

POSE_NAME = "mediapipe-pose"
HOLISTIC_NAME = "mediapipe-holistic"
TASKS_NAME = "mediapipe-tasks"
OLD_TASKS_NAME = "mediapipe-pose-landmarker"  # the Tasks estimator's earlier name, in older manifests
LEGACY_NAMES = (POSE_NAME, HOLISTIC_NAME)

# the models each legacy graph loads from the wheel (model complexity 1), relative to the package
_POSE_FILES = ("modules/pose_detection/pose_detection.tflite", "modules/pose_landmark/pose_landmark_full.tflite")
LEGACY_MODELS = {
    POSE_NAME: _POSE_FILES,
    HOLISTIC_NAME: _POSE_FILES + (
        "modules/holistic_landmark/hand_recrop.tflite",
        "modules/hand_landmark/hand_landmark_full.tflite",
        "modules/face_detection/face_detection_short_range.tflite",
        "modules/face_landmark/face_landmark.tflite",
    ),
}


def mediapipe_root() -> Path | None:
    """Where the mediapipe package is installed, found without importing it (0.5-1 s)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def legacy_available() -> bool:
    """Whether this mediapipe still has the legacy ``solutions`` with their bundled pose models
    (mediapipe <= 0.10.21; gone from 0.10.30, the only release line for Python 3.13+)."""
    root = mediapipe_root()
    return root is not None and (root / "python" / "solutions" / "pose.py").is_file() and all(
        (root / f).is_file() for f in _POSE_FILES)


def legacy_missing_message(name: str) -> str:
    return (f"estimator {name} needs mediapipe's legacy solutions, which mediapipe {mediapipe_version()} "
            f"(Python {sys.version_info[0]}.{sys.version_info[1]}) does not have: they end with mediapipe 0.10.21, "
            "for Python 3.12 and older. Use {estimator=mediapipe-tasks} (body, 33 points)"
            + ("; there is no whole-body estimator for this Python" if name == HOLISTIC_NAME else ""))


def model_record(spec: EstimatorSpec) -> dict:
    """What the manifest says about the model the estimator ran: where it came from and the
    SHA-256 of each file (a .task bundle, or the legacy graph's TFLite files in the wheel), and
    ``sha256``: the bundle's, or for several files the digest of their sorted ``name sha256`` lines."""
    import hashlib

    from motionlib.ingest.estimators.models import file_sha256

    if spec.name == TASKS_NAME:
        path = Path(spec.settings["task_file"])
        sha = spec.settings.get("model_sha256") or file_sha256(path)
        return {"source": spec.settings.get("model_source", "task file"), "file": path.name,
                "sha256": sha, "files": {path.name: sha}}
    root = mediapipe_root()
    files = {}
    for rel in LEGACY_MODELS.get(spec.name, ()):
        p = root / rel if root is not None else None
        files[Path(rel).name] = file_sha256(p) if p is not None and p.is_file() else None
    lines = "".join(f"{k} {v}\n" for k, v in sorted(files.items()))
    return {"source": f"bundled with mediapipe {mediapipe_version()}", "file": None,
            "sha256": hashlib.sha256(lines.encode()).hexdigest(), "files": files}


@contextlib.contextmanager
def quiet_native_stderr():
    """Send what native code (TFLite, absl) prints on fd 2 to /dev/null, while Python's own
    ``sys.stderr`` (progress bars, errors) keeps writing to the real terminal.

    Set MOTIONLIB_DEBUG=1 to see the native log.
    """
    if os.environ.get("MOTIONLIB_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    old_stderr = sys.stderr
    try:
        py_err = open(saved, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
        sys.stderr = py_err if old_stderr is sys.__stderr__ or old_stderr is None else old_stderr
        os.dup2(devnull, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved, 2)
        sys.stderr = old_stderr
        os.close(saved)
        os.close(devnull)


class _DeferredPyplot(types.ModuleType):
    """Stands in for matplotlib.pyplot inside mediapipe; imports the real one on first use."""

    def __getattr__(self, name):
        import importlib

        return getattr(importlib.import_module("matplotlib.pyplot"), name)


@contextlib.contextmanager
def _pyplot_deferred():
    """mediapipe's ``solutions.drawing_utils`` imports matplotlib.pyplot at import time, which is
    more than half of ``import mediapipe`` (0.5 of 0.95 s measured here); motionlib never draws
    with it. While mediapipe imports, ``matplotlib`` and ``matplotlib.pyplot`` are stand-ins; they
    leave ``sys.modules`` right after, so any later import gets the real package, and mediapipe's
    own reference loads the real pyplot on first use."""
    if "matplotlib" in sys.modules or "matplotlib.pyplot" in sys.modules:
        yield
        return
    pyplot = _DeferredPyplot("matplotlib.pyplot")
    parent = types.ModuleType("matplotlib")
    parent.pyplot = pyplot
    parent.__path__ = []
    sys.modules["matplotlib"] = parent
    sys.modules["matplotlib.pyplot"] = pyplot
    try:
        yield
    finally:
        for name, stub in (("matplotlib.pyplot", pyplot), ("matplotlib", parent)):
            if sys.modules.get(name) is stub:
                del sys.modules[name]


def _import_mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with warnings.catch_warnings(), _pyplot_deferred():
        warnings.simplefilter("ignore")
        try:
            import mediapipe as mp
        except ImportError as err:  # pragma: no cover - a broken install
            raise EstimatorError(f"mediapipe is not importable ({err}); reinstall motionlib") from None
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")
    return mp


def _landmarks(lms, n: int, with_visibility: bool) -> tuple[np.ndarray, np.ndarray]:
    if lms is None:
        return np.full((n, 2), np.nan, np.float32), np.zeros(n, np.float32)
    pts = lms.landmark
    if with_visibility:
        arr = np.array([(p.x, p.y, p.visibility) for p in pts], dtype=np.float32)
        return arr[:, :2], np.clip(arr[:, 2], 0.0, 1.0)
    arr = np.array([(p.x, p.y) for p in pts], dtype=np.float32)
    return arr, np.ones(len(arr), np.float32)


def _world(lms, n: int) -> np.ndarray:
    if lms is None:
        return np.full((n, 3), np.nan, np.float32)
    return np.array([(p.x, p.y, p.z) for p in lms.landmark], dtype=np.float32)


class _SolutionEstimator(PoseEstimator):
    """A legacy ``mp.solutions`` graph in video (tracking) mode."""

    def __init__(self, spec: EstimatorSpec):
        self.spec = spec
        s = spec.settings
        solutions = getattr(_import_mediapipe(), "solutions", None)
        if solutions is None:
            raise EstimatorError(legacy_missing_message(spec.name), params=["estimator"])
        self._graph = self._make_graph(
            solutions,
            static_image_mode=False,
            model_complexity=int(s.get("model_complexity", 1)),
            smooth_landmarks=bool(s.get("smooth_landmarks", True)),
            min_detection_confidence=float(s["min_detection_confidence"]),
            min_tracking_confidence=float(s["min_tracking_confidence"]),
        )

    def _make_graph(self, solutions, **common):
        raise NotImplementedError

    def reset(self):
        self._graph.reset()

    def close(self):
        self._graph.close()


class MediaPipePose(_SolutionEstimator):
    num_joints = 33

    def _make_graph(self, solutions, **common):
        return solutions.pose.Pose(enable_segmentation=False, **common)

    def process(self, image, time_s):
        r = self._graph.process(image)
        if r.pose_landmarks is None:
            return None
        xy, conf = _landmarks(r.pose_landmarks, 33, True)
        return PoseResult(xy, conf, None, _world(r.pose_world_landmarks, 33))


class MediaPipeHolistic(_SolutionEstimator):
    """Body 33 + left hand 21 + right hand 21 + face 468. Hands and face carry confidence 1 when
    found (Holistic reports no per-point visibility for them), 0 otherwise. World coordinates
    exist for the 33 body joints only."""

    num_joints = 543

    def _make_graph(self, solutions, **common):
        return solutions.holistic.Holistic(refine_face_landmarks=False, **common)

    def process(self, image, time_s):
        r = self._graph.process(image)
        if r.pose_landmarks is None:
            return None
        parts = [
            _landmarks(r.pose_landmarks, 33, True),
            _landmarks(r.left_hand_landmarks, 21, False),
            _landmarks(r.right_hand_landmarks, 21, False),
            _landmarks(r.face_landmarks, 468, False),
        ]
        xy = np.concatenate([p[0] for p in parts])
        conf = np.concatenate([p[1] for p in parts])
        world = np.full((543, 3), np.nan, np.float32)
        world[:33] = _world(r.pose_world_landmarks, 33)
        return PoseResult(xy, conf, None, world)


class MediaPipeTasksPose(PoseEstimator):
    """The Tasks API PoseLandmarker with a ``.task`` model (the cached pose_landmarker_full.task
    from ``motionlib models fetch pose``, or one given), in VIDEO mode. Reports presence as well
    as visibility."""

    num_joints = 33

    def __init__(self, spec: EstimatorSpec):
        self.spec = spec
        path = Path(spec.settings["task_file"])
        if not path.is_file():
            raise EstimatorError(f"{{task_file}} {path}: no such file", params=["task_file"])
        mp = _import_mediapipe()
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self._options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=1,
            min_pose_detection_confidence=float(spec.settings["min_detection_confidence"]),
            min_tracking_confidence=float(spec.settings["min_tracking_confidence"]),
        )
        self._vision = vision
        self._open()

    def _open(self):
        try:
            self._landmarker = self._vision.PoseLandmarker.create_from_options(self._options)
        except Exception as err:
            raise EstimatorError(
                f"{{task_file}} {self.spec.settings['task_file']} is not a usable MediaPipe pose "
                f"landmarker model ({str(err).strip().splitlines()[0] if str(err).strip() else err})",
                params=["task_file"],
            ) from None
        self._last_ms = -1

    def process(self, image, time_s):
        ms = max(int(round(time_s * 1000)), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        # mp.Image takes C-contiguous pixels only; a rotated clip's frames are views (np.rot90)
        img = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        r = self._landmarker.detect_for_video(img, ms)
        if not r.pose_landmarks:
            return None
        pts = r.pose_landmarks[0]
        arr = np.array([(p.x, p.y, p.visibility or 0.0, p.presence or 0.0) for p in pts], np.float32)
        world = None
        if r.pose_world_landmarks:
            world = np.array([(p.x, p.y, p.z) for p in r.pose_world_landmarks[0]], np.float32)
        return PoseResult(arr[:, :2], np.clip(arr[:, 2], 0, 1), np.clip(arr[:, 3], 0, 1), world)

    def reset(self):
        self._landmarker.close()
        self._open()

    def close(self):
        self._landmarker.close()


def build(spec: EstimatorSpec) -> PoseEstimator:
    cls = {POSE_NAME: MediaPipePose, HOLISTIC_NAME: MediaPipeHolistic, TASKS_NAME: MediaPipeTasksPose,
           OLD_TASKS_NAME: MediaPipeTasksPose}
    try:
        return cls[spec.name](spec)
    except KeyError:
        raise EstimatorError(f"unknown estimator {spec.name!r}") from None


def mediapipe_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediapipe")
    except PackageNotFoundError:  # pragma: no cover - a broken install
        return "(not installed)"
