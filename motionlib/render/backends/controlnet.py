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
from motionlib.render.backends import speed
from motionlib.render.backends.diffusion import COMMON_DEFAULTS, IMAGE_GIB, DiffusionBackend, check_range, pil


class SDControlBackend(DiffusionBackend):
    """What controlnet and animatediff share: SD 1.5 base, OpenPose ControlNet, IP-Adapter."""

    image_gib = IMAGE_GIB

    def check(self, params: dict) -> None:
        super().check(params)
        p = {**self.defaults, **params}
        check_range(self.name, "strength", p["strength"], 0, 2)
        check_range(self.name, "ip_scale", p["ip_scale"], 0, 2)
        speed.check_speed(self.name, p)

    def resolve(self, params: dict) -> dict:
        out = super().resolve(params)
        self._speed = speed.plan_speed({**self.defaults, **out}, self._runtime.device)
        return out

    def cache_extra(self):
        return self._speed.key()  # the speed paths change the loaded modules: another set, another load

    def place(self, pipe) -> None:
        """On the device, then the speed paths this render asked for (backends/speed.py)."""
        super().place(pipe)
        plan = self._speed
        if plan.channels_last:
            speed.to_channels_last(pipe.unet, pipe.controlnet)
        if plan.fuse_qkv:
            speed.fuse_self_attention(pipe.unet)
            speed.fuse_self_attention(pipe.controlnet)
        if plan.step_cache >= 1:  # 1: the wrapped UNet, every step whole (the same pictures)
            speed.StepCache(pipe.unet, plan.step_cache)
        if plan.compile:
            speed.compile_models(plan, pipe.unet, pipe.controlnet)

    def start_report(self, ctx) -> None:
        super().start_report(ctx)
        self.report["speed"] = self._speed.to_json()

    def warm_up(self, pipe, ctx: RenderContext, batch: int, progress):
        """The one-time compile note (see speed.warm_up_note); returns the marker to set after."""
        what = {"backend": self.name, "size": [ctx.height, ctx.width], "batch": batch,
                "unet": dict(pipe.unet.config), "controlnet": dict(pipe.controlnet.config),
                "guided": float(ctx.params["guidance"]) > 1.0, "dtype": self._runtime.dtype}
        marker = speed.warm_up_note(self._speed, what, progress)
        self.report["speed"] = self._speed.to_json()
        return marker

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
    defaults = {**COMMON_DEFAULTS, "strength": 1.0, "ip_scale": 0.7, "batch": "auto", "channels_last": True,
                **speed.SPEED_DEFAULTS}

    def check(self, params: dict) -> None:
        super().check(params)
        batch = {**self.defaults, **params}["batch"]
        if batch != "auto":
            check_range(self.name, "batch (auto or frames)", batch, 1, 64, integer=True)

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
        fill = self._speed.compile and frames > batch  # one batch shape for the compiled code
        marker = self.warm_up(pipe, ctx, batch if frames > batch else frames, progress)
        cache = speed.step_cache_of(pipe)
        done, pending = 0, None
        for start in range(0, frames, batch):
            stop = min(frames, start + batch)
            n = batch if fill else stop - start
            maps = pose_batch([ctx.pose_map(min(t, stop - 1)) for t in range(start, start + n)], device)
            if cache is not None:
                cache.reset()
            with torch.inference_mode():
                latents = pipe(prompt_embeds=pos.expand(n, -1, -1),
                               negative_prompt_embeds=neg.expand(n, -1, -1) if guided else None,
                               image=maps, ip_adapter_image_embeds=ip, latents=noise.expand(n, -1, -1, -1).clone(),
                               num_inference_steps=int(p["steps"]), guidance_scale=float(p["guidance"]),
                               controlnet_conditioning_scale=float(p["strength"]), height=ctx.height, width=ctx.width,
                               output_type="latent").images
                decoded = decode_frames(pipe.vae, latents[: stop - start])
            if pending is not None:  # the previous batch's frames, copied while this one ran
                for frame in host_frames(pending):
                    done += 1
                    yield frame
                progress("frames", done, frames)
            pending = decoded
        for frame in host_frames(pending):
            done += 1
            yield frame
        progress("frames", done, frames)
        speed.mark_warm(marker)
        if cache is not None:
            self.report["speed"]["deep_runs"] = cache.deep_runs
            cache.reset()


def pose_batch(maps: list[np.ndarray], device):
    """Pose maps (RGB uint8) as the ControlNet pipeline's image input: one N x 3 x H x W float tensor
    in [0, 1] on the device (the values diffusers makes of the same pictures given as PIL images),
    sent from pinned memory without waiting."""
    import torch

    x = torch.from_numpy(np.stack(maps))
    if torch.device(device).type == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float() / 255.0


def decode_frames(vae, latents):
    """Latents -> uint8 frames (N x H x W x 3), decoded and converted on the device, rounded as
    ``to_uint8`` rounds the pipeline's float output. On CUDA the copy to pinned host memory is only
    started; ``host_frames`` waits for it."""
    import torch

    x = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    x = ((x.float() / 2 + 0.5).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
    if x.device.type != "cuda":
        return x.contiguous(), None
    host = torch.empty(x.shape, dtype=torch.uint8, pin_memory=True)
    host.copy_(x, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return host, event


def host_frames(decoded) -> np.ndarray:
    frames, event = decoded
    if event is not None:
        event.synchronize()
    return frames.numpy()
