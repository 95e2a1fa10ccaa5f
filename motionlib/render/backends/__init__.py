"""Render backends, one module each, registered by name and imported only when used."""

from __future__ import annotations

import importlib

from motionlib.core.errors import InputError
from motionlib.render.backends.base import Backend, Chunk, RenderContext, plan_chunks

__all__ = ["Backend", "Chunk", "RenderContext", "plan_chunks", "BACKENDS", "get_backend"]

# name -> "module:Class"
BACKENDS: dict[str, str] = {
    "pose": "motionlib.render.backends.pose:PoseBackend",
    "controlnet": "motionlib.render.backends.controlnet:ControlNetBackend",
    "animatediff": "motionlib.render.backends.animatediff:AnimateDiffBackend",
    "wan-animate": "motionlib.render.backends.wan_animate:WanAnimateBackend",
    "wan-animate-2": "motionlib.render.backends.wan_animate_2:WanAnimate2Backend",
}


def get_backend(name: str) -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise InputError(f"unknown backend {name!r} (backends: {', '.join(sorted(BACKENDS))})") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()
