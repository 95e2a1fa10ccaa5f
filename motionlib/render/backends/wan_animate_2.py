"""``wan-animate-2``: diffusers' Wan-Animate-2 modular pipeline (``WanAnimate2ModularPipeline``; with
``-p distilled=true`` ``WanAnimate2DistilledModularPipeline``), driven by the footage itself.

Inputs: the identity picture as the reference image; as the driving video, the version's kept
source clip over the motion's time span, cropped to one box around the performer at the render
size (so the pipeline's letterbox leaves it as it is) and sampled at the model's 24 fps
(``motionlib/render/driving.py``). Refused before any work when the version has no kept source clip
or its frames left it (mirror, in-place, retime, imports). The pipes run the driving video in
segments of ``segment`` frames (81), each after the first conditioned on the last ``prev_frames``
decoded frames of the one before (the pipeline's own continuation). A clip that does not fill whole
segments is padded back and forth over itself (the pipeline's own padding reads before the clip's
first frame when a clip is shorter than the padding) and the extra frames are dropped. The 24 fps
frames are put back on the motion's clock, each motion frame taking the generated frame nearest in
time: the clip has the motion's frames and timestamps like every backend's, and QA compares it
frame by frame.

Parameters: distilled (false), steps and guidance (the preset's: 40 and 3.0; distilled: 10 and 1.0,
no classifier-free guidance - guidance is the pipeline's guider), segment (81; 4N+1), prev_frames
(1), margin (0.1: around the performer, of the keypoints' box), compile (auto: the transformer's
blocks are compiled on CUDA, where its flex attention needs it), scheduler (default: the
checkpoint's own, the only one taken), and the shared device / dtype (bf16 on a GPU) / offload /
models options. Frame sides are multiples of 16.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from typing import Callable, Iterator

import numpy as np

from motionlib.core.errors import InputError
from motionlib.render.backends.base import Chunk, RenderContext
from motionlib.render.backends.diffusion import COMMON_DEFAULTS, DiffusionBackend, check_range, pil, to_uint8
from motionlib.render.driving import MODEL_FPS

# each checkpoint's sampling preset (diffusers' WanAnimate2Blocks / WanAnimate2DistilledBlocks)
PRESETS = {False: {"steps": 40, "guidance": 3.0}, True: {"steps": 10, "guidance": 1.0}}
SPATIAL = 16  # the pipeline's frame sides: VAE factor 8 x patch 2


class WanAnimate2Backend(DiffusionBackend):
    name = "wan-animate-2"
    window = 81
    overlap = 1
    multiple = SPATIAL
    preferred_dtype = "bf16"
    # diffusers' page: the 14B transformer and a segment's reference KV cache do not fit together on
    # an 80 GB card at the default 800x640, so the working room is set large (not measured here)
    headroom_gib = 55.0
    needs_source = True
    defaults = {**COMMON_DEFAULTS, "steps": None, "guidance": None, "scheduler": "default", "distilled": False,
                "segment": 81, "prev_frames": 1, "margin": 0.1, "compile": "auto"}

    # --- before any work -------------------------------------------------------------------

    def check(self, params: dict) -> None:
        p = {**self.defaults, **params}
        if not isinstance(p["distilled"], bool):
            raise InputError(f"{self.name}: distilled must be true or false")
        preset = PRESETS[p["distilled"]]
        super().check({**params, **{k: v for k, v in preset.items() if p[k] is None}})
        if p["scheduler"] != "default":
            raise InputError(f"{self.name}: samples with its checkpoint's own scheduler (scheduler=default), "
                             f"not {p['scheduler']!r}")
        seg = p["segment"]
        if not isinstance(seg, int) or isinstance(seg, bool) or seg < 5 or (seg - 1) % 4:
            raise InputError(f"{self.name}: segment must be a number of frames 4N+1 (e.g. 81), at least 5")
        check_range(self.name, "prev_frames", p["prev_frames"], 1, seg - 1, integer=True)
        check_range(self.name, "margin", p["margin"], 0, 2)
        if p["compile"] not in ("auto", True, False):
            raise InputError(f"{self.name}: compile must be auto, true or false")

    def resolve(self, params: dict) -> dict:
        preset = PRESETS[bool(params.get("distilled"))]
        params = {**params, **{k: v for k, v in preset.items() if params.get(k) is None}}
        out = super().resolve(params)
        self.window, self.overlap = int(out["segment"]), int(out["prev_frames"])
        # the generation pass attends through a flex-attention block mask (the other attentions: SDPA)
        self._runtime.attention = "flex"
        return out

    def select_models(self, refs: list, params: dict) -> list:
        """The base checkpoint, or with distilled=true the distilled one: only that is located and
        recorded."""
        role, other = ("distilled", "pipeline") if params.get("distilled") else ("pipeline", "distilled")
        if other in (params.get("models") or {}):
            raise InputError(f"{{model}} {other}=...: a {self.name} render with distilled="
                             f"{'true' if params.get('distilled') else 'false'} uses model {role}", params=["model"])
        return [r for r in refs if r.role == role]

    def source_margin(self, params: dict) -> float:
        return float(params.get("margin", self.defaults["margin"]))

    def plan(self, frames: int, fps: float) -> list[Chunk]:
        """The pipeline's segments (at 24 fps), in the clip's frames: the part of the clip each one makes."""
        from motionlib.render import driving

        n = driving.model_frames(frames / fps if fps > 0 else frames / MODEL_FPS)
        segs = driving.segments(n, self.window, self.overlap)
        chunks: list[Chunk] = []
        for i, (a, b) in enumerate(segs):
            start = min(frames - 1, int(round(a * fps / MODEL_FPS))) if i else 0
            stop = frames if i == len(segs) - 1 else max(start + 1, min(frames, int(round(b * fps / MODEL_FPS))))
            prev = chunks[-1].stop if chunks else start
            chunks.append(Chunk(i, start, stop, max(0, prev - start)))
        return chunks

    # --- loading ---------------------------------------------------------------------------

    def _role(self) -> str:
        return "distilled" if self._resolved.get("distilled") else "pipeline"

    def _compiled(self) -> bool:
        want = self._resolved.get("compile", "auto")
        return self._runtime.device.startswith("cuda") if want == "auto" else bool(want)

    def cache_extra(self):
        return [self._role(), self._compiled()]

    def load(self):
        """The preset's blocks, with every component they load read from the checkpoint folder
        (local files only; a component that fails stops the load, where diffusers' own
        ``load_components`` would only warn)."""
        import diffusers
        import torch
        from transformers import AutoTokenizer

        root = self.located(self._role()).path
        distilled = self._role() == "distilled"
        pipe = (diffusers.WanAnimate2DistilledModularPipeline if distilled else diffusers.WanAnimate2ModularPipeline)()
        kw = self.load_kwargs()
        specs = {s.name: s for s in pipe.blocks.expected_components if s.default_creation_method == "from_pretrained"}
        parts = {}
        for name, spec in specs.items():
            if name == "tokenizer":
                parts[name] = AutoTokenizer.from_pretrained(root, subfolder=name, local_files_only=True)
            elif name == "scheduler":
                config = json.loads((root / name / "scheduler_config.json").read_text())
                parts[name] = getattr(diffusers, config["_class_name"]).from_pretrained(root, subfolder=name,
                                                                                         local_files_only=True)
            elif name == "vae":  # the Wan VAE is kept in fp32, as for wan-animate
                parts[name] = spec.type_hint.from_pretrained(root, subfolder=name, **dict(kw, torch_dtype=torch.float32))
            else:
                parts[name] = spec.type_hint.from_pretrained(root, subfolder=name, **kw)
        pipe.update_components(**parts)
        return pipe

    def place(self, pipe) -> None:
        """``none``: everything on the device; ``model``: diffusers' ComponentsManager moves each
        model onto it when it runs; ``sequential``: the transformer streamed block by block (group
        offloading, as diffusers' page runs it), the rest on the device. On CUDA (or
        ``compile=true``) the transformer's blocks are compiled."""
        import torch

        rt = self._runtime
        if rt.offload == "model":
            from diffusers import ComponentsManager

            manager = ComponentsManager()
            for name, part in pipe.components.items():
                if isinstance(part, torch.nn.Module):
                    manager.add(name, part)
            manager.enable_auto_cpu_offload(device=rt.device)
            pipe._motionlib_components_manager = manager  # the hooks live as long as the pipeline
        elif rt.offload == "sequential":
            pipe.transformer.enable_group_offload(onload_device=torch.device(rt.device), offload_type="block_level",
                                                  num_blocks_per_group=1, use_stream=True)
            for name, part in pipe.components.items():
                if isinstance(part, torch.nn.Module) and name != "transformer":
                    part.to(rt.device)
        else:
            pipe.to(rt.device)
        if rt.vae_slicing:
            pipe.vae.enable_slicing()
        if rt.vae_tiling:
            pipe.vae.enable_tiling()
        if self._compiled():
            pipe.transformer.compile_repeated_blocks(fullgraph=False)

    # --- running ---------------------------------------------------------------------------

    def render(self, ctx: RenderContext, plan: list[Chunk], progress: Callable[[str, int, int], None]) -> Iterator[np.ndarray]:
        import torch
        from diffusers.guiders import ClassifierFreeGuidance

        from motionlib.render import driving

        if ctx.source_video is None:
            raise InputError(f"{self.name}: no source clip to drive it")
        p = ctx.params
        motion = ctx.motion
        seg, prev, steps = self.window, self.overlap, int(p["steps"])
        times = driving.model_times(float(motion.timestamps[0]), motion.duration)
        n = len(times)
        crops = []
        for frame in ctx.source_video(times):
            crops.append(pil(frame))
            progress("source frames", len(crops), n)
        if len(crops) != n:
            raise RuntimeError(f"{self.name}: the source clip gave {len(crops)} frames for {n}")
        order = driving.pad_to_segments(n, seg, prev)
        segs = driving.segments(n, seg, prev)
        pipe = self.pipeline(progress)
        pipe.update_components(guider=ClassifierFreeGuidance(guidance_scale=float(p["guidance"])))
        height, width = _area_args(ctx.width, ctx.height)
        self.start_report(ctx)
        self.report.update(pipeline=type(pipe).__name__, model_fps=MODEL_FPS, model_frames=n, padded_frames=len(order),
                           segments=[list(s) for s in segs], compiled=self._compiled())
        with torch.inference_mode(), _denoise_progress(progress, steps * len(segs)), warnings.catch_warnings():
            # uncompiled (the CPU), flex attention runs eagerly and says so once per process
            warnings.filterwarnings("ignore", message="(?s).*flex_attention", category=UserWarning)
            videos = pipe(image=pil(ctx.identity_image), driving_video=[crops[i] for i in order], driving_video_fps=None,
                          prompt=ctx.prompt, negative_prompt=ctx.negative_prompt or None, height=height, width=width,
                          segment_frame_length=seg, prev_segment_conditioning_frames=prev, num_inference_steps=steps,
                          generator=self.generator(ctx.seed), output_type="np", output="videos")
        video = to_uint8(videos[0])
        if video.shape[:3] != (len(order), ctx.height, ctx.width):
            raise RuntimeError(f"{self.name} returned frames of {video.shape[:3]} for {(len(order), ctx.height, ctx.width)}")
        progress("frames", motion.frames, motion.frames)
        for k in driving.nearest_model_frames(motion.timestamps, count=n):
            yield video[k]


