"""The estimator interface: frames in (in time order), one person's native landmarks out."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Threads one estimator may run (onnxruntime's intra-op threads; MediaPipe's graphs use one core):
# ingest's worker processes set it to their share of the cores. Unset: the library's default.
THREADS_ENV = "MOTIONLIB_ESTIMATOR_THREADS"


@dataclass(frozen=True)
class EstimatorSpec:
    """Which estimator, with which settings: enough to build it again and to tell if two ingests
    were made the same way."""

    name: str
    skeleton: str
    settings: dict[str, Any] = field(default_factory=dict)

    def digest(self, **extra: Any) -> str:
        # a model given with its SHA-256 is that content wherever it lies and whatever it is called
        # (a Hub cache, a local copy, another machine): only the content decides the result
        settings = {k: ({"sha256": v["sha256"]} if isinstance(v, dict) and "sha256" in v else v)
                    for k, v in self.settings.items()}
        if settings.get("model_sha256"):
            settings = {k: v for k, v in settings.items() if k not in ("task_file", "model_source")}
        payload = json.dumps(
            {"name": self.name, "settings": settings, **extra}, sort_keys=True, default=str
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def build(self) -> "PoseEstimator":
        from motionlib.ingest.estimators import builder

        return builder(self.name)(self)


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
    # True for a tracker (a frame's result depends on the frames before, so a fresh tracker run
    # backwards can find what it missed); False for a per-frame detector
    tracking: bool = True

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
