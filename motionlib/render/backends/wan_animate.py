"""``wan-animate``: diffusers' WanAnimatePipeline (Wan2.2-Animate) in animation mode.

Inputs: the identity picture as the reference, the retargeted pose maps as the pose video, and a
face video: crops of the performer's face from the kept source clip, frame by frame, when the
version still sits on it, else the identity's own face held still (the record says which). Long
clips go through the pipeline's segments of ``segment`` frames (77), each conditioned on the last
``prev_frames`` (1 or 5) generated frames of the previous one.

Parameters: steps (20), guidance (1.0: Wan-Animate runs without classifier-free guidance),
segment (77; 4N+1), prev_frames (1), scheduler (default: the checkpoint's), and the shared device /
dtype (bf16 on a GPU) / offload / models options. Frame sides are multiples of 16.
"""

from __future__ import annotations

import json
from typing import Callable, Iterator

import numpy as np

from motionlib.core.errors import InputError
from motionlib.render.backends.base import Chunk, RenderContext, plan_chunks
from motionlib.render.backends.diffusion import COMMON_DEFAULTS, DiffusionBackend, pil, to_uint8


class WanAnimateBackend(DiffusionBackend):
    pose_style = "wan"  # its preprocessing draws toes and thin hands (docs/render.md)
    name = "wan-animate"
    window = 77
    overlap = 1
    multiple = 16
    preferred_dtype = "bf16"
    headroom_gib = 20.0
    needs_face = True
    defaults = {**COMMON_DEFAULTS, "guidance": 1.0, "scheduler": "default", "segment": 77, "prev_frames": 1}

    def check(self, params: dict) -> None:
        super().check(params)
        p = {**self.defaults, **params}
        seg = p["segment"]
        if not isinstance(seg, int) or isinstance(seg, bool) or seg < 5 or (seg - 1) % 4:
            raise InputError(f"{self.name}: segment must be a number of frames 4N+1 (e.g. 77), at least 5")
        if p["prev_frames"] not in (1, 5) or p["prev_frames"] >= seg:
            raise InputError(f"{self.name}: prev_frames must be 1 or 5 (fewer than segment)")

    def resolve(self, params: dict) -> dict:
        out = super().resolve(params)
        self.window, self.overlap = int(out["segment"]), int(out["prev_frames"])
        return out

    def plan(self, frames: int, fps: float) -> list[Chunk]:
        # the pipeline's own segmentation: steps of (segment - prev_frames), the last one padded
        return plan_chunks(frames, self.window, self.overlap, full_windows=False)

    def face_size(self) -> int:
        config = self.located("pipeline").path / "transformer" / "config.json"
        try:
            return int(json.loads(config.read_text()).get("motion_encoder_size", 512))
        except (OSError, ValueError):
            return 512

    def load(self):
        import torch
        from diffusers import AutoencoderKLWan, WanAnimatePipeline

        kw = self.load_kwargs()
        root = str(self.located("pipeline").path)
        # the Wan VAE is kept in fp32, as its authors run it
        vae = AutoencoderKLWan.from_pretrained(root, subfolder="vae", **dict(kw, torch_dtype=torch.float32))
        return WanAnimatePipeline.from_pretrained(root, vae=vae, **kw)

    def render(self, ctx: RenderContext, plan: list[Chunk], progress: Callable[[str, int, int], None]) -> Iterator[np.ndarray]:
        import torch

        if ctx.source_face is None:
            raise InputError(f"{self.name}: no face video")
        p = ctx.params
        pipe = self.pipeline(progress)
        self.set_scheduler(pipe, p["scheduler"])
        frames = ctx.motion.frames
        steps = int(p["steps"])
        self.start_report(ctx)
        self.report.update(segments=[[c.start, c.stop] for c in plan])
        pose = [pil(ctx.pose_map(t)) for t in range(frames)]
        faces = [pil(ctx.source_face(t)) for t in range(frames)]
        with torch.inference_mode():
            out = pipe(image=pil(ctx.identity_image), pose_video=pose, face_video=faces, prompt=ctx.prompt,
                       negative_prompt=ctx.negative_prompt or None, height=ctx.height, width=ctx.width,
                       segment_frame_length=self.window, prev_segment_conditioning_frames=self.overlap,
                       num_inference_steps=steps, guidance_scale=float(p["guidance"]), mode="animate",
                       generator=self.generator(ctx.seed), output_type="np",
                       callback_on_step_end=self.step_callback(progress, steps * len(plan)))
        video = to_uint8(out.frames[0])[:frames]
        if len(video) != frames:
            raise RuntimeError(f"wan-animate returned {len(video)} frames for {frames}")
        progress("frames", frames, frames)
        yield from video
