"""``animatediff``: SD 1.5 + a motion adapter (diffusers' AnimateDiffControlNetPipeline's models), the
same OpenPose ControlNet and IP-Adapter as ``controlnet``, for temporally coherent clips.

The motion modules see 16 frames at a time. A clip is denoised in the windows of the plan recorded
with the render (16 frames, neighbours overlapping by 4, the last window ending on the last frame):
at every denoising step the ControlNet and the UNet run on each window alone, and the windows'
noise predictions are blended where they overlap, with weights that fall off towards each window's
edges (``weighting`` = pyramid by default, FreeNoise's schemes), before one scheduler step over the
whole clip. So no model ever sees more than one window: the GPU memory a render needs does not grow
with its length (only the latents do, 4 x 64 x 64 values a frame), and the frames are decoded and
handed on ``decode_chunk`` at a time. The starting noise is FreeNoise's: later windows repeat the
first window's noise, shuffled, so neighbouring windows start alike.

(diffusers' own long-video path, FreeNoise with ``enable_free_noise_split_inference``, is not used:
its SplitInferenceModule splits only tensor arguments, and with an IP-Adapter the UNet passes the
spatial attentions a tuple (text, [image]) as encoder_hidden_states, which stays whole while the
hidden states are split: ``shape '[2F, -1, heads, dim]' is invalid`` above 32 frames. And even
working it only cuts the peaks inside blocks; every block's output for all frames stays on the GPU.)

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
from motionlib.render.backends.diffusion import ANIMATEDIFF_IMAGE_GIB, COMMON_DEFAULTS, check_range, pil, to_uint8

WEIGHTINGS = ("pyramid", "flat", "delayed_reverse_sawtooth")


def window_weights(n: int, scheme: str) -> list[float]:
    """A window's per-frame blending weights (FreeNoise's schemes, as diffusers writes them)."""
    if scheme == "flat":
        return [1.0] * n
    mid = (n + 1) // 2
    if scheme == "pyramid":  # 4 -> 1 2 2 1, 5 -> 1 2 3 2 1
        up = list(range(1, n // 2 + 1)) if n % 2 == 0 else list(range(1, mid))
        return [float(w) for w in (up + up[::-1] if n % 2 == 0 else up + [mid] + up[::-1])]
    if scheme == "delayed_reverse_sawtooth":  # 4 -> .01 2 2 1, 5 -> .01 .01 .01 3 2 1 (cut to n)
        head = [0.01] * (n // 2 - 1) + [n // 2] if n % 2 == 0 else [0.01] * mid
        return [float(w) for w in (head + list(range(n // 2 if n % 2 == 0 else mid, 0, -1)))][:n]
    raise ValueError(scheme)


def shuffled_noise(shape: tuple, frames: int, window: int, stride: int, generator):
    """FreeNoise's start (diffusers' ``shuffle_context``): every ``stride`` frames after the first
    window repeat the frames a window earlier, in a shuffled order."""
    import torch

    latents = torch.randn(shape, generator=generator, dtype=torch.float32)
    for i in range(window, frames, stride):
        start = max(0, i - window)
        stop = min(frames, start + stride)
        if stop == start:
            break
        idx = torch.arange(start, stop)[torch.randperm(stop - start, generator=generator)]
        n = min(frames, i + len(idx)) - i
        latents[:, :, i:i + n] = latents[:, :, idx[:n]]
    return latents


class AnimateDiffBackend(SDControlBackend):
    name = "animatediff"
    window = 16
    overlap = 4
    multiple = 8
    headroom_gib = 8.0
    image_gib = ANIMATEDIFF_IMAGE_GIB
    defaults = {**COMMON_DEFAULTS, "scheduler": "ddim", "strength": 1.0, "ip_scale": 0.7, "weighting": "pyramid",
                "decode_chunk": 16, **speed.SPEED_DEFAULTS}

    def check(self, params: dict) -> None:
        super().check(params)
        p = {**self.defaults, **params}
        if p["weighting"] not in WEIGHTINGS:
            raise InputError(f"{self.name}: weighting {p['weighting']!r} is not one of {', '.join(WEIGHTINGS)}")
        check_range(self.name, "decode_chunk", p["decode_chunk"], 1, 256, integer=True)

    def largest_params(self, per_role):
        # under model offload the UNet runs with its motion modules: one model of both
        base_largest = per_role.get("base", (0, 0))[1]
        return max(super().largest_params(per_role), base_largest + per_role.get("motion_adapter", (0, 0))[0])

    def batch_options(self, params: dict):
        """One window per call, its two guidance halves together (32 images) or, where that does
        not fit, one after the other (16): the motion modules need the window's frames together."""
        k = 2 if float(params.get("guidance", 7.5)) > 1.0 else 1
        decode = int(params.get("decode_chunk", 16))
        words = {2 * self.window: f"a {self.window}-frame window per call with both guidance halves",
                 self.window: f"a {self.window}-frame window per call" + (", guidance halves one after the other"
                                                                          if k == 2 else "")}
        return [self.window * k, self.window][: k], self.window, lambda n: decode, lambda n: words[n]

    def load(self):
        from diffusers import AnimateDiffControlNetPipeline, MotionAdapter

        kw = self.load_kwargs()
        adapter = MotionAdapter.from_pretrained(str(self.located("motion_adapter").path), **kw)
        pipe = AnimateDiffControlNetPipeline.from_pretrained(
            str(self.located("base").path), motion_adapter=adapter, **self.shared_components(), **kw)
        self.load_ip_adapter(pipe)
        return pipe

    def render(self, ctx: RenderContext, plan: list[Chunk], progress: Callable[[str, int, int], None]) -> Iterator[np.ndarray]:
        import torch

        p = ctx.params
        rt = self.replan(ctx.width, ctx.height)
        pipe = self.pipeline(progress)
        if pipe.free_noise_enabled:  # (a pipeline cached by an older motionlib)
            pipe.disable_free_noise()
        if p["scheduler"] == "ddim":
            self.set_scheduler(pipe, "ddim", beta_schedule="linear", clip_sample=False, timestep_spacing="linspace",
                               steps_offset=1)
        else:
            self.set_scheduler(pipe, p["scheduler"])
        pipe.set_ip_adapter_scale(float(p["ip_scale"]))
        frames, steps, scale = ctx.motion.frames, int(p["steps"]), float(p["guidance"])
        guided = scale > 1.0
        together = not guided or rt.batch is None or rt.batch >= 2 * self.window
        windows = [(c.start, c.stop) for c in plan]
        # (one window: nothing to blend, its prediction is taken as it is)
        scheme = p["weighting"] if len(windows) > 1 else "flat"
        weights = {n: torch.tensor(window_weights(n, scheme)) for n in {b - a for a, b in windows}}
        self.start_report(ctx)
        self.report.update(weighting=p["weighting"], windows=[list(w) for w in windows], overlap=self.overlap,
                           window_frames=self.window, split_inference=False, guidance_halves_together=together,
                           windowing=("one window: the whole clip at once" if len(windows) == 1 else
                                      f"{len(windows)} windows of up to {self.window} frames overlapping by "
                                      f">= {self.overlap}, each through the models alone at every step, their noise "
                                      f"predictions blended ({p['weighting']})"))
        marker = self.warm_up(pipe, ctx, self.window, progress)
        cache = speed.step_cache_of(pipe)
        if cache is not None:
            cache.reset()
        device, dtype = pipe._execution_device, pipe.unet.dtype
        with torch.inference_mode():
            pos, neg = pipe.encode_prompt(ctx.prompt, device, 1, guided, ctx.negative_prompt or None)
            text = torch.cat([neg, pos]) if guided else pos
            image = pipe.prepare_ip_adapter_image_embeds(pil(ctx.identity_image), None, device, 1, guided)
            # the pose maps, drawn once and kept as bytes on the CPU (3 x H x W a frame)
            maps = torch.from_numpy(np.stack([ctx.pose_map(t) for t in range(frames)])).permute(0, 3, 1, 2)
            f = pipe.vae_scale_factor
            shape = (1, pipe.unet.config.in_channels, frames, ctx.height // f, ctx.width // f)
            latents = shuffled_noise(shape, frames, self.window, self.window - self.overlap, self.generator(ctx.seed))
            pipe.scheduler.set_timesteps(steps, device=device)
            latents = (latents * pipe.scheduler.init_noise_sigma).to(device, dtype)
            extra = pipe.prepare_extra_step_kwargs(self.generator(ctx.seed), 0.0)
            calls = [0] * len(windows)
            for i, t in enumerate(pipe.scheduler.timesteps):
                noise = torch.zeros(latents.shape, dtype=torch.float32, device=device)
                total = torch.zeros(frames, dtype=torch.float32, device=device)
                for w, (a, b) in enumerate(windows):
                    cond = maps[a:b].to(device=device, dtype=pipe.controlnet.dtype) / 255.0
                    halves = [text] if together else list(text.chunk(2))
                    ips = [image] if together else [[e.chunk(2)[h] for e in image] for h in range(2)]
                    preds = []
                    for h, (txt, ip) in enumerate(zip(halves, ips)):
                        if cache is not None:  # each window (and half) keeps its own deep features
                            cache.step(i, (w, h))
                        preds.append(self._denoise(pipe, latents[:, :, a:b], t, txt, ip, cond, float(p["strength"])))
                        calls[w] += 1
                    pred = torch.cat(preds)
                    if guided:
                        uncond, cond_pred = pred.chunk(2)
                        pred = uncond + scale * (cond_pred - uncond)
                    wt = weights[b - a].to(device)
                    noise[:, :, a:b] += pred.float() * wt[None, None, :, None, None]
                    total[a:b] += wt
                if len(windows) > 1:
                    noise /= total[None, None, :, None, None]
                latents = pipe.scheduler.step(noise.to(dtype), t, latents, **extra).prev_sample
                progress("steps", i + 1, steps)
            self.report.update(windows_run=[[a, b, n] for (a, b), n in zip(windows, calls)])
            chunk = int(p["decode_chunk"])
            for a in range(0, frames, chunk):
                video = pipe.decode_latents(latents[:, :, a:a + chunk], chunk)
                out = pipe.video_processor.postprocess_video(video=video, output_type="np")
                yield from to_uint8(out[0])
                progress("frames", min(frames, a + chunk), frames)
        pipe.maybe_free_model_hooks()
        speed.mark_warm(marker)
        if cache is not None:
            self.report["speed"]["deep_runs"] = cache.deep_runs
            cache.reset()

    @staticmethod
    def _denoise(pipe, latents, t, text, image_embeds, cond, strength: float):
        """One window (1 x C x n x h x w latents) through the ControlNet and the UNet for the
        guidance halves in ``text`` (each a 1 x 77 x D row): the noise predicted, halves x C x n x h x w."""
        import torch

        halves, n = text.shape[0], latents.shape[2]
        x = pipe.scheduler.scale_model_input(torch.cat([latents] * halves), t)
        per_frame = text.repeat_interleave(n, dim=0)
        down, mid = pipe.controlnet(x.transpose(1, 2).reshape(-1, *x.shape[1:2], *x.shape[3:]), t,
                                    encoder_hidden_states=per_frame, controlnet_cond=torch.cat([cond] * halves),
                                    conditioning_scale=strength, guess_mode=False, return_dict=False)
        return pipe.unet(x, t, encoder_hidden_states=per_frame, added_cond_kwargs={"image_embeds": image_embeds},
                         down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
