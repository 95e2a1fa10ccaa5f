"""Pose estimators behind one small interface; ``spec_for`` picks one from the options."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from motionlib.ingest.estimators.base import EstimatorSpec, PoseEstimator, PoseResult

__all__ = ["ESTIMATORS", "EstimatorSpec", "PoseEstimator", "PoseResult", "builder", "default_estimator",
           "library_of", "spec_for"]

# The estimators ``estimator=NAME`` (``--estimator NAME``) chooses: name -> the module below
# motionlib.ingest.estimators that describes (``spec``) and builds (``build``) it. Without a name,
# MediaPipe: Holistic for ``whole_body``, Tasks for ``task_file``, else ``default_estimator()``;
# mediapipe-pose-landmarker, the Tasks estimator's earlier name, is still understood.
ESTIMATORS: dict[str, str] = {
    "mediapipe-pose": "mediapipe",
    "mediapipe-tasks": "mediapipe",
    "mediapipe-holistic": "mediapipe",
    "rtmw": "rtm",
    "dwpose": "rtm",
}


def _module(name: str):
    return importlib.import_module(f"motionlib.ingest.estimators.{ESTIMATORS.get(name, 'mediapipe')}")


def builder(name: str) -> Callable[[EstimatorSpec], PoseEstimator]:
    """What builds the estimator a spec names."""
    return _module(name).build


def library_of(spec: EstimatorSpec) -> str:
    """The library (and version) that runs the estimator, for the manifest."""
    if ESTIMATORS.get(spec.name) == "rtm":
        from motionlib.ingest.estimators.rtm import onnxruntime_version

        return f"onnxruntime {onnxruntime_version()}"
    from motionlib.ingest.estimators.mediapipe import mediapipe_version

    return f"mediapipe {mediapipe_version()}"


def default_estimator() -> str:
    """Legacy MediaPipe Pose where this mediapipe still has it (Python <= 3.12), else the Tasks
    API PoseLandmarker."""
    from motionlib.ingest.estimators.mediapipe import POSE_NAME, TASKS_NAME, legacy_available

    return POSE_NAME if legacy_available() else TASKS_NAME


def spec_for(
    *,
    estimator: str | None = None,
    whole_body: bool = False,
    task_file: Path | None = None,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    models_config: Path | None = None,
) -> EstimatorSpec:
    """Describe the estimator the options ask for. Nothing is loaded yet, but what it needs is
    checked: the legacy solutions for Pose and Holistic, the model file (and its SHA-256, which
    the settings carry) for Tasks, an ONNX estimator's weights (located and hashed). ``whole_body``
    means Holistic and ``task_file`` means Tasks; either may be given with the same ``estimator``
    and not with another."""
    from motionlib.core.errors import EstimatorError, InputError
    from motionlib.ingest.estimators import mediapipe as mpe

    if estimator == mpe.OLD_TASKS_NAME:
        estimator = mpe.TASKS_NAME
    if estimator is not None and estimator not in ESTIMATORS:
        raise InputError(f"{{estimator}} {estimator!r}: choose one of {', '.join(ESTIMATORS)}", params=["estimator"])
    if estimator is not None and ESTIMATORS[estimator] != "mediapipe":
        if whole_body or task_file:
            which = "whole_body" if whole_body else "task_file"
            raise InputError(f"{{estimator}} {estimator} and {{{which}}} cannot be combined ({{{which}}} chooses a "
                             "MediaPipe estimator)", params=["estimator", which])
        return _module(estimator).spec(estimator, min_detection_confidence=min_detection_confidence,
                                       models_config=models_config)
    if whole_body and task_file:
        raise InputError("{whole_body} and {task_file} cannot be combined (the .task model is body only)",
                         params=["whole_body", "task_file"])
    if whole_body and estimator not in (None, mpe.HOLISTIC_NAME):
        raise InputError(f"{{whole_body}} is {{estimator={mpe.HOLISTIC_NAME}}}; it cannot be combined with "
                         f"{{estimator={estimator}}}", params=["whole_body", "estimator"])
    if task_file and estimator not in (None, mpe.TASKS_NAME):
        raise InputError(f"{{task_file}} is a model for {{estimator={mpe.TASKS_NAME}}}; it cannot be combined "
                         f"with {{estimator={estimator}}}", params=["task_file", "estimator"])
    name = estimator or (mpe.HOLISTIC_NAME if whole_body else mpe.TASKS_NAME if task_file else default_estimator())
    common = {
        "min_detection_confidence": float(min_detection_confidence),
        "min_tracking_confidence": float(min_tracking_confidence),
    }
    if name in mpe.LEGACY_NAMES and not mpe.legacy_available():
        raise EstimatorError(mpe.legacy_missing_message(name), params=["estimator"])
    if name == mpe.TASKS_NAME:
        from motionlib.ingest.estimators import models

        if task_file is None:
            found = models.locate(models.POSE)
            if not found.present:
                raise EstimatorError(models.missing_message(found), params=["task_file"])
            path, sha, source = found.path, found.sha256, "cache"
        else:
            path = Path(task_file)
            if not path.is_file():
                raise EstimatorError(f"{{task_file}} {path}: no such file", params=["task_file"])
            try:
                sha = models.file_sha256(path)
            except OSError as err:
                raise EstimatorError(f"{{task_file}} {path}: {err.strerror or err}", params=["task_file"]) from None
            source = "task file"
        return EstimatorSpec(mpe.TASKS_NAME, "mediapipe_pose_33", {
            **common, "task_file": str(path), "model_sha256": sha, "model_source": source})
    if name == mpe.HOLISTIC_NAME:
        return EstimatorSpec(name, "mediapipe_holistic_543", {**common, "model_complexity": 1})
    return EstimatorSpec(name, "mediapipe_pose_33", {**common, "model_complexity": 1, "smooth_landmarks": True})
