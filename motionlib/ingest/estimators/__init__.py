"""Pose estimators behind one small interface; ``spec_for`` picks one from the options."""

from __future__ import annotations

from pathlib import Path

from motionlib.ingest.estimators.base import EstimatorSpec, PoseEstimator, PoseResult

__all__ = ["ESTIMATORS", "EstimatorSpec", "PoseEstimator", "PoseResult", "default_estimator", "spec_for"]

# what ``estimator`` may name (the command line's --estimator); mediapipe-pose-landmarker, the Tasks
# estimator's earlier name, is still understood
ESTIMATORS = ("mediapipe-pose", "mediapipe-tasks", "mediapipe-holistic")


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
) -> EstimatorSpec:
    """Describe the estimator the options ask for. Nothing is loaded yet, but what it needs is
    checked: the legacy solutions for Pose and Holistic, the model file (and its SHA-256, which
    the settings carry) for Tasks. ``whole_body`` means Holistic and ``task_file`` means Tasks;
    either may be given with the same ``estimator`` and not with another."""
    from motionlib.core.errors import EstimatorError, InputError
    from motionlib.ingest.estimators import mediapipe as mpe

    if estimator == mpe.OLD_TASKS_NAME:
        estimator = mpe.TASKS_NAME
    if estimator is not None and estimator not in ESTIMATORS:
        raise InputError(f"{{estimator}} {estimator!r}: choose one of {', '.join(ESTIMATORS)}", params=["estimator"])
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
