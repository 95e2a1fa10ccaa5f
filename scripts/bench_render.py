#!/usr/bin/env python
"""Speed of a diffusion backend against the naive loop and against the floor, measured in one run.

Both sides use the same weights: a full-size SD 1.5 UNet, OpenPose-style ControlNet, VAE, CLIP
text encoder and IP-Adapter (with a ViT-H image encoder), randomly initialised (no download is
possible here) and saved as safetensors to a temporary folder, from which the backend loads them
through its normal loading code. Speed does not depend on the weights' values.

* naive: one ``StableDiffusionControlNetPipeline`` call per frame, batch 1, fp16, as tutorials
  show it (prompt and identity image passed on every call).
* motionlib: the ``controlnet`` backend (prompt and image embeddings once, shared initial latents,
  frames batched through the UNet, channels-last).

``--backend animatediff``: the same SD 1.5 checkpoints plus a full-size random motion adapter; naive
is one ``AnimateDiffControlNetPipeline`` call per 16-frame clip, tutorial style. ``--backend
wan-animate``: naive is one ``WanAnimatePipeline`` call as its documentation shows it; with --tiny
the tiny test pipeline, else a local Wan-Animate pipeline folder (--wan-pipeline) at a reduced size
and length (--size, --frames) - random 14B weights cannot be written here in the time.

The floor: the FLOPs of one frame are counted with ``torch.utils.flop_counter.FlopCounterMode`` over
one denoising step of the models the naive side calls (UNet + ControlNet, or the Wan transformer,
with classifier-free guidance as configured), times the steps, plus the VAE decode, per frame; the
device's matrix-product rate is measured in the same run (a timed fp16 matmul on CUDA, fp32 on the
CPU). floor = rate / FLOPs per frame (frames/s no implementation can beat at that rate); each side
is printed as frames/s, share of the floor and peak memory. Goal for controlnet: ratio >= 3 on a GPU.
``--tiny`` runs the same comparison on the CPU with the tiny test checkpoints (64 px), in seconds.

    python scripts/bench_render.py                          # on a CUDA machine
    python scripts/bench_render.py --backend animatediff
    python scripts/bench_render.py --tiny                   # anywhere, seconds
    python scripts/bench_render.py --no-compile             # the backend without torch.compile
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# Stable Diffusion 1.5 shapes (UNet, ControlNet, VAE, CLIP ViT-L/14 text tower, IP-Adapter ViT-H)
UNET = dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2)
VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=512,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
TEXT = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
            max_position_embeddings=77, vocab_size=49408, bos_token_id=0, eos_token_id=1, pad_token_id=1)
VISION = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32,
              image_size=224, patch_size=14, projection_dim=1024)


def build_full(root: Path, dtype, animatediff: bool = False) -> Path:
    """Random full-size checkpoints in the layout of the public ones; returns a models.toml."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)
    from tiny_models import SD15_COMPONENTS, _clip_tokenizer, _model_index

    torch.manual_seed(0)
    sd = root / "sd15"
    unet = UNet2DConditionModel(**UNET)
    unet.to(dtype).save_pretrained(sd / "unet")
    ControlNetModel.from_unet(unet).to(dtype).save_pretrained(root / "openpose")
    attn_names = [n for n in unet.attn_processors if not n.endswith("attn1.processor")]
    hidden = {}
    for n in attn_names:
        if n.startswith("mid_block"):
            hidden[n] = UNET["block_out_channels"][-1]
        else:
            part, idx = n.split(".")[:2]
            chans = UNET["block_out_channels"] if part == "down_blocks" else tuple(reversed(UNET["block_out_channels"]))
            hidden[n] = chans[int(idx)]
    del unet
    AutoencoderKL(**VAE).to(dtype).save_pretrained(sd / "vae")
    CLIPTextModel(CLIPTextConfig(**TEXT)).to(dtype).save_pretrained(sd / "text_encoder")
    _clip_tokenizer(sd / "tokenizer")
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1).save_pretrained(sd / "scheduler")
    CLIPImageProcessor(size=224, crop_size=224).save_pretrained(sd / "feature_extractor")
    _model_index(sd, "StableDiffusionPipeline", SD15_COMPONENTS)
    ip = root / "ip" / "models"
    CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION)).to(dtype).save_pretrained(ip / "image_encoder")
    g = torch.Generator().manual_seed(0)
    tensors = {"image_proj.proj.weight": torch.randn(4 * 768, 1024, generator=g) * 0.02,
               "image_proj.proj.bias": torch.zeros(4 * 768), "image_proj.norm.weight": torch.ones(768),
               "image_proj.norm.bias": torch.zeros(768)}
    for k, n in enumerate(attn_names):
        for kv in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{2 * k + 1}.{kv}.weight"] = torch.randn(hidden[n], 768, generator=g) * 0.02
    save_file({k: v.to(dtype).contiguous() for k, v in tensors.items()}, str(ip / "ip-adapter_sd15.safetensors"))
    if animatediff:
        from diffusers import MotionAdapter

        MotionAdapter().to(dtype).save_pretrained(root / "motion")  # the defaults are AnimateDiff v1.5's shapes
    return _config(root)


