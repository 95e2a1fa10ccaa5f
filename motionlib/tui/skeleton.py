"""A skeleton drawn with braille characters: each terminal cell holds 2 x 4 dots."""

from __future__ import annotations

import numpy as np

# dot (dx, dy) inside a cell -> bit of U+2800
_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], np.uint16)  # [dy][dx]


class BrailleCanvas:
    def __init__(self, cols: int, rows: int):
        self.cols, self.rows = max(1, cols), max(1, rows)
        self.w, self.h = self.cols * 2, self.rows * 4
        self.bits = np.zeros((self.rows, self.cols), np.uint16)
        self.colour: list[list[str | None]] = [[None] * self.cols for _ in range(self.rows)]

    def dot(self, x: int, y: int, colour: str | None = None) -> None:
        if 0 <= x < self.w and 0 <= y < self.h:
            r, c = y // 4, x // 2
            self.bits[r, c] |= _BITS[y % 4, x % 2]
            if colour:
                self.colour[r][c] = colour

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: str | None = None) -> None:
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for t in np.linspace(0.0, 1.0, n + 1):
            self.dot(int(round(x0 + (x1 - x0) * t)), int(round(y0 + (y1 - y0) * t)), colour)

    def lines(self) -> list[list[tuple[str, str | None]]]:
        """Rows of (character, colour) cells."""
        return [[(chr(0x2800 + int(self.bits[r, c])), self.colour[r][c]) for c in range(self.cols)]
                for r in range(self.rows)]


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class SkeletonFrames:
    """Everything needed to draw any frame of a motion quickly: OpenPose body points placed into
    a box the size of the performer. When the whole clip fits in about that box the box stays put
    (small moves show as moves); when the performer travels far, the box follows them, so the
    figure stays large enough to read."""

    def __init__(self, motion, threshold: float = 0.3):
        from motionlib.core.openpose import LIMB_COLOURS, to_openpose

        op = to_openpose(motion)
        self.body = op.body
        self.ok = (op.body_conf >= threshold) & np.isfinite(op.body).all(axis=2)
        self.timestamps = motion.timestamps
        self.duration = motion.duration
        self.frames = motion.frames
        T = self.frames
        pts = self.body[self.ok]
        if pts.size:
            lo, hi = pts.min(axis=0), pts.max(axis=0)
        else:
            lo, hi = np.zeros(2, np.float32), np.array([motion.width, motion.height], np.float32)
        extents = []
        centre = np.full((T, 2), np.nan, np.float32)
        for t in range(T):
            p = self.body[t][self.ok[t]]
            if len(p) >= 2:
                extents.append(p.max(axis=0) - p.min(axis=0))
                centre[t] = (p.max(axis=0) + p.min(axis=0)) / 2
        # the performer's usual size (90th percentile: a few odd frames do not shrink everyone)
        extent = np.percentile(np.array(extents), 90, axis=0) if extents else (hi - lo)
        size = np.maximum(extent * 1.2, 1.0)
        self.lo = np.repeat(lo[None], T, axis=0)
        self.hi = np.repeat(hi[None], T, axis=0)
        if ((hi - lo) > 1.5 * size).any() and np.isfinite(centre).any():
            known = np.flatnonzero(np.isfinite(centre).all(axis=1))
            ts = np.arange(T)
            c = np.stack([np.interp(ts, known, centre[known, k]) for k in range(2)], axis=1)
            k = 5  # a little smoothing so the box does not shake with the limbs
            c = np.stack([np.convolve(np.pad(c[:, i], k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), "valid")
                          for i in range(2)], axis=1)
            self.lo, self.hi = c - size / 2, c + size / 2
        pad = 0.05 * float(size.max())
        self.lo, self.hi = self.lo - pad, self.hi + pad
        self.colours = [_hex(c) for c in LIMB_COLOURS]

    def frame_at(self, seconds: float) -> int:
        """The frame shown at ``seconds`` into the motion."""
        return int(max(0, min(self.frames - 1, np.searchsorted(self.timestamps, seconds, side="right") - 1)))

    def render(self, t: int, cols: int, rows: int) -> list[list[tuple[str, str | None]]]:
        from motionlib.core.skeleton import OPENPOSE_18_LIMBS

        canvas = BrailleCanvas(cols, rows)
        lo, hi = self.lo[t], self.hi[t]
        span = np.maximum(hi - lo, 1e-6)
        scale = min((canvas.w - 1) / span[0], (canvas.h - 1) / span[1])
        off = (np.array([canvas.w - 1, canvas.h - 1]) - span * scale) / 2
        p = (self.body[t] - lo) * scale + off
        ok = self.ok[t]
        for i, (a, b) in enumerate(OPENPOSE_18_LIMBS):
            if ok[a] and ok[b]:
                canvas.line(p[a, 0], p[a, 1], p[b, 0], p[b, 1], self.colours[i])
        return canvas.lines()
