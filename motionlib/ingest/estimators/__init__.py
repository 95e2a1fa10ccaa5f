"""Pose estimators behind one small interface; ``make_estimator`` picks one from the options."""

from __future__ import annotations

from pathlib import Path

from motionlib.ingest.estimators.base import EstimatorSpec, PoseEstimator, PoseResult

__all__ = ["EstimatorSpec", "PoseEstimator", "PoseResult", "spec_for"]


def spec_for(
    *,
    whole_body: bool = False,
    task_file: Path | None = None,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
) -> EstimatorSpec:
    """Describe the estimator the options ask for (cheap: nothing is loaded yet)."""
    from motionlib.core.errors import InputError

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
