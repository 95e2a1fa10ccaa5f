"""Pose estimators behind one small interface; ``spec_for`` picks one from the options."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from motionlib.ingest.estimators.base import EstimatorSpec, PoseEstimator, PoseResult

__all__ = ["ESTIMATORS", "EstimatorSpec", "PoseEstimator", "PoseResult", "builder", "library_of", "spec_for"]

# The estimators ``estimator=NAME`` (``--estimator NAME``) chooses: name -> the module below
# motionlib.ingest.estimators that describes (``spec``) and builds (``build``) it. Without a name,
# the MediaPipe estimators are chosen by ``whole_body`` and ``task_file``.
ESTIMATORS: dict[str, str] = {
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


def spec_for(
    *,
    whole_body: bool = False,
    task_file: Path | None = None,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    estimator: str | None = None,
    models_config: Path | None = None,
) -> EstimatorSpec:
    """Describe the estimator the options ask for (cheap: nothing is loaded yet; an ONNX
    estimator's weights are located and hashed)."""
    from motionlib.core.errors import InputError

    if estimator is not None:
        if estimator not in ESTIMATORS:
            raise InputError(f"{{estimator}} {estimator!r} is not an estimator (estimators: {', '.join(ESTIMATORS)})",
                             params=["estimator"])
        if whole_body or task_file:
            which = "whole_body" if whole_body else "task_file"
            raise InputError(f"{{estimator}} {estimator} and {{{which}}} cannot be combined ({{{which}}} chooses a "
                             "MediaPipe estimator)", params=["estimator", which])
        return _module(estimator).spec(estimator, min_detection_confidence=min_detection_confidence,
                                       models_config=models_config)
    if whole_body and task_file:
        raise InputError("{whole_body} and {task_file} cannot be combined (the .task model is body only)",
                         params=["whole_body", "task_file"])
    common = {
        "min_detection_confidence": float(min_detection_confidence),
        "min_tracking_confidence": float(min_tracking_confidence),
    }
    if task_file is not None:
        from motionlib.ingest.estimators.mediapipe import TASKS_NAME

        return EstimatorSpec(TASKS_NAME, "mediapipe_pose_33", {**common, "task_file": str(task_file)})
    if whole_body:
        from motionlib.ingest.estimators.mediapipe import HOLISTIC_NAME

        return EstimatorSpec(HOLISTIC_NAME, "mediapipe_holistic_543", {**common, "model_complexity": 1})
    from motionlib.ingest.estimators.mediapipe import POSE_NAME

    return EstimatorSpec(
        POSE_NAME, "mediapipe_pose_33", {**common, "model_complexity": 1, "smooth_landmarks": True}
    )
