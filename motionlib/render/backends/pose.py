"""The model-free backend: the retargeted pose maps beside (or over) the identity image.

``layout``: ``side-by-side`` (default: identity image left, pose map right), ``overlay`` (the
skeleton drawn over the identity image, dimmed), or ``posemap`` (the pose maps alone: exactly what
a ControlNet would be given)."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from motionlib.core.errors import InputError
from motionlib.render.backends.base import Backend, Chunk, RenderContext

LAYOUTS = ("side-by-side", "overlay", "posemap")


class PoseBackend(Backend):
    name = "pose"
    window = None
    overlap = 0
    defaults = {"layout": "side-by-side"}

    def check(self, params: dict) -> None:
        super().check(params)
        layout = params.get("layout", self.defaults["layout"])
        if layout not in LAYOUTS:
            raise InputError(f"pose backend: layout {layout!r} is not one of {', '.join(LAYOUTS)}")

    def output_size(self, width: int, height: int, params: dict) -> tuple[int, int]:
        side = params.get("layout", self.defaults["layout"]) == "side-by-side"
        return (2 * width, height) if side else (width, height)

    def render(self, ctx: RenderContext, plan: list[Chunk], progress: Callable[[str, int, int], None]) -> Iterator[np.ndarray]:
        layout = ctx.params.get("layout", self.defaults["layout"])
        still = ctx.identity_image
        dimmed = (still.astype(np.uint16) * 3 // 5).astype(np.uint8)
        done = 0
        total = sum(c.frames - c.overlap_before for c in plan)
        for chunk in plan:
            for t in range(chunk.start + chunk.overlap_before, chunk.stop):
                pose = ctx.pose_map(t)
                if layout == "side-by-side":
                    frame = np.concatenate([still, pose], axis=1)
                elif layout == "overlay":
                    lit = pose.max(axis=2, keepdims=True) > 0
                    frame = np.where(lit, pose, dimmed)
                else:
                    frame = pose
                done += 1
                yield frame
            progress("frames", done, total)
