"""H.264 MP4 writing with PyAV at given timestamps (variable frame rates kept), written aside
and renamed into place (store.files.atomic_path), so an interrupted write never leaves a half
file under the final name; and the check, before any work, that an output can be written."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from motionlib.core.errors import InputError
from motionlib.store.files import atomic_path

TIME_BASE = Fraction(1, 90000)


def check_output(path: Path, *, overwrite: bool = True, suffixes: tuple[str, ...] = (".mp4",)) -> Path:
    """Fail early, before any work, when ``path`` cannot be written."""
    path = Path(path).expanduser()
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: the output must end in {' or '.join(suffixes)}")
    if path.exists() and path.is_dir():
        raise InputError(f"{path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists (use {{overwrite}} to replace it)", params={"overwrite": "overwrite=True"})
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {path}: the directory {parent} is not writable")
    return path


def write_mp4(
    path: Path,
    frames: Iterable[np.ndarray],
    timestamps: np.ndarray,
    duration: float | None = None,
    *,
    crf: int = 18,
    preset: str = "veryfast",
    progress=None,
) -> Path:
    """Encode RGB frames (all one size) as H.264 yuv420p; frame i is shown at ``timestamps[i]``
    seconds. Odd sizes are padded by one black pixel. Returns the final path."""
    import av

    path = Path(path)
    ts = np.asarray(timestamps, np.float64)
    rate = Fraction(len(ts), 1) / Fraction(duration).limit_denominator(1000) if duration else Fraction(30)
    pts = np.round((ts - ts[0]) / float(TIME_BASE)).astype(np.int64)
    written = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = None
            for i, img in enumerate(frames):
                if i >= len(pts):
                    raise ValueError("more frames than timestamps")
                if stream is None:
                    h, w = img.shape[:2]
                    stream = out.add_stream("libx264", rate=max(1, round(float(rate))))
                    stream.width, stream.height = w + (w % 2), h + (h % 2)
                    stream.pix_fmt = "yuv420p"
                    stream.time_base = TIME_BASE
                    stream.codec_context.time_base = TIME_BASE
                    stream.options = {"crf": str(crf), "preset": preset}
                if img.shape[0] % 2 or img.shape[1] % 2:
                    img = np.pad(img, ((0, img.shape[0] % 2), (0, img.shape[1] % 2), (0, 0)))
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                vf.pts = int(pts[i])
                vf.time_base = TIME_BASE
                for packet in stream.encode(vf):
                    out.mux(packet)
                written += 1
                if progress:
                    progress(written)
            if stream is None:
                raise InputError("nothing to encode: no frames")
            for packet in stream.encode():
                out.mux(packet)
    return path
