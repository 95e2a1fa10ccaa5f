"""``animatediff``: diffusers' AnimateDiffControlNetPipeline (SD 1.5 + a motion adapter), the same
OpenPose ControlNet and IP-Adapter as ``controlnet``, for temporally coherent clips.

The motion modules see 16 frames at a time. A longer clip is denoised in windows of 16 frames that
overlap by 4 (the plan recorded with the render), and at every denoising step the windows'
temporal-attention outputs are blended with weights that fall off towards each window's edges
(diffusers' FreeNoise, ``weighting`` = pyramid by default), so there is no seam where windows meet;
the noise of later windows repeats the first window's, shuffled, as FreeNoise does.

Parameters: steps (20), guidance (7.5), strength (1.0), ip_scale (0.7), scheduler (ddim, with the
linear betas AnimateDiff was trained with), weighting (pyramid | flat | delayed_reverse_sawtooth),
decode_chunk (frames per VAE decode, 16), the speed paths compile / compile_mode / fuse_qkv and the
opt-in step_cache (backends/speed.py), and the shared device / dtype / offload / models options.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from motionlib.core.errors import InputError
from motionlib.render.backends import speed
from motionlib.render.backends.base import Chunk, RenderContext
from motionlib.render.backends.controlnet import SDControlBackend
from motionlib.render.backends.diffusion import COMMON_DEFAULTS, check_range, pil, to_uint8

WEIGHTINGS = ("pyramid", "flat", "delayed_reverse_sawtooth")
SPLIT_ABOVE = 32  # frames: above this, FreeNoise's split inference bounds the activations


class AnimateDiffBackend(SDControlBackend):
    name = "animatediff"
    window = 16
    overlap = 4
    multiple = 8
    headroom_gib = 8.0
    defaults = {**COMMON_DEFAULTS, "scheduler": "ddim", "strength": 1.0, "ip_scale": 0.7, "weighting": "pyramid",
                "decode_chunk": 16, **speed.SPEED_DEFAULTS}

    def check(self, params: dict) -> None:
        super().check(params)
        p = {**self.defaults, **params}
        if p["weighting"] not in WEIGHTINGS:
            raise InputError(f"{self.name}: weighting {p['weighting']!r} is not one of {', '.join(WEIGHTINGS)}")
        check_range(self.name, "decode_chunk", p["decode_chunk"], 1, 256, integer=True)

    def load(self):
        from diffusers import AnimateDiffControlNetPipeline, MotionAdapter

        kw = self.load_kwargs()
        adapter = MotionAdapter.from_pretrained(str(self.located("motion_adapter").path), **kw)
        pipe = AnimateDiffControlNetPipeline.from_pretrained(
            str(self.located("base").path), motion_adapter=adapter, **self.shared_components(), **kw)
        self.load_ip_adapter(pipe)
        return pipe

    def configure_windows(self, pipe, frames: int, weighting: str) -> None:
        """FreeNoise windows matching ``plan``: context 16, stride 16 - overlap."""
        if pipe.free_noise_enabled:
            pipe.disable_free_noise()
        if frames > self.window:
            pipe.enable_free_noise(context_length=self.window, context_stride=self.window - self.overlap,
                                   weighting_scheme=weighting)
            if frames > SPLIT_ABOVE:
                pipe.enable_free_noise_split_inference(spatial_split_size=256, temporal_split_size=self.window)

    def render(self, ctx: RenderContext, plan: list[Chunk], progress: Callable[[str, int, int], None]) -> Iterator[np.ndarray]:
        import torch

        p = ctx.params
        pipe = self.pipeline(progress)
        if p["scheduler"] == "ddim":
            self.set_scheduler(pipe, "ddim", beta_schedule="linear", clip_sample=False, timestep_spacing="linspace",
                               steps_offset=1)
        else:
            self.set_scheduler(pipe, p["scheduler"])
        pipe.set_ip_adapter_scale(float(p["ip_scale"]))
        frames = ctx.motion.frames
        self.configure_windows(pipe, frames, p["weighting"])
        steps = int(p["steps"])
        self.start_report(ctx)
        self.report.update(free_noise=bool(pipe.free_noise_enabled), weighting=p["weighting"],
                           windows=[[c.start, c.stop] for c in plan])
        conditioning = [pil(ctx.pose_map(t)) for t in range(frames)]
        marker = self.warm_up(pipe, ctx, frames, progress)
        cache = speed.step_cache_of(pipe)
        if cache is not None:
            cache.reset()
        with torch.inference_mode():
            out = pipe(prompt=ctx.prompt, negative_prompt=ctx.negative_prompt or None, conditioning_frames=conditioning,
                       ip_adapter_image=pil(ctx.identity_image), num_frames=frames, num_inference_steps=steps,
                       guidance_scale=float(p["guidance"]), controlnet_conditioning_scale=float(p["strength"]),
                       generator=self.generator(ctx.seed), height=ctx.height, width=ctx.width, output_type="np",
                       decode_chunk_size=int(p["decode_chunk"]),
                       callback_on_step_end=self.step_callback(progress, steps))
        progress("frames", frames, frames)
        speed.mark_warm(marker)
        if cache is not None:
            self.report["speed"]["deep_runs"] = cache.deep_runs
            cache.reset()
        yield from to_uint8(out.frames[0])
