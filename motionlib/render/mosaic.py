"""A campaign's renders side by side: motions down, identities across, every cell the render of
that motion onto that identity, so a reviewer sees the whole matrix at once - as one picture (each
render's middle frame) or as one video (all of them playing together).

The video plays on one clock at ``fps``: each cell shows its render's latest frame at that time
(black before its first, its last held after its end), decoded one frame at a time, so memory is
one frame a cell whatever the lengths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

GAP = 4
LABEL = 18  # pixels under each cell for its caption


def grid(cells: dict[tuple[str, str], Path]) -> tuple[list[str], list[str]]:
    """(motions, identities) in the order they are laid out: rows and columns, sorted."""
    return sorted({m for m, _ in cells}), sorted({i for _, i in cells})


def _cell_size(path: Path, tile: int) -> tuple[int, int]:
    from motionlib.media import video

    return video.probe(path).scaled_size(tile)


def _canvas(rows: int, cols: int, cw: int, ch: int) -> np.ndarray:
    return np.full((GAP + rows * (ch + LABEL + GAP), GAP + cols * (cw + GAP), 3), 24, np.uint8)


def _place(canvas: np.ndarray, r: int, c: int, image: np.ndarray | None, caption: str, cw: int, ch: int) -> None:
    import cv2

    y, x = GAP + r * (ch + LABEL + GAP), GAP + c * (cw + GAP)
    if image is not None:
        h, w = image.shape[:2]
        if (w, h) != (cw, ch):  # another render size: fitted inside the cell, aspect kept
            s = min(cw / w, ch / h)
            image = cv2.resize(image, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
            h, w = image.shape[:2]
        oy, ox = (ch - h) // 2, (cw - w) // 2
        canvas[y + oy:y + oy + h, x + ox:x + ox + w] = image
    width = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)[0][0]
    scale = 0.42 * min(1.0, (cw - 6) / max(1, width))
    cv2.putText(canvas, caption, (x + 3, y + ch + LABEL - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (225, 225, 225), 1,
                cv2.LINE_AA)


def still(cells: dict[tuple[str, str], Path], tile: int = 256) -> np.ndarray:
    """The mosaic as one picture: each render's middle frame."""
    from motionlib.media import video

    motions, identities = grid(cells)
    cw, ch = _cell_size(next(iter(cells.values())), tile)
    canvas = _canvas(len(motions), len(identities), cw, ch)
    for (m, i), path in cells.items():
        info = video.probe(path)
        middle = (info.declared_duration or 0.0) / 2
        image = None
        for frame in video.decode(info, max_size=tile, start=middle or None):
            image = frame.image
            break
        _place(canvas, motions.index(m), identities.index(i), image, f"{m} x {i}", cw, ch)
    return canvas


def playing(cells: dict[tuple[str, str], Path], tile: int = 256,
            fps: float = 30.0) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """The mosaic as a video: (timestamps, frames), every render on one clock at ``fps``."""
    from motionlib.media import video

    motions, identities = grid(cells)
    cw, ch = _cell_size(next(iter(cells.values())), tile)
    infos = {k: video.probe(p) for k, p in cells.items()}
    length = max((info.declared_duration or 0.0) for info in infos.values())
    times = np.arange(0.0, max(length, 1.0 / fps), 1.0 / fps)

    def frames() -> Iterator[np.ndarray]:
        streams = {k: video.decode(info, max_size=tile) for k, info in infos.items()}
        shown: dict[tuple[str, str], np.ndarray | None] = {k: None for k in cells}
        pending: dict[tuple[str, str], object] = {k: next(s, None) for k, s in streams.items()}
        try:
            for t in times:
                canvas = _canvas(len(motions), len(identities), cw, ch)
                for k in cells:
                    while pending[k] is not None and pending[k].time <= t + 1e-6:
                        shown[k] = pending[k].image
                        pending[k] = next(streams[k], None)
                    _place(canvas, motions.index(k[0]), identities.index(k[1]), shown[k], f"{k[0]} x {k[1]}", cw, ch)
                yield canvas
        finally:
            for s in streams.values():
                s.close()

    return times, frames()
