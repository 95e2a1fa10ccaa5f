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
    track: dict | None = None,
    full_frame: bool = True,
    first_frame: int = 0,
) -> dict:
    """Write the preview MP4; ``source`` (a video file) draws the skeleton over its frames, whose
    time ``source_offset + t`` matches motion time ``t``, and marks what cleaning did in each frame
    (``track``: the manifest's cleaning report, whose frame numbers count from the version's
    frame ``first_frame``, the first of ``motion``; see ``frame_marks``). Pose maps show the whole
    source frame, or (``full_frame=False``) the performer's travel with a margin, filling the
    picture. Frames are drawn and encoded one at a time. Returns what was written."""
    if source is None:
        w, h = posemap.output_size(motion.width, motion.height, size)
        place = None if full_frame else posemap.Placement.around(motion, w, h)
        frames = posemap.pose_maps(motion, w, h, threshold=threshold, placement=place)
    else:
        marks = frame_marks(track or {}, motion.frames, first_frame)
        w, h, frames = _over_source(motion, Path(source), source_offset, size, threshold, marks)
    write_mp4(out, frames, motion.timestamps, motion.duration, progress=progress)
    return {"path": str(out), "width": w + w % 2, "height": h + h % 2, "frames": motion.frames,
            "duration": round(motion.duration, 6), "over_source": source is not None}


MARK_COLOURS = {"rejected": (235, 60, 60), "jump cut": (230, 80, 230), "swap": (240, 200, 40)}


def frame_marks(track: dict, frames: int, first: int = 0) -> list[list[tuple[str, str]]]:
    """Per frame, (kind, text) for what cleaning did there: a rejected frame (and why), a jump
    cut, left/right swaps repaired (which parts); ``frames`` frames from the version's frame
    ``first``."""
    marks: list[list[tuple[str, str]]] = [[] for _ in range(frames)]
    for r in track.get("rejected", []):
        for t in range(max(0, r["start_frame"] - first), min(frames, r["end_frame"] - first)):
            marks[t].append(("rejected", f"rejected: {r['reason']}"))
    for c in track.get("jump_cuts", []):
        if 0 <= c["frame"] - first < frames:
            marks[c["frame"] - first].append(("jump cut", f"jump cut at {c['time']:.2f} s"))
    parts: list[list[str]] = [[] for _ in range(frames)]
    for s in track.get("swaps", []):
        for t in range(max(0, s["start_frame"] - first), min(frames, s["end_frame"] - first)):
            parts[t].append(s["part"])
    for t, p in enumerate(parts):
        if p:
            marks[t].append(("swap", "left/right repaired: " + ", ".join(sorted(set(p)))))
    return marks


def _mark(image: np.ndarray, marks: list[tuple[str, str]]) -> np.ndarray:
    """A coloured border and one line of text per mark, top left."""
    import cv2

    if not marks:
        return image
    h, w = image.shape[:2]
    scale = max(0.4, min(w, h) / 700)
    border = max(2, int(round(min(w, h) / 150)))
    cv2.rectangle(image, (0, 0), (w - 1, h - 1), MARK_COLOURS[marks[0][0]], border)
    y = border + int(22 * scale)
    for kind, text in marks:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(image, (border, y - th - 4), (border + tw + 8, y + base), (0, 0, 0), -1)
        cv2.putText(image, text, (border + 4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, MARK_COLOURS[kind], 1, cv2.LINE_AA)
        y += th + base + 6
    return image


def _over_source(motion, source: Path, offset: float, size, threshold, marks=None):
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
            image = posemap.draw(op.frame(t), w, h, placement=place, threshold=threshold, canvas=image)
            yield _mark(image, marks[t]) if marks else image

    return w, h, frames()
