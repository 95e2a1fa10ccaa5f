"""A version written out of the library for people and other tools: preview videos, and
keypoints as OpenPose JSON, NPZ, CSV or pose-map MP4 (docs/exchange.md). Every file is written
aside and renamed into place; every check runs before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from motionlib.core.errors import InputError, SourceUnavailable
from motionlib.core.names import file_stem
from motionlib.library.base import LibraryBase

# progress(frames done, frames in all)
Progress = Callable[[int, int], None]


def _counter(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    return None if progress is None else (lambda done: progress(done, total))


class Exports(LibraryBase):
    def preview(self, ref: str, output: Path | None = None, *, size: str | int | None = None,
                over_source: bool = False, threshold: float = 0.3, progress: Progress | None = None,
                full_frame: bool = False, start: float | None = None, end: float | None = None) -> dict:
        """A video of the version at its true timing: its pose maps (around the performer, with a
        margin; ``full_frame`` shows the whole source frame), or (``over_source``) its skeleton
        over the kept source clip. ``start``/``end`` (seconds): only that part, as ``trim`` would
        keep it, read alone (any length of take). ``output`` defaults to ``NAME-vN-preview.mp4``
        in the working directory. Returns what was written."""
        from motionlib.media.encode import check_output
        from motionlib.render.posemap import output_size
        from motionlib.render.preview import write_preview

        record = self.get(ref)
        out = check_output(output or Path(f"{file_stem(record.ref, 'motion')}-preview.mp4"))
        if not 0 <= threshold <= 1:
            raise InputError("{threshold} must lie in [0, 1]", params=["threshold"])
        output_size(record.width, record.height, size)  # a bad size fails before any work
        source, offset = None, 0.0
        if over_source:
            try:
                source, offset = self.aligned_source(record)
            except SourceUnavailable as err:
                raise InputError(err.template + "; preview it without {over_source}",
                                 params={**err.params, "over_source": "over_source"}) from None
        first, span = 0, None  # the version's frame shown first; the seconds shown
        if start is None and end is None:
            motion = self.load(record.ref)
        else:
            import numpy as np

            from motionlib.processing import ops

            part = self.load(record.ref, span=(start, end))
            edit = ops.trim(part, start, end)
            motion = edit.motion
            offset += edit.span[0]
            span = edit.span
            first = part.attrs["first_frame"] + int(np.searchsorted(part.timestamps, edit.span[0]))
        info = write_preview(motion, out, size=size, source=source, source_offset=offset, threshold=threshold,
                             progress=_counter(progress, motion.frames),
                             track=self.manifest(record).get("track") if over_source else None,
                             full_frame=full_frame, first_frame=first)
        info["ref"] = record.ref
        if span is not None:
            info["span"] = [round(span[0], 6), round(span[1], 6)]
        return info

    def export(self, ref: str, fmt: str, output: Path, *, size: str | int | None = None,
               overwrite: bool = False, progress: Progress | None = None, raw: bool = False,
               threshold: float = 0.3) -> dict:
        """Write a version's keypoints as ``fmt`` (exchange.EXPORT_FORMATS): ``openpose-json`` and
        ``controlnet-aux`` into a new or empty directory, the others into one file (``comfyui``
        a .json, ``bvh`` a .bvh of the 3D world landmarks, which only versions ingested from
        video have). ``raw``: the estimator's track before cleaning, which ingested versions keep
        (docs/fidelity.md). ``threshold``: controlnet-aux and comfyui keep the points seen with at
        least this confidence. Returns what was written."""
        from motionlib import exchange
        from motionlib.media.encode import check_output

        if fmt not in exchange.EXPORT_FORMATS:
            raise InputError(f"{{format}} {fmt!r}: choose one of {', '.join(exchange.EXPORT_FORMATS)}",
                             params=["format"])
        if not 0 <= threshold <= 1:
            raise InputError("{threshold} must lie in [0, 1]", params=["threshold"])
        record = self.get(ref)
        motion = self.load(record.ref, raw=raw)  # a version without a raw track fails here, before any write
        if fmt in exchange.DIRECTORY_FORMATS:
            out = Path(output).expanduser()
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise InputError(f"{out} exists and is not an empty directory")
            check_output(out / "x", suffixes=()) if out.exists() else check_output(out, suffixes=())
        else:
            suffix = {"comfyui": ".json"}.get(fmt, f".{fmt}")
            out = check_output(output, overwrite=overwrite, suffixes=(suffix,))
        if fmt == "mp4":
            from motionlib.render.preview import write_preview

            info = write_preview(motion, out, size=size, progress=_counter(progress, motion.frames))
        else:
            try:
                info = exchange.write(motion, fmt, out, stem=file_stem(record.ref, "motion"),
                                      meta={"ref": record.ref}, threshold=threshold)
            except InputError as err:
                if fmt != "bvh":
                    raise
                raise InputError(f"{record.ref}{' (raw track)' if raw else ''}: {err.template}",
                                 params=err.params) from None
        info.update(ref=record.ref, format=fmt, frames=motion.frames, raw=raw)
        return info

    def sheet(self, ref: str, output: Path | None = None, *, count: int = 8, over_source: bool | None = None,
              threshold: float = 0.3, overwrite: bool = False) -> dict:
        """A contact sheet (PNG) of a version: ``count`` key frames (render/preview.key_frames),
        each with its time, drawn over the kept source clip when the version still sits on it
        (``over_source=None``: when it can; True: required; False: pose maps). ``output``
        defaults to ``NAME-vN-sheet.png`` here. Returns what was written."""
        import cv2

        from motionlib.media.encode import check_output
        from motionlib.render.preview import key_frames, sheet_image
        from motionlib.store.files import atomic_path

        record = self.get(ref)
        out = check_output(Path(output or f"{file_stem(record.ref, 'motion')}-sheet.png"), overwrite=overwrite,
                           suffixes=(".png",))
        if not 1 <= count <= 64:
            raise InputError("{count} must be 1 to 64 frames", params=["count"])
        if not 0 <= threshold <= 1:
            raise InputError("{threshold} must lie in [0, 1]", params=["threshold"])
        source, offset = None, 0.0
        if over_source is not False:
            try:
                source, offset = self.aligned_source(record)
            except SourceUnavailable as err:
                if over_source:
                    raise InputError(err.template + "; draw the sheet without {over_source}",
                                     params={**err.params, "over_source": "over_source"}) from None
        motion = self.load(record.ref)
        frames = key_frames(motion, count)
        image = sheet_image(motion, frames, source=source, source_offset=offset, threshold=threshold,
                            title=f"{record.ref}  {motion.duration:.2f}s  {motion.fps:.1f} fps")
        with atomic_path(out) as tmp:
            ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            Path(tmp).write_bytes(data.tobytes())
        return {"ref": record.ref, "path": str(out), "width": int(image.shape[1]), "height": int(image.shape[0]),
                "frames": frames, "times": [round(float(motion.timestamps[t]), 4) for t in frames],
                "over_source": source is not None}
