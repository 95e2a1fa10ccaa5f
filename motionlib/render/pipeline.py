"""What a render computes, from a stored motion and an identity picture to the frames of a clip:
the job and its checks, the picture size, the backend's context (pose maps of the retargeted
motion, the identity still, the face video), and the warnings a result deserves.

Nothing here reads or writes the library: ``motionlib.library`` resolves the motion and identity,
keeps the retarget cache, records the render, places and hashes the video (``Library.render``).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from motionlib.core.errors import InputError

if TYPE_CHECKING:
    from motionlib.core.motion import Motion
    from motionlib.render.backends import Backend, RenderContext
    from motionlib.render.retarget import IdentityBody

DEFAULT_LONG_SIDE = 512


@dataclass
class RenderJob:
    """One render asked for: what to render, onto whom, how (the record keeps all of it)."""

    motion: str
    identity: str
    backend: str = "pose"
    output: str | None = None
    size: str | None = None  # long side or WxH of the picture (identity frame), default 512
    retarget: str = "bones"
    anchor_frame: int | None = None  # the motion frame fitted onto the identity (default: the first showing the torso)
    seed: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    threshold: float = 0.3
    params: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Settings:
    """A job's checked settings: its backend (resolved), parameters, picture size and seed."""

    backend: "Backend"
    params: dict
    width: int  # pose-map size (identity frame, scaled)
    height: int
    seed: int


def check(job: RenderJob, identity_width: int, identity_height: int) -> Settings:
    """Every check of a job's settings that can fail, before any work (models are located, not
    loaded); an unseeded job gets its seed here."""
    from motionlib.render.backends import get_backend
    from motionlib.render.posemap import output_size
    from motionlib.render.retarget import METHODS

    backend = get_backend(job.backend)
    backend.check(job.params)
    params = backend.resolve({**backend.defaults, **job.params})
    if job.retarget not in METHODS:
        raise InputError(f"{{retarget}} {job.retarget!r}: choose {' or '.join(METHODS)}", params=["retarget"])
    if job.anchor_frame is not None and (not isinstance(job.anchor_frame, int) or job.anchor_frame < 0):
        raise InputError("{anchor_frame} must be a frame number >= 0", params=["anchor_frame"])
    if not 0 <= job.threshold <= 1:
        raise InputError("{threshold} must lie in [0, 1]", params=["threshold"])
    if job.seed is not None and not (0 <= int(job.seed) < 2**63):
        raise InputError("{seed} must be a non-negative integer below 2^63", params=["seed"])
    w, h = output_size(identity_width, identity_height, job.size, default_long=DEFAULT_LONG_SIDE)
    m = backend.multiple
    w, h = w // m * m, h // m * m
    if min(w, h) < max(16, m):
        raise InputError(f"{{size}} gives {w}x{h}: too small for backend {job.backend!r}", params=["size"])
    seed = int(job.seed) if job.seed is not None else secrets.randbelow(2**31)
    return Settings(backend, params, w, h, seed)


def context(job: RenderJob, settings: Settings, retargeted: "Motion", image: np.ndarray,
            identity_width: int, identity_height: int) -> "RenderContext":
    """What the backend renders from: the identity still and pose maps of the retargeted motion,
    both at the picture size."""
    import cv2

    from motionlib.core.openpose import to_openpose
    from motionlib.render import posemap
    from motionlib.render.backends import RenderContext

    w, h = settings.width, settings.height
    place = posemap.Placement.fit(identity_width, identity_height, w, h)
    op = to_openpose(retargeted)

    def pose_map(i: int) -> np.ndarray:
        return posemap.draw(op.frame(i), w, h, placement=place, threshold=job.threshold,
                            style=settings.backend.pose_style)

    still = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return RenderContext(still, pose_map, retargeted, w, h, settings.seed, job.prompt, job.negative_prompt,
                         settings.params)


def face_video(backend: "Backend", motion: "Motion", source: tuple[Path, float] | None, image: np.ndarray,
               body: "IdentityBody", what: str) -> tuple[Callable[[int], np.ndarray], str]:
    """Face crops for each frame: from the kept source clip (``source``: path and time offset)
    when the version still sits on it and shows a face, else the identity's own face held still.
    Returns (frame -> crop, where they came from); ``what`` names the job in the error."""
    from motionlib.render import face

    size = backend.face_size()
    crops = None if source is None else face.source_faces(motion, *source, size)
    if crops is not None:
        return (lambda i: crops[i]), "source"
    still = face.identity_face(image, body, size)
    if still is None:
        raise InputError(f"backend {backend.name!r} needs a face: {what}")
    return (lambda i: still), "identity"


def driving_video(motion: "Motion", source: tuple[Path, float], width: int, height: int, margin: float,
                  threshold: float) -> tuple[Callable[[np.ndarray], Iterator[np.ndarray]], dict]:
    """The kept source clip (``source``: path and time offset) as a ``needs_source`` backend takes
    it: motion times -> the frames shown then, cropped to one box around the performer (the
    ``motion``, in the clip's pixels) at the output's ``width`` x ``height``. Returns that and what
    the record keeps of it (the box in source pixels)."""
    from motionlib.render import driving

    path, offset = source
    box = driving.performer_box(motion.keypoints, motion.confidence, motion.width, motion.height,
                                width / height, margin, threshold)

    def frames(times: np.ndarray) -> Iterator[np.ndarray]:
        return driving.source_crops(path, offset, motion.width, motion.height, motion.duration, times, box,
                                    (width, height))

    return frames, {"box": [round(float(v), 1) for v in box], "source_size": [motion.width, motion.height],
                    "offset": round(offset, 6), "margin": margin}


def video_size(settings: Settings) -> list[int]:
    """The encoded frame size (odd sides padded by one pixel)."""
    vw, vh = settings.backend.output_size(settings.width, settings.height, settings.params)
    return [vw + vw % 2, vh + vh % 2]