def _area_args(width: int, height: int) -> tuple[int, int]:
    """(height, width) to pass so that the pipeline, which reads them as a target area and takes
    the aspect ratio from the reference picture (``width`` x ``height``), resolves exactly that
    size: its float square root loses 16 pixels on some sizes (112x144 gives 96x144), one pixel
    more of area keeps them."""
    ratio = height / width
    for h, w in ((height, width), (height + 1, width), (height, width + 1), (height + 1, width + 1)):
        area = h * w
        got = (int(math.sqrt(area * ratio)) // SPATIAL * SPATIAL, int(math.sqrt(area / ratio)) // SPATIAL * SPATIAL)
        if got == (height, width):
            return h, w
    return height, width  # not reached for multiples of 16; the frame size check after the run would say so


@contextlib.contextmanager
def _denoise_progress(progress: Callable[[str, int, int], None], total: int):
    """The segment loop draws its own tqdm bar per segment, with no switch: while the pipeline
    runs, that bar is replaced by one that reports ``steps`` to ``progress`` and draws nothing."""
    from diffusers.modular_pipelines.wan_animate_2 import denoise

    done = [0]

    class _Steps:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n: int = 1):
            done[0] += n
            progress("steps", done[0], total)

    original = getattr(denoise, "tqdm", None)
    if original is None:  # a diffusers whose loop has no such bar: nothing to replace
        yield
        return
    denoise.tqdm = _Steps
    try:
        yield
    finally:
        denoise.tqdm = original
