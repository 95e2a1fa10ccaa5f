"""The backend interface and the chunk plan.

A backend turns pose maps (already retargeted and drawn at the output size) plus the identity image
into frames (a ``needs_source`` backend takes the kept source clip, cropped to the performer, instead
of the pose maps). It declares ``window`` (frames per chunk; None: any length, the pipeline then cuts
chunks of about ``DEFAULT_CHUNK_SECONDS`` for progress) and ``overlap`` (frames shared by
neighbouring chunks). It yields the clip's frames in order; blending overlaps is its own business.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    from motionlib.core.motion import Motion

DEFAULT_CHUNK_SECONDS = 4.0  # 3-6 s chunks are the rule of thumb for stable generation


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # first frame
    stop: int  # one past the last frame
    overlap_before: int  # frames shared with the previous chunk

    @property
    def frames(self) -> int:
        return self.stop - self.start


def plan_chunks(frames: int, window: int, overlap: int = 0, full_windows: bool = True) -> list[Chunk]:
    """Windows of ``window`` frames, neighbours sharing ``overlap``, covering [0, frames). With
    ``full_windows`` (generators that need whole windows) the last window ends at the last frame
    and may overlap its neighbour more; otherwise it is shorter. One window if it all fits."""
    if frames < 1:
        raise ValueError("nothing to plan")
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"bad window {window} / overlap {overlap}")
    if frames <= window:
        return [Chunk(0, 0, frames, 0)]
    step = window - overlap
    starts = list(range(0, frames - window + 1, step))
    if starts[-1] + window < frames:
        starts.append(frames - window if full_windows else starts[-1] + step)
    chunks = []
    for i, s in enumerate(starts):
        prev_stop = chunks[-1].stop if chunks else s
        chunks.append(Chunk(i, s, min(frames, s + window), max(0, prev_stop - s)))
    return chunks


@dataclass
class ModelSpec:
    role: str  # "base", "controlnet", "ip_adapter" ...
    model_id: str  # a Hugging Face id or a local path
    revision: str | None = None
    subfolder: str | None = None
    weight_name: str | None = None


@dataclass
class RenderContext:
    identity_image: np.ndarray  # RGB uint8 at the output size
    pose_map: Callable[[int], np.ndarray]  # frame index -> RGB uint8 pose map at the output size
    motion: "Motion"  # the retargeted Motion (identity-image pixels)
    width: int
    height: int
    seed: int
    prompt: str = ""
    negative_prompt: str = ""
    params: dict = field(default_factory=dict)
    source_face: Callable[[int], np.ndarray] | None = None
    # needs_source backends: motion times (s, the motion's clock) -> the kept source clip's frames at
    # those times, cropped around the performer at the output size (RGB uint8)
    source_video: Callable[[np.ndarray], Iterator[np.ndarray]] | None = None


class Backend(ABC):
    name: str = ""
    window: int | None = None
    overlap: int = 0
    # parameters this backend accepts (name -> default), recorded with every render
    defaults: dict[str, Any] = {}
    multiple = 1  # frame sides are rounded down to a multiple of this
    needs_face = False  # wants RenderContext.source_face (Wan-Animate's face video)
    needs_source = False  # is driven by the kept source clip itself (RenderContext.source_video); refused without one
    generates = False  # makes a person's pictures (not the pose drawn): render QA can check them
    pose_style = "openpose"  # how its pose maps are drawn (render.posemap.STYLES): the convention it was trained on

    def __init__(self) -> None:
        self.report: dict[str, Any] = {}  # what the backend wants recorded (device, memory, ...) after a render

    def models(self, params: dict) -> list[ModelSpec]:
        """The models a render with ``params`` needs (ids and revisions, for the record)."""
        return []

    def check(self, params: dict) -> None:
        """Raise InputError before any work when a render cannot start (bad parameter, missing
        weights)."""
        unknown = set(params) - set(self.defaults)
        if unknown:
            from motionlib.core.errors import InputError

            raise InputError(f"backend {self.name!r} takes no parameter {', '.join(sorted(unknown))} "
                             f"(it takes: {', '.join(sorted(self.defaults)) or 'none'})")

    def resolve(self, params: dict) -> dict:
        """The full parameters to record and run with (models found, device chosen); may raise
        InputError. Runs before any work, for every job of a batch."""
        return params

    def face_size(self) -> int:
        """Side of the face crops a ``needs_face`` backend takes."""
        return 512

    def source_margin(self, params: dict) -> float:
        """A ``needs_source`` backend's crop of the source clip: the margin around the performer's
        keypoints, as a share of their box's larger side."""
        return 0.1

    def output_size(self, width: int, height: int, params: dict) -> tuple[int, int]:
        """Video frame size for pose maps of ``width`` x ``height``."""
        return width, height

    def plan(self, frames: int, fps: float) -> list[Chunk]:
        if self.window:
            return plan_chunks(frames, self.window, self.overlap)
        window = max(1, int(round(DEFAULT_CHUNK_SECONDS * max(fps, 1.0))))
        return plan_chunks(frames, window, 0, full_windows=False)

    @abstractmethod
    def render(self, ctx: RenderContext, plan: list[Chunk], progress: Callable[[str, int, int], None]) -> Iterator[np.ndarray]:
        """Yield every frame of the clip in order. ``progress(stage, done, total)`` reports work."""


