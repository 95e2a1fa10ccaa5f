"""Preview videos of a motion: its pose maps, or its skeleton over the kept source clip, encoded
at the motion's own timestamps so that playback shows the movement at its real speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from motionlib.core.errors import InputError
from motionlib.media.encode import write_mp4
from motionlib.render import posemap


def write_preview(
    motion,
    out: Path,
    *,
    size: str | int | None = None,
    source: Path | None = None,
    source_offset: float = 0.0,
    threshold: float = posemap.DEFAULT_THRESHOLD,
    progress=None,
) -> dict:
    """Write the preview MP4; ``source`` (a video file) draws the skeleton over its frames, whose
    time ``source_offset + t`` matches motion time ``t``. Returns what was written."""
    if source is None:
        w, h = posemap.output_size(motion.width, motion.height, size)
        frames = posemap.pose_maps(motion, w, h, threshold=threshold)
    else:
        w, h, frames = _over_source(motion, Path(source), source_offset, size, threshold)
    write_mp4(out, frames, motion.timestamps, motion.duration, progress=progress)
    return {"path": str(out), "width": w + w % 2, "height": h + h % 2, "frames": motion.frames,
            "duration": round(motion.duration, 6), "over_source": source is not None}


def _over_source(motion, source: Path, offset: float, size, threshold):
    from motionlib.core.openpose import to_openpose
    from motionlib.media import video

    info = video.probe(source)
    if (info.width, info.height) != (motion.width, motion.height):
        raise InputError(
            f"the kept source is {info.width}x{info.height} but the motion was made at "
            f"{motion.width}x{motion.height}; cannot draw over it"
        )
    long_side = max(posemap.output_size(motion.width, motion.height, size))
    w, h = info.scaled_size(long_side)
    place = posemap.Placement(w / motion.width, (0.0, 0.0))
    op = to_openpose(motion)

    def frames():
        for t, image in enumerate(video.aligned_frames(info, motion.timestamps, motion.duration, offset,
                                                       long_side, (w, h))):
            # dim the video so the skeleton reads clearly
            image = (image.astype(np.uint16) * 3 // 5).astype(np.uint8)
            yield posemap.draw(op.frame(t), w, h, placement=place, threshold=threshold, canvas=image)

    return w, h, frames()
