"""``controlnet``: Stable Diffusion 1.5 + the OpenPose ControlNet, the identity carried by IP-Adapter.

Each frame is generated on its own from the same start: one seed, one initial latent shared by
every frame, the prompt and the identity image encoded once. Frames go through the UNet in
batches (``batch`` frames per call; classifier-free guidance doubles that), which is where the
speed over a per-frame loop comes from (scripts/bench_render.py).

Parameters (``-p KEY=VALUE``): steps (20), guidance (7.5), strength (ControlNet scale, 1.0),
ip_scale (IP-Adapter scale, 0.7), scheduler (unipc), batch (auto: on a GPU the most of 16, 12, 8, 6, 4,
3, 2, 1 the free memory holds, see diffusion.plan_memory; 4 on the CPU),
channels_last (true), and the shared device / dtype / offload / vae_* / allow_cpu / models.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from motionlib.render.backends.base import Chunk, RenderContext
from motionlib.render.backends.diffusion import (
    COMMON_DEFAULTS, IMAGE_GIB, DiffusionBackend, check_range, pil, to_uint8,
)


class SDControlBackend(DiffusionBackend):
    """What controlnet and animatediff share: SD 1.5 base, OpenPose ControlNet, IP-Adapter."""

    image_gib = IMAGE_GIB

    def check(self, params: dict) -> None:
        super().check(params)
        p = {**self.defaults, **params}
        check_range(self.name, "strength", p["strength"], 0, 2)
        check_range(self.name, "ip_scale", p["ip_scale"], 0, 2)

    def shared_components(self) -> dict:
        """The ControlNet and the IP-Adapter's image encoder, loaded from their own folders."""
        from diffusers import ControlNetModel
        from transformers import CLIPVisionModelWithProjection

        kw = self.load_kwargs()
        return {
            "controlnet": ControlNetModel.from_pretrained(str(self.located("controlnet").path), **kw),
            "image_encoder": CLIPVisionModelWithProjection.from_pretrained(
                str(self.located("image_encoder").path), dtype=kw["torch_dtype"], use_safetensors=True,
                local_files_only=True),
        }

    def load_ip_adapter(self, pipe) -> None:
        weights = self.located("ip_adapter").path
        pipe.load_ip_adapter(str(weights.parent), subfolder="", weight_name=weights.name,
                             image_encoder_folder=None, local_files_only=True)


class ControlNetBackend(SDControlBackend):
    name = "controlnet"
    window = None
    overlap = 0
    multiple = 8
    defaults = {**COMMON_DEFAULTS, "strength": 1.0, "ip_scale": 0.7, "batch": "auto", "channels_last": True}

    def check(self, params: dict) -> None:
        super().check(params)
        batch = {**self.defaults, **params}["batch"]
        if batch != "auto":
            check_range(self.name, "batch (auto or frames)", batch, 1, 64, integer=True)

    def cache_extra(self):
        return bool(self._resolved["channels_last"])

    def batch_options(self, params: dict):
        """Frames per call (guidance doubles the images), the most that fits of 16 down to 1; all
        models stay on the GPU if that still allows 4 (else offload for a larger batch)."""
        k = 2 if float(params.get("guidance", 7.5)) > 1.0 else 1
        b = params.get("batch", "auto")
        frames = [16, 12, 8, 6, 4, 3, 2, 1] if b == "auto" else [int(b)]
        return ([f * k for f in frames], min(4, frames[0]) * k, lambda n: n // k,
                lambda n: f"{n // k} frames per call" + (" (x2 for guidance)" if k == 2 else ""))

    def load(self):
        from diffusers import StableDiffusionControlNetPipeline

        pipe = StableDiffusionControlNetPipeline.from_pretrained(
            str(self.located("base").path), **self.shared_components(), safety_checker=None,
            requires_safety_checker=False, **self.load_kwargs())
        self.load_ip_adapter(pipe)
        if self._resolved["channels_last"]:
            import torch

            pipe.unet.to(memory_format=torch.channels_last)
            pipe.controlnet.to(memory_format=torch.channels_last)
        return pipe

    def encode(self, pipe, ctx: RenderContext, guided: bool):
        """Prompt embeddings and IP-Adapter image embeddings, computed once per render."""
        import torch

        device = pipe._execution_device
        with torch.inference_mode():
            pos, neg = pipe.encode_prompt(ctx.prompt, device, 1, guided, ctx.negative_prompt)
            ip = pipe.prepare_ip_adapter_image_embeds(pil(ctx.identity_image), None, device, 1, guided)
        return pos, neg, ip

    def batch_size(self, params: dict) -> int:
        b = params.get("batch", "auto")
        if b != "auto":
            return int(b)
        if self._runtime.batch is not None:  # the memory plan's (images: both guidance halves)
            return max(1, self._runtime.batch // (2 if float(params["guidance"]) > 1.0 else 1))
        return 4 if self._runtime.device == "cpu" else 16

    def render(self, ctx: RenderContext, plan: list[Chunk], progress: Callable[[str, int, int], None]) -> Iterator[np.ndarray]:
        import torch

        p = ctx.params
        self.replan(ctx.width, ctx.height)
        pipe = self.pipeline(progress)
        self.set_scheduler(pipe, p["scheduler"])
        pipe.set_ip_adapter_scale(float(p["ip_scale"]))
        guided = float(p["guidance"]) > 1.0
        pos, neg, ip = self.encode(pipe, ctx, guided)
        device, dtype = pipe._execution_device, pipe.unet.dtype
        f = pipe.vae_scale_factor
        noise = torch.randn((1, pipe.unet.config.in_channels, ctx.height // f, ctx.width // f),
                            generator=self.generator(ctx.seed), dtype=torch.float32).to(device, dtype)
        frames = ctx.motion.frames
        batch = self.batch_size(p)
        self.start_report(ctx)
        self.report.update(batch=batch, guided=guided)
        done = 0
        for start in range(0, frames, batch):
            stop = min(frames, start + batch)
            n = stop - start
            images = [pil(ctx.pose_map(t)) for t in range(start, stop)]
            with torch.inference_mode():
                out = pipe(prompt_embeds=pos.expand(n, -1, -1), negative_prompt_embeds=neg.expand(n, -1, -1) if guided else None,
                           image=images, ip_adapter_image_embeds=ip, latents=noise.expand(n, -1, -1, -1).clone(),
                           num_inference_steps=int(p["steps"]), guidance_scale=float(p["guidance"]),
                           controlnet_conditioning_scale=float(p["strength"]), height=ctx.height, width=ctx.width,
                           output_type="np")
            for frame in to_uint8(out.images):
                done += 1
                yield frame
            progress("frames", done, frames)
