"""The driving video of a backend driven by the footage itself (Wan-Animate-2): the kept source
clip over the motion's time span, cropped to the performer and sampled at the model's frame rate.

* The crop is one box for the whole clip (a moving crop would add camera motion the performer never
  made): around every keypoint the motion shows with confidence, widened by ``margin`` x the body's
  larger side on each side, then to the output's aspect ratio, and moved inside the frame where it
  fits (where it does not, the rest is black).
* Frames are sampled at ``fps`` on the motion's own clock (source time = offset + motion time), each
  the source frame shown at that time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np

from motionlib.core.errors import InputError

MODEL_FPS = 24  # Wan-Animate-2 generates (and expects its driving video) at 24 frames per second
DECODE_SIDE = 1280  # source frames are decoded at least this large (long side), more when the crop needs it


def model_frames(duration: float, fps: float = MODEL_FPS) -> int:
    """Frames at ``fps`` covering ``duration`` seconds (the last one starting before its end)."""
    return max(1, math.ceil(duration * fps - 1e-6))


def model_times(start: float, duration: float, fps: float = MODEL_FPS) -> np.ndarray:
    """The motion times (s) of the frames at ``fps`` from ``start`` over ``duration``."""
    return start + np.arange(model_frames(duration, fps)) / fps


def nearest_model_frames(timestamps: np.ndarray, fps: float = MODEL_FPS, count: int | None = None) -> np.ndarray:
    """For each motion timestamp, the frame at ``fps`` (from the first timestamp) nearest to it."""
    ts = np.asarray(timestamps, np.float64)
    k = np.rint((ts - ts[0]) * fps).astype(np.int64)
    return np.clip(k, 0, (count if count is not None else int(k.max()) + 1) - 1)


def performer_box(keypoints: np.ndarray, confidence: np.ndarray, width: int, height: int, aspect: float,
                  margin: float, threshold: float = 0.3) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in the motion's pixels: one box around all the motion's confident
    keypoints, widened by ``margin`` x its larger side on every side, grown to ``aspect`` (width /
    height) about its centre, then moved inside the ``width`` x ``height`` frame as far as it fits."""
    xy = np.asarray(keypoints, np.float64)[..., :2]
    ok = (np.asarray(confidence) >= threshold) & np.isfinite(xy).all(axis=-1)
    if not ok.any():
        raise InputError(f"the motion shows no keypoint with confidence >= {threshold:g} to crop its source clip around")
    pts = xy[ok]
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    pad = margin * max(x1 - x0, y1 - y0, 1.0)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    bw, bh = x1 - x0, y1 - y0
    if bw / bh < aspect:
        bw = bh * aspect
    else:
        bh = bw / aspect
    left, top = (x0 + x1 - bw) / 2, (y0 + y1 - bh) / 2
    # inside the frame where the box fits; covering the frame (bars split) where it does not
    left = float(np.clip(left, *sorted((0.0, width - bw))))
    top = float(np.clip(top, *sorted((0.0, height - bh))))
    return left, top, left + bw, top + bh


def crop(image: np.ndarray, box, scale: float, size: tuple[int, int]) -> np.ndarray:
    """``box`` (x0, y0, x1, y1 in the motion's pixels) cut out of ``image`` (a source frame decoded
    at ``scale`` x the motion's pixels) and resized to ``size`` (w, h); black outside the image."""
    import cv2

    w, h = size
    x0, y0, x1, y1 = (float(v) * scale for v in box)
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    m = np.array([[sx, 0, -sx * x0], [0, sy, -sy * y0]], np.float32)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_AREA if max(sx, sy) < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def decode_side(source_size: tuple[int, int], box, size: tuple[int, int]) -> int:
    """Long side to decode the source at: ``DECODE_SIDE``, more where the crop needs it to reach the
    output size, never more than the source's own."""
    long = max(source_size)
    need = max(size[0] / (box[2] - box[0]), size[1] / (box[3] - box[1]))  # output pixels per source pixel
    return int(min(long, max(DECODE_SIDE, math.ceil(long * need))))


def source_crops(source: Path, offset: float, motion_width: int, motion_height: int, duration: float,
                 times: np.ndarray, box, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The kept source clip's frame shown at each motion time in ``times`` (source time = offset +
    motion time), cropped to ``box`` (motion pixels) at ``size`` (w, h)."""
    from motionlib.media import video

    info = video.probe(source)
    if (info.width, info.height) != (motion_width, motion_height):
        raise InputError(f"the kept source clip is {info.width}x{info.height}, but the motion's frames are "
                         f"{motion_width}x{motion_height}: its keypoints do not sit on it")
    sw, sh = info.scaled_size(decode_side((info.width, info.height), box, size))
    scale = sw / motion_width
    for frame in video.aligned_frames(info, np.asarray(times, np.float64), duration, offset, max(sw, sh), (sw, sh)):
        yield crop(frame, box, scale, size)


def pad_to_segments(n: int, segment: int, prev: int) -> list[int]:
    """Frame indices filling ``n`` frames out to whole segments (``segment`` frames, each after the
    first adding ``segment - prev``): 0..n-1, then back and forth over the clip (the last frame
    repeated, as diffusers' Wan-Animate-2 pads: [0 1 2 3 4 | 4 3 2]), as often as a short clip needs."""
    step = segment - prev
    total = segment if n <= segment else segment + math.ceil((n - segment) / step) * step
    period = 2 * n
    return [i if i < n else (i % period if i % period < n else period - 1 - i % period) for i in range(total)]


def segments(n: int, segment: int, prev: int) -> list[tuple[int, int]]:
    """[start, stop) of each segment over ``n`` frames as the pipeline runs them (the last one
    cut at ``n``)."""
    step = segment - prev
    count = 1 if n <= segment else 1 + math.ceil((n - segment) / step)
    return [(k * step, min(n, k * step + segment)) for k in range(count)]
