"""The canonical motion: what a stored asset version holds, in memory.

Coordinates are pixels of the *displayed* source frame (rotation applied), origin top-left,
x right, y down. A frame where nobody was followed has NaN keypoints and zero confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from motionlib.core.errors import InputError
from motionlib.core.skeleton import Skeleton

# Bumped whenever the stored layout or manifest changes shape; stamped on every stored version.
SCHEMA_VERSION = 1

# What any stored motion must respect (checked by validate(), so at every door: ingest, edits, imports)
MAX_SIDE = 100_000  # pixels, a frame's width or height
MAX_DURATION = 7 * 24 * 3600.0  # seconds
MIN_STEP = 1e-5  # seconds between frames (100 kHz)
MAX_COORD = 100  # keypoints lie within this many frame sizes of the frame


@dataclass(eq=False)
class Motion:
    skeleton: Skeleton
    keypoints: np.ndarray  # float32 [T, J, 2], display pixels, NaN where not detected
    confidence: np.ndarray  # float32 [T, J], the estimator's visibility in [0, 1]
    timestamps: np.ndarray  # float64 [T], seconds from the first stored frame, strictly increasing
    width: int  # displayed source frame size in pixels
    height: int
    duration: float  # seconds covered, last frame's own duration included
    world: np.ndarray | None = None  # float32 [T, J, 3] metres, hip-centred, NaN where absent
    presence: np.ndarray | None = None  # float32 [T, J] when the estimator reports it
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def fps(self) -> float:
        """Mean frame rate: frames per second of real time (variable-rate clips included)."""
        return self.frames / self.duration if self.duration > 0 else 0.0

    @property
    def detected(self) -> np.ndarray:
        """[T] bool: frames in which the performer was followed."""
        return np.isfinite(self.keypoints).all(axis=2).any(axis=1)

    def validate(self) -> "Motion":
        """Check shapes, dtypes and timing; raise InputError naming the first problem."""
        kp, conf, ts = self.keypoints, self.confidence, self.timestamps
        J = self.skeleton.num_joints
        if kp.ndim != 3 or kp.shape[1:] != (J, 2):
            raise InputError(f"keypoints must be [T, {J}, 2], got {list(kp.shape)}")
        T = kp.shape[0]
        if T < 1:
            raise InputError("a motion needs at least one frame")
        if conf.shape != (T, J):
            raise InputError(f"confidence must be [{T}, {J}], got {list(conf.shape)}")
        if ts.shape != (T,):
            raise InputError(f"timestamps must be [{T}], got {list(ts.shape)}")
        for name, arr in (("keypoints", kp), ("confidence", conf), ("timestamps", ts), ("world", self.world),
                          ("presence", self.presence)):
            if arr is not None and arr.dtype.kind not in "fiu":
                raise InputError(f"{name} must be numbers, not {arr.dtype}")
        if not np.isfinite(ts).all() or (T > 1 and not (np.diff(ts) > 0).all()):
            raise InputError("timestamps must be finite and strictly increasing")
        for name, arr, shape in (("world", self.world, (T, J, 3)), ("presence", self.presence, (T, J))):
            if arr is not None and arr.shape != shape:
                raise InputError(f"{name} must be {list(shape)}, got {list(arr.shape)}")
        if T > 1 and float(np.min(np.diff(ts))) < MIN_STEP:
            raise InputError(f"frames must be at least {MIN_STEP:g} s apart (the closest are "
                             f"{float(np.min(np.diff(ts))):.3g} s apart)")
        if not all(np.isfinite(c).all() and np.min(c, initial=0.0) >= 0 and np.max(c, initial=0.0) <= 1
                   for c in _blocks(conf)):
            raise InputError("confidence must lie in [0, 1]")
        if not (isinstance(self.width, (int, np.integer)) and isinstance(self.height, (int, np.integer))
                and 0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
            raise InputError(f"frame size must be whole pixels in 1-{MAX_SIDE}, got {str(self.width)[:12]}x"
                             f"{str(self.height)[:12]}")
        if not (isinstance(self.duration, (int, float, np.floating)) and np.isfinite(self.duration)
                and self.duration <= MAX_DURATION):
            raise InputError(f"duration must be a finite number of seconds up to {MAX_DURATION:g}")
        if not self.duration > 0 and T > 1:
            raise InputError("duration must be positive")
        if kp.size:
            with np.errstate(invalid="ignore"):
                far = max(float(np.nanmax(np.abs(k), initial=0.0)) for k in _blocks(kp))
            if any(np.isinf(k).any() for k in _blocks(kp)) or far > MAX_COORD * max(self.width, self.height):
                raise InputError(f"keypoints lie far outside the {self.width}x{self.height} frame "
                                 f"(up to {far:.3g} pixels)")
        return self


def _blocks(a: np.ndarray, frames: int = 65536):
    """``a`` in blocks of frames: checks of a long take make small temporaries, not copies of it."""
    for t in range(0, max(1, a.shape[0]), frames):
        yield a[t : t + frames]
