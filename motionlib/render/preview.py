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


SHEET_TILE = 256  # long side of a sheet's tile, pixels
SHEET_COLUMNS = 4


def key_frames(motion, count: int) -> list[int]:
    """``count`` frames that show a motion at a glance: the frames that show half the body are cut in
    ``count`` runs of equal length and each gives its stillest frame (a held pose reads best and
    is the least blurred in the source), so the frames spread over the whole performance."""
    body = list(motion.skeleton.body)
    drawn = (motion.confidence[:, body] >= posemap.DEFAULT_THRESHOLD) & np.isfinite(motion.keypoints[:, body]).all(axis=2)
    seen = drawn.mean(axis=1) >= 0.5  # at least half the body would be drawn
    kp = motion.keypoints[:, body].astype(np.float64)
    speed = np.full(motion.frames, np.inf)
    if motion.frames > 1:
        import warnings

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames with no joint seen: no step
            step = np.nanmean(np.linalg.norm(np.diff(kp, axis=0), axis=2), axis=1)
        speed[1:] = np.where(np.isfinite(step), step, np.inf)
        speed[0] = speed[1]
    pool = np.flatnonzero(seen) if seen.any() else np.arange(motion.frames)  # frames that show someone
    bins = np.array_split(pool, max(1, min(count, pool.size)))
    return sorted({int(b[np.argmin(speed[b])]) for b in bins if b.size})


def sheet_image(motion, frames: list[int], *, source: Path | None = None, source_offset: float = 0.0,
                threshold: float = posemap.DEFAULT_THRESHOLD, tile: int = SHEET_TILE,
                columns: int = SHEET_COLUMNS, title: str = "", labels: list[str] | None = None) -> np.ndarray:
    """A contact sheet (RGB) of ``frames``: each tile centred on the performer in that frame, at
    one scale for all (the largest body of them, with a margin, fills a tile), the skeleton over
    the kept source clip's frame when ``source`` is given (dimmed), else on black; each tile
    labelled with its time and frame number, ``title`` above. Only the chosen frames are kept."""
    import cv2

    from motionlib.core.openpose import to_openpose

    op = to_openpose(motion)
    aspect = motion.width / motion.height
    tw, th = (tile, max(2, int(round(tile / aspect)))) if aspect >= 1 else (max(2, int(round(tile * aspect))), tile)
    body = list(motion.skeleton.body)
    centres, extent = {}, 1.0
    for t in frames:
        pts = motion.keypoints[t, body][motion.confidence[t, body] >= threshold]
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) >= 3:
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            centres[t] = (lo + hi) / 2
            extent = max(extent, float((hi[0] - lo[0]) * th / tw), float(hi[1] - lo[1]))
    whole = not centres  # nobody seen: show the whole frame
    scale = min(tw / motion.width, th / motion.height) if whole else th / (1.35 * extent)
    full = np.array([motion.width / 2, motion.height / 2], np.float32)

    def placement(t: int) -> posemap.Placement:
        c = full if whole else centres.get(t, full)
        return posemap.Placement(scale, (tw / 2 - scale * float(c[0]), th / 2 - scale * float(c[1])))

    pictures: dict[int, np.ndarray] = {}
    if source is not None:
        from motionlib.media import video

        info = video.probe(source)
        long_side = min(max(motion.width, motion.height), 1920)
        dw, dh = info.scaled_size(long_side)
        wanted, last = set(frames), max(frames)
        for t, image in enumerate(video.aligned_frames(info, motion.timestamps, motion.duration, source_offset,
                                                       long_side, (dw, dh))):
            if t in wanted:
                p = placement(t)
                k = p.scale * motion.width / dw  # decoded pixels -> tile pixels
                m = np.float32([[k, 0, p.offset[0]], [0, k, p.offset[1]]])
                crop = cv2.warpAffine(image, m, (tw, th), flags=cv2.INTER_AREA, borderValue=(0, 0, 0))
                pictures[t] = (crop.astype(np.uint16) * 3 // 5).astype(np.uint8)  # dimmed: the skeleton reads
            if t >= last:
                break
    tiles = []
    for n, t in enumerate(frames):
        canvas = pictures.get(t)
        image = posemap.draw(op.frame(t), tw, th, placement=placement(t), threshold=threshold, canvas=canvas)
        label = labels[n] if labels else f"{motion.timestamps[t]:.2f}s  #{t}"
        lines = label.split("\n")
        band = th - 16 * len(lines) - 6  # a dark band under the text (a thick outline would drift:
        image[max(0, band):] = (image[max(0, band):].astype(np.uint16) * 2 // 7).astype(np.uint8)  # Hershey widths grow with it)
        for k, line in enumerate(reversed(lines)):  # lines upwards from the bottom
            y = th - 7 - 16 * k
            width = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
            scale = 0.45 * min(1.0, (tw - 10) / max(1, width))  # a long line shrinks to fit its tile
            cv2.putText(image, line, (5, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(image)
    cols = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // cols)
    gap, head = 4, 28 if title else 0
    sheet = np.full((head + rows * th + (rows + 1) * gap, cols * tw + (cols + 1) * gap, 3), 24, np.uint8)
    for k, image in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = head + gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = image
    if title:
        cv2.putText(sheet, title, (gap + 2, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (235, 235, 235), 1, cv2.LINE_AA)
    return sheet