def _config(root: Path) -> Path:
    ip = root / "ip"
    cfg = root / "models.toml"
    cfg.write_text(f'[controlnet]\nbase = "{root / "sd15"}"\ncontrolnet = "{root / "openpose"}"\n'
                   f'ip_adapter = {{ id = "{ip}", subfolder = "models", weight_name = "ip-adapter_sd15.safetensors" }}\n'
                   f'image_encoder = {{ id = "{ip}", subfolder = "models/image_encoder" }}\n\n'
                   f'[animatediff]\nbase = "{root / "sd15"}"\ncontrolnet = "{root / "openpose"}"\n'
                   f'motion_adapter = "{root / "motion"}"\n'
                   f'ip_adapter = {{ id = "{ip}", subfolder = "models", weight_name = "ip-adapter_sd15.safetensors" }}\n'
                   f'image_encoder = {{ id = "{ip}", subfolder = "models/image_encoder" }}\n')
    return cfg


def pose_maps(n: int, size: int) -> list[np.ndarray]:
    """A synthetic OpenPose body waving its arms, drawn by motionlib's pose-map code."""
    from motionlib.core.openpose import OpenPoseFrames
    from motionlib.render import posemap

    base = np.array([[.5, .2], [.5, .3], [.4, .3], [.35, .45], [.3, .6], [.6, .3], [.65, .45], [.7, .6], [.45, .6],
                     [.45, .78], [.45, .95], [.55, .6], [.55, .78], [.55, .95], [.48, .18], [.52, .18], [.46, .2],
                     [.54, .2]]) * size
    out = []
    for t in range(n):
        body = base.copy()
        swing = np.sin(t / 4) * size * 0.12
        body[[4, 7], 1] -= swing
        out.append(posemap.draw(OpenPoseFrames(body[None], np.ones((1, 18))), size, size))
    return out


