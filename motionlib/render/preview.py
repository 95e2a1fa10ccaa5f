"""Preview videos of a motion: its pose maps, or its skeleton over the kept source clip, encoded
at the motion's own timestamps so that playback shows the movement at its real speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from motionlib.core.errors import InputError
from motionlib.render import posemap
from motionlib.render.encode import write_mp4


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
    from motionlib.ingest import video

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
        for t, image in enumerate(aligned_source_frames(motion, info, offset, long_side, (w, h))):
            # dim the video so the skeleton reads clearly
            image = (image.astype(np.uint16) * 3 // 5).astype(np.uint8)
            yield posemap.draw(op.frame(t), w, h, placement=place, threshold=threshold, canvas=image)

    return w, h, frames()


def aligned_source_frames(motion, info, offset: float, max_size: int | None, size: tuple[int, int]):
    """The source clip's frame shown at each of the motion's timestamps (``offset + t``), as RGB
    arrays of ``size``; black before the first decoded frame, the last one repeated after the end."""
    from motionlib.ingest import video

    w, h = size
    ts = motion.timestamps
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 1.0 / 30
    src = video.decode(info, max_size=max_size, start=max(0.0, offset - step / 2) or None,
                       end=offset + motion.duration + step / 2)
    current = None
    last_image = None
    try:
        for t in range(motion.frames):
            want = offset + ts[t]
            # advance to the source frame shown at time `want`
            while current is None or current.time + 1e-6 < want - step / 2:
                nxt = next(src, None)
                if nxt is None:
                    break
                current = nxt
            image = current.image.copy() if current is not None else np.zeros((h, w, 3), np.uint8)
            if image.shape[:2] != (h, w):
                image = np.zeros((h, w, 3), np.uint8) if last_image is None else last_image.copy()
            last_image = image
            yield image
    finally:
        src.close()
