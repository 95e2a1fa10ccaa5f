"""The estimator interface: frames in (in time order), one person's native landmarks out."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EstimatorSpec:
    """Which estimator, with which settings: enough to build it again and to tell if two ingests
    were made the same way."""

    name: str
    skeleton: str
    settings: dict[str, Any] = field(default_factory=dict)

    def digest(self, **extra: Any) -> str:
        settings = self.settings
        if settings.get("model_sha256"):  # the model's content decides, not where the file lies
            settings = {k: v for k, v in settings.items() if k not in ("task_file", "model_source")}
        payload = json.dumps(
            {"name": self.name, "settings": settings, **extra}, sort_keys=True, default=str
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def build(self) -> "PoseEstimator":
        from motionlib.ingest.estimators import mediapipe as mpe

        return mpe.build(self)


@dataclass
class PoseResult:
    """One frame's landmarks of the followed person, coordinates normalised to the input image."""

    xy: np.ndarray  # [J, 2] x / width, y / height; NaN for absent joints
    confidence: np.ndarray  # [J] in [0, 1]
    presence: np.ndarray | None = None  # [J]
    world: np.ndarray | None = None  # [J, 3] metres


class PoseEstimator(ABC):
    """Video-mode estimator: call ``process`` on consecutive frames of one clip; ``reset`` before
    an unrelated frame sequence so no track carries over."""

    spec: EstimatorSpec
    num_joints: int

    @abstractmethod
    def process(self, image: np.ndarray, time_s: float) -> PoseResult | None:
        """RGB uint8 [h, w, 3] -> the followed person's landmarks, or None when nobody is found."""

    @abstractmethod
    def reset(self) -> None: ...

    def close(self) -> None:  # pragma: no cover - trivial default
        pass

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