def identity(size: int) -> np.ndarray:
    try:
        from skimage.data import astronaut

        import cv2

        return cv2.resize(astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    except Exception:  # noqa: BLE001 - any picture will do for timing
        rng = np.random.default_rng(0)
        return rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


def face_crop(ident: np.ndarray, side: int) -> np.ndarray:
    """Wan-Animate's face video: the identity's upper middle, at the motion encoder's size."""
    import cv2

    h, w = ident.shape[:2]
    crop = ident[: h // 2, w // 4: w // 4 + h // 2]
    return cv2.resize(np.ascontiguousarray(crop), (side, side), interpolation=cv2.INTER_AREA)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def _gib(value: float | None) -> str:
    return "n/a on the CPU" if value is None else f"{value} GiB"


# --- the floor -----------------------------------------------------------------------------------


def matmul_rate(device: str) -> float:
    """The device's matrix-product rate (FLOP/s), timed here: fp16 8192^3 on CUDA, fp32 1024^3 on the CPU."""
    import torch

    cuda = device.startswith("cuda")
    n, dtype, reps = (8192, torch.float16, 20) if cuda else (1024, torch.float32, 5)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


DENOISERS = ("UNet2DConditionModel", "UNetMotionModel", "ControlNetModel", "WanAnimateTransformer3DModel")


def frame_flops(pipe, call, steps: int, frames: int) -> dict:
    """FLOPs of one frame: ``call(1)`` (the naive pipeline, one denoising step) runs under
    FlopCounterMode; the denoisers' FLOPs (UNet, ControlNet, transformer: every model call of the
    step, both halves of classifier-free guidance) times ``steps``, plus what ``pipe.vae.decode``
    counted, over the ``frames`` the call makes. Text and image encoders run once per render in the
    backends and are left out."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    vae, decoded = pipe.vae, [0]
    plain = vae.decode

    def decode(*a, **kw):
        before = counter.get_total_flops()
        out = plain(*a, **kw)
        decoded[0] += counter.get_total_flops() - before
        return out

    vae.decode = decode
    try:
        with counter:
            call(1)
    finally:
        del vae.decode
    top: dict[str, int] = {}
    for name, counts in counter.get_flop_counts().items():
        if name in DENOISERS:
            top[name] = sum(counts.values())
    per_frame = (sum(top.values()) * steps + decoded[0]) / frames
    return {"per_step": top, "decode": decoded[0], "frames_per_call": frames, "per_frame": per_frame}


# --- the two sides ------------------------------------------------------------------------------


def naive_pipe(backend: str, root: Path, device, dtype, wan: Path | None):
    import torch
    from diffusers import ControlNetModel, MotionAdapter, UniPCMultistepScheduler

    if backend == "wan-animate":
        from diffusers import AutoencoderKLWan, WanAnimatePipeline

        vae = AutoencoderKLWan.from_pretrained(wan, subfolder="vae", torch_dtype=torch.float32)
        pipe = WanAnimatePipeline.from_pretrained(wan, vae=vae, torch_dtype=dtype)
    else:
        cn = ControlNetModel.from_pretrained(root / "openpose", torch_dtype=dtype)
        if backend == "controlnet":
            from diffusers import StableDiffusionControlNetPipeline

            pipe = StableDiffusionControlNetPipeline.from_pretrained(
                root / "sd15", controlnet=cn, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False)
            pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
        else:
            from diffusers import AnimateDiffControlNetPipeline, DDIMScheduler

            adapter = MotionAdapter.from_pretrained(root / "motion", torch_dtype=dtype)
            pipe = AnimateDiffControlNetPipeline.from_pretrained(root / "sd15", motion_adapter=adapter, controlnet=cn,
                                                                 torch_dtype=dtype)
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear", clip_sample=False,
                                                       timestep_spacing="linspace", steps_offset=1)
        pipe.load_ip_adapter(str(root / "ip"), subfolder="models", weight_name="ip-adapter_sd15.safetensors",
                             image_encoder_folder="image_encoder")
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def naive_call(backend: str, pipe, maps, ident, args, device):
    """``call(steps, i)``: the naive side's unit of work (frames it makes) starting at frame ``i``."""
    import torch
    from PIL import Image

    ident_img = Image.fromarray(ident)
    gen = lambda: torch.Generator("cpu").manual_seed(0)  # noqa: E731
    if backend == "controlnet":
        def call(steps, i=0):
            pipe(args.prompt, image=Image.fromarray(maps[i]), ip_adapter_image=ident_img, num_inference_steps=steps,
                 height=args.size, width=args.size, generator=gen())
        return call, 1
    if backend == "animatediff":
        n = 16

        def call(steps, i=0):
            pipe(args.prompt, conditioning_frames=[Image.fromarray(maps[(i + k) % len(maps)]) for k in range(n)],
                 ip_adapter_image=ident_img, num_frames=n, num_inference_steps=steps, height=args.size,
                 width=args.size, generator=gen(), output_type="np")
        return call, n
    n = args.frames

    def call(steps, i=0):
        pose = [Image.fromarray(maps[(i + k) % len(maps)]) for k in range(n)]
        face = [Image.fromarray(face_crop(ident, args.face))] * n
        pipe(image=ident_img, pose_video=pose, face_video=face, prompt=args.prompt, height=args.size, width=args.size,
             segment_frame_length=args.segment, num_inference_steps=steps, guidance_scale=1.0, mode="animate",
             generator=gen(), output_type="np")
    return call, n


def run_naive(backend, root, maps, ident, args, device, dtype) -> tuple[dict, dict]:
    pipe = naive_pipe(backend, root, device, dtype, args.wan_pipeline)
    call, per_call = naive_call(backend, pipe, maps, ident, args, device)
    flops = frame_flops(pipe, call, args.steps, per_call)
    call(args.steps)  # warm-up
    peak_reset(device)
    sync(device)
    calls = max(1, args.naive_frames // per_call)
    t = time.perf_counter()
    for k in range(calls):
        call(args.steps, k * per_call % len(maps))
    sync(device)
    dt = time.perf_counter() - t
    n = calls * per_call
    out = {"frames": n, "seconds": round(dt, 3), "fps": round(n / dt, 3), "peak_gib": peak_gib(device)}
    del pipe
    return out, flops


def run_backend(backend_name: str, cfg: Path, maps, ident, args, device) -> dict:
    from motionlib.render.backends import get_backend
    from motionlib.render.backends.base import RenderContext

    def render(n):
        backend = get_backend(backend_name)
        params = {"steps": args.steps, "models_config": str(cfg), "device": device, "allow_cpu": True,
                  "offload": "none"}
        if backend_name == "controlnet":
            params["batch"] = args.batch if args.batch else "auto"
        if backend_name in ("controlnet", "animatediff") and args.no_compile:
            params["compile"] = False
        if backend_name == "wan-animate":
            params["segment"] = args.segment
        backend.check(params)
        params = backend.resolve({**backend.defaults, **params})
        face = lambda i: face_crop(ident, args.face)  # noqa: E731
        ctx = RenderContext(ident, lambda i: maps[i % len(maps)], SimpleNamespace(frames=n), args.size, args.size,
                            seed=0, prompt=args.prompt, params=params, source_face=face)
        frames = list(backend.render(ctx, backend.plan(n, 30.0), lambda *a: None))
        assert len(frames) == n and frames[0].shape == (args.size, args.size, 3)
        return backend

    warm = {"controlnet": min(args.frames, args.batch or 16), "animatediff": min(args.frames, 16)}.get(backend_name,
                                                                                                       args.frames)
    render(warm)  # warm-up (loads the pipeline, kept for the timed run; compiles, the first time on a machine)
    peak_reset(device)
    sync(device)
    t = time.perf_counter()
    backend = render(args.frames)
    sync(device)
    dt = time.perf_counter() - t
    return {"frames": args.frames, "seconds": round(dt, 3), "fps": round(args.frames / dt, 3),
            "peak_gib": peak_gib(device), "batch": backend.report.get("batch"), "runtime": backend.report.get("runtime"),
            "speed": backend.report.get("speed")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=("controlnet", "animatediff", "wan-animate"), default="controlnet")
    ap.add_argument("--tiny", action="store_true", help="tiny checkpoints on the CPU (no GPU needed)")
    ap.add_argument("--frames", type=int, default=None,
                    help="frames rendered by the backend (default 64; animatediff 32; wan-animate 21 with --tiny)")
    ap.add_argument("--naive-frames", type=int, default=16, help="frames rendered by the naive loop (default 16)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default 20; 2 with --tiny)")
    ap.add_argument("--size", type=int, default=None, help="frame side (default 512; 64 with --tiny, 32 for wan-animate)")
    ap.add_argument("--batch", type=int, default=None, help="controlnet batch (default: its auto choice)")
    ap.add_argument("--no-compile", action="store_true", help="the backend without torch.compile (compile=false)")
    ap.add_argument("--wan-pipeline", type=Path, help="wan-animate without --tiny: a local Wan-Animate pipeline folder")
    ap.add_argument("--prompt", default="a person dancing")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    import torch

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    if device == "cpu" and not args.tiny:
        print("no CUDA GPU here: running the tiny CPU comparison instead (--tiny)", file=sys.stderr)
        args.tiny = True
    wan = args.backend == "wan-animate"
    if wan and not args.tiny and args.wan_pipeline is None:
        print("wan-animate at full size needs a local Wan-Animate pipeline (--wan-pipeline FOLDER), run at a reduced "
              "size and length (--size 256 --frames 21); random 14B weights are not written here", file=sys.stderr)
        return 2
    if wan and device == "cuda":
        dtype = torch.bfloat16
    args.size = args.size or ((32 if wan else 64) if args.tiny else (256 if wan else 512))
    args.steps = args.steps or (2 if args.tiny else 20)
    args.frames = args.frames or (21 if wan else 32 if args.backend == "animatediff" else 16 if args.tiny else 64)
    if args.tiny and args.naive_frames == 16 and args.backend == "controlnet":
        args.naive_frames = 4
    args.segment = 21 if args.tiny else 77
    args.face = 16 if args.tiny else 512
    with tempfile.TemporaryDirectory(prefix="motionlib-bench-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        if args.tiny:
            from tiny_models import build_all

            cfg = build_all(root)
            args.wan_pipeline = args.wan_pipeline or root / "wan-animate"
        elif wan:
            cfg = root / "models.toml"
            cfg.write_text(f'[wan-animate]\npipeline = "{args.wan_pipeline}"\n')
        else:
            cfg = build_full(root, torch.float16, animatediff=args.backend == "animatediff")
        build_s = time.perf_counter() - t
        maps, ident = pose_maps(max(args.frames, args.naive_frames, 16), args.size), identity(args.size)
        rate = matmul_rate(device)
        naive, flops = run_naive(args.backend, root, maps, ident, args, device, dtype)
        import gc

        gc.collect()
        ours = run_backend(args.backend, cfg, maps, ident, args, device)
    floor = rate / flops["per_frame"]
    for side in (naive, ours):
        side["floor_share"] = round(side["fps"] / floor, 4)
    result = {
        "backend": args.backend, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__, "models": "tiny (test checkpoints)" if args.tiny else
        (f"Wan-Animate from {args.wan_pipeline}" if wan else "full-size SD 1.5, random"),
        "size": args.size, "steps": args.steps, "dtype": str(dtype).replace("torch.", ""),
        "build_seconds": round(build_s, 1),
        "flops": {"per_frame": flops["per_frame"], "per_step": flops["per_step"], "decode": flops["decode"],
                  "frames_per_call": flops["frames_per_call"]},
        "matmul_tflops": round(rate / 1e12, 4), "floor_fps": round(floor, 3),
        "naive": naive, "motionlib": ours, "ratio": round(ours["fps"] / naive["fps"], 2),
    }
    print(json.dumps(result, indent=2))
    label = {"controlnet": "naive per-frame loop", "animatediff": "naive 16-frame calls",
             "wan-animate": "naive pipeline call"}[args.backend]
    print(f"\nFLOPs per frame: {flops['per_frame'] / 1e12:.4g} TFLOP; matmul rate here: {rate / 1e12:.4g} TFLOP/s "
          f"({'fp16' if device == 'cuda' else 'fp32'}); floor: {floor:.2f} frames/s\n"
          f"{label + ':':22s}{naive['fps']:.2f} frames/s, {100 * naive['floor_share']:.1f}% of floor, "
          f"peak {_gib(naive['peak_gib'])}\n"
          f"{args.backend + ' backend:':22s}{ours['fps']:.2f} frames/s, {100 * ours['floor_share']:.1f}% of floor, "
          f"peak {_gib(ours['peak_gib'])}" + (f" (batch {ours['batch']})" if ours.get("batch") else "") + "\n"
          f"ratio: {result['ratio']:.2f}x" + (" (goal >= 3x on a GPU)" if args.backend == "controlnet" else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
