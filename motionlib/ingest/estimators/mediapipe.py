"""MediaPipe estimators: Pose (default), Holistic (--whole-body), PoseLandmarker (.task file).

mediapipe 0.10.14 still ships the legacy ``solutions`` graphs with their models in the wheel, so the
default runs offline. Model complexity 1 is the only one bundled (0 and 2 would download).
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
TASKS_NAME = "mediapipe-pose-landmarker"


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
        self._graph = self._make_graph(
            _import_mediapipe().solutions,
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
    """The Tasks API PoseLandmarker with a user-supplied ``.task`` model (e.g. pose_landmarker_full
    .task from Google's model card), in VIDEO mode. Reports presence as well as visibility."""

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
        img = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=image)
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
    cls = {POSE_NAME: MediaPipePose, HOLISTIC_NAME: MediaPipeHolistic, TASKS_NAME: MediaPipeTasksPose}
    try:
        return cls[spec.name](spec)
    except KeyError:
        raise EstimatorError(f"unknown estimator {spec.name!r}") from None


def mediapipe_version() -> str:
    from importlib.metadata import version

    return version("mediapipe")
