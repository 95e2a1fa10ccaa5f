"""Pose maps: keypoints drawn as a ControlNet conditioning image in the OpenPose convention.

The convention (what ControlNet's OpenPose models were trained on, as its annotator draws it):

* black background, RGB;
* body: the 17 limbs of ``OPENPOSE_18_LIMBS`` as filled ellipses of half-width ``stick`` in
  ``LIMB_COLOURS[i] x 0.6``, then the 18 joints as filled circles of radius ``stick`` in
  ``LIMB_COLOURS[j]`` (joint j takes colour j);
* hands: the 20 bones as lines of width ``stick / 2`` coloured round the HSV hue circle
  (bone i of 20 has hue i/20), then the 21 points as filled blue circles of radius ``stick``;
* face: the 70 points as white dots of radius ``stick - 1``.

``stick`` is 4 at a 512-pixel short side and scales with the output size (at least 1). Joints whose
confidence is below ``threshold`` are not drawn, nor are limbs touching them. Keypoints are placed
into the output by a :class:`Placement` (default: the whole source frame fitted inside, centred).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from motionlib.core.errors import InputError
from motionlib.core.openpose import LIMB_COLOURS, OpenPoseFrames, to_openpose
from motionlib.core.skeleton import OPENPOSE_18_LIMBS
# OpenPose draws the 20 hand bones in this order (our HAND_21_EDGES also joins the knuckles).
HAND_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
    (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20),
)
HAND_COLOURS: tuple[tuple[int, int, int], ...] = tuple(
    tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(i / len(HAND_BONES), 1.0, 1.0))
    for i in range(len(HAND_BONES))
)
HAND_POINT = (0, 0, 255)
FACE_POINT = (255, 255, 255)
DEFAULT_THRESHOLD = 0.3
MAX_SIDE = 8192


@dataclass(frozen=True)
class Placement:
    """Source pixels -> output pixels: ``out = src * scale + offset``."""

    scale: float
    offset: tuple[float, float]

    @classmethod
    def fit(cls, src_w: int, src_h: int, out_w: int, out_h: int) -> "Placement":
        """The whole source frame inside the output, aspect kept, centred (letterboxed)."""
        s = min(out_w / src_w, out_h / src_h)
        return cls(s, ((out_w - src_w * s) / 2, (out_h - src_h * s) / 2))

    @classmethod
    def around(cls, motion, out_w: int, out_h: int, margin: float = 0.15) -> "Placement":
        """The performer's whole travel (1st-99th percentile of the confident body joints over
        all frames, grown by ``margin`` of its size) inside the output, aspect kept, centred; the
        full frame when nothing is confidently seen."""
        body = list(motion.skeleton.body)
        pts = motion.keypoints[:, body][motion.confidence[:, body] >= DEFAULT_THRESHOLD]
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) < 3:
            return cls.fit(motion.width, motion.height, out_w, out_h)
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
        size = np.maximum(hi - lo, 1.0)
        lo, hi = lo - margin * size, hi + margin * size
        w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
        s = min(out_w / w, out_h / h)
        return cls(s, (out_w / 2 - s * float(lo[0] + hi[0]) / 2, out_h / 2 - s * float(lo[1] + hi[1]) / 2))

    def apply(self, xy: np.ndarray) -> np.ndarray:
        return xy * self.scale + np.asarray(self.offset, np.float32)


def output_size(src_w: int, src_h: int, size: str | int | tuple[int, int] | None, *, default_long: int = 512) -> tuple[int, int]:
    """Resolve ``--size``: ``WxH``, or one number for the long side (aspect kept), even numbers."""
    if size is None or size == "":
        size = default_long
    if isinstance(size, str):
        text = size.lower().strip()
        try:
            if "x" in text:
                w, h = (int(v) for v in text.split("x", 1))
                return _check_size(w, h)
            size = int(text)
        except ValueError:
            raise InputError(f"{{size}} {size!r}: give WIDTHxHEIGHT (e.g. 512x768) or the long side (512)",
                             params=["size"]) from None
    if isinstance(size, tuple):
        return _check_size(*size)
    long_side = int(size)
    s = long_side / max(src_w, src_h)
    w, h = int(round(src_w * s / 2)) * 2, int(round(src_h * s / 2)) * 2
    return _check_size(max(2, w), max(2, h))


def _check_size(w: int, h: int) -> tuple[int, int]:
    if w < 16 or h < 16 or w > MAX_SIDE or h > MAX_SIDE:
        raise InputError(f"output size {w}x{h} must lie between 16 and {MAX_SIDE} pixels a side")
    return w, h


STYLES = ("openpose", "wan")
LEFT_ANKLE, RIGHT_ANKLE = 13, 10  # in OPENPOSE_18_NAMES
TOE_COLOURS = ((200, 200, 0), (100, 100, 0))  # Wan-Animate's left and right foot limbs


def stick_width(width: int, height: int) -> int:
    return max(1, int(round(4 * min(width, height) / 512)))


def draw(
    frame: OpenPoseFrames,
    width: int,
    height: int,
    *,
    placement: Placement | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    hands: bool = True,
    face: bool = True,
    stick: int | None = None,
    canvas: np.ndarray | None = None,
    style: str = "openpose",
) -> np.ndarray:
    """One pose map, [height, width, 3] uint8 RGB, from frame 0 of ``frame``. ``canvas`` (RGB,
    that size) draws over an image instead of black. ``style`` (STYLES): ``openpose`` as
    ControlNet's annotator draws; ``wan`` as Wan-Animate's preprocessing draws its pose video - the
    same body plus a toe on each foot (ankle to big-toe tip) and thin hand lines."""
    import cv2

    if canvas is None:
        canvas = np.zeros((height, width, 3), np.uint8)
    stick = stick or stick_width(width, height)
    place = placement or Placement(1.0, (0.0, 0.0))

    body = place.apply(frame.body[0])
    ok = (frame.body_conf[0] >= threshold) & np.isfinite(body).all(axis=1)
    for i, (a, b) in enumerate(OPENPOSE_18_LIMBS):
        if not (ok[a] and ok[b]):
            continue
        (xa, ya), (xb, yb) = body[a], body[b]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        poly = cv2.ellipse2Poly(
            (int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), stick), int(angle), 0, 360, 1
        )
        cv2.fillConvexPoly(canvas, poly, [int(c * 0.6) for c in LIMB_COLOURS[i]])
    for j in np.flatnonzero(ok):
        x, y = body[j]
        cv2.circle(canvas, (int(x), int(y)), stick, LIMB_COLOURS[j], thickness=-1)
    if style not in STYLES:
        raise ValueError(f"unknown pose-map style {style!r}")
    if style == "wan" and frame.toes is not None:
        toes = place.apply(frame.toes[0])
        tok = (frame.toes_conf[0] >= threshold) & np.isfinite(toes).all(axis=1)
        for side, ankle in ((0, LEFT_ANKLE), (1, RIGHT_ANKLE)):
            if tok[side] and ok[ankle]:
                (xa, ya), (xb, yb) = body[ankle], toes[side]
                length = math.hypot(xa - xb, ya - yb)
                angle = math.degrees(math.atan2(ya - yb, xa - xb))
                poly = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), stick),
                                        int(angle), 0, 360, 1)
                cv2.fillConvexPoly(canvas, poly, [int(c * 0.6) for c in TOE_COLOURS[side]])
                cv2.circle(canvas, _pt(toes[side]), stick, TOE_COLOURS[side], thickness=-1)

    if hands and frame.hands is not None:
        line = max(1, stick // 2) if style == "openpose" else max(1, (max(1, min(width, height) // 200 - 1)) // 2)
        for side in range(2):
            pts = place.apply(frame.hands[0, side])
            hok = (frame.hands_conf[0, side] >= threshold) & np.isfinite(pts).all(axis=1)
            for i, (a, b) in enumerate(HAND_BONES):
                if hok[a] and hok[b]:
                    cv2.line(canvas, _pt(pts[a]), _pt(pts[b]), HAND_COLOURS[i], thickness=line)
            for j in np.flatnonzero(hok):
                cv2.circle(canvas, _pt(pts[j]), stick, HAND_POINT, thickness=-1)
    if face and frame.face is not None:
        pts = place.apply(frame.face[0])
        fok = (frame.face_conf[0] >= threshold) & np.isfinite(pts).all(axis=1)
        for j in np.flatnonzero(fok):
            cv2.circle(canvas, _pt(pts[j]), max(1, stick - 1), FACE_POINT, thickness=-1)
    return canvas


def _pt(xy) -> tuple[int, int]:
    return int(xy[0]), int(xy[1])


def pose_maps(
    motion,
    width: int,
    height: int,
    *,
    placement: Placement | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    hands: bool = True,
    face: bool = True,
):
    """Yield one pose map per frame of ``motion`` at ``width`` x ``height`` (fitted, centred)."""
    op = to_openpose(motion)
    place = placement or Placement.fit(motion.width, motion.height, width, height)
    for t in range(op.frames):
        yield draw(op.frame(t), width, height, placement=place, threshold=threshold, hands=hands, face=face)
