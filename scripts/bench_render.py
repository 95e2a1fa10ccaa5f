#!/usr/bin/env python
"""Speed of the ``controlnet`` backend against the naive per-frame loop, measured in one run.

Both sides use the same weights: a full-size SD 1.5 UNet, OpenPose-style ControlNet, VAE, CLIP
text encoder and IP-Adapter (with a ViT-H image encoder), randomly initialised (no download is
possible here) and saved as safetensors to a temporary folder, from which the backend loads them
through its normal loading code. Speed does not depend on the weights' values.

* naive: one ``StableDiffusionControlNetPipeline`` call per frame, batch 1, fp16, as tutorials
  show it (prompt and identity image passed on every call).
* motionlib: the ``controlnet`` backend (prompt and image embeddings once, shared initial latents,
  frames batched through the UNet, channels-last).

Prints frames per second, peak GPU memory and the ratio. Goal: ratio >= 3 on a GPU.
``--tiny`` runs the same comparison on the CPU with the tiny test checkpoints (64 px).

    python scripts/bench_render.py                 # on a CUDA machine
    python scripts/bench_render.py --tiny          # anywhere, seconds
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


def build_full(root: Path, dtype) -> Path:
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
    return _config(root)


def _config(root: Path) -> Path:
    ip = root / "ip"
    cfg = root / "models.toml"
    cfg.write_text(f'[controlnet]\nbase = "{root / "sd15"}"\ncontrolnet = "{root / "openpose"}"\n'
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


def run_naive(cfg_root: Path, maps, ident, args, device, dtype) -> dict:
    import torch
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, UniPCMultistepScheduler
    from PIL import Image

    cn = ControlNetModel.from_pretrained(cfg_root / "openpose", torch_dtype=dtype)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(cfg_root / "sd15", controlnet=cn, torch_dtype=dtype,
                                                             safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.load_ip_adapter(str(cfg_root / "ip"), subfolder="models", weight_name="ip-adapter_sd15.safetensors",
                         image_encoder_folder="image_encoder")
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    ident_img = Image.fromarray(ident)

    def frame(i):
        return pipe(args.prompt, image=Image.fromarray(maps[i]), ip_adapter_image=ident_img,
                    num_inference_steps=args.steps, height=args.size, width=args.size,
                    generator=torch.Generator(device).manual_seed(0)).images[0]

    frame(0)  # warm-up
    peak_reset(device)
    sync(device)
    t = time.perf_counter()
    for i in range(args.naive_frames):
        frame(i)
    sync(device)
    dt = time.perf_counter() - t
    out = {"frames": args.naive_frames, "seconds": round(dt, 3), "fps": round(args.naive_frames / dt, 3),
           "peak_gib": peak_gib(device)}
    del pipe, cn
    return out


def run_backend(cfg: Path, maps, ident, args, device) -> dict:
    from motionlib.render.backends.base import RenderContext, plan_chunks
    from motionlib.render.backends.controlnet import ControlNetBackend

    def render(n):
        backend = ControlNetBackend()
        params = {"steps": args.steps, "models_config": str(cfg), "device": device, "allow_cpu": True,
                  "batch": args.batch if args.batch else "auto", "offload": "none"}
        backend.check(params)
        params = backend.resolve({**backend.defaults, **params})
        ctx = RenderContext(ident, lambda i: maps[i % len(maps)], SimpleNamespace(frames=n), args.size, args.size,
                            seed=0, prompt=args.prompt, params=params)
        frames = list(backend.render(ctx, plan_chunks(n, max(n, 1)), lambda *a: None))
        assert len(frames) == n and frames[0].shape == (args.size, args.size, 3)
        return backend

    render(min(args.frames, args.batch or 16))  # warm-up (loads the pipeline, kept for the timed run)
    peak_reset(device)
    sync(device)
    t = time.perf_counter()
    backend = render(args.frames)
    sync(device)
    dt = time.perf_counter() - t
    return {"frames": args.frames, "seconds": round(dt, 3), "fps": round(args.frames / dt, 3),
            "peak_gib": peak_gib(device), "batch": backend.report.get("batch"), "runtime": backend.report.get("runtime")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny checkpoints on the CPU (no GPU needed)")
    ap.add_argument("--frames", type=int, default=64, help="frames rendered by the backend (default 64)")
    ap.add_argument("--naive-frames", type=int, default=16, help="frames rendered by the naive loop (default 16)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=None, help="frame side (default 512; 64 with --tiny)")
    ap.add_argument("--batch", type=int, default=None, help="backend batch (default: its auto choice)")
    ap.add_argument("--prompt", default="a person dancing")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    import torch

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    if device == "cpu" and not args.tiny:
        print("no CUDA GPU here: running the tiny CPU comparison instead (--tiny)", file=sys.stderr)
        args.tiny = True
    args.size = args.size or (64 if args.tiny else 512)
    with tempfile.TemporaryDirectory(prefix="motionlib-bench-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        if args.tiny:
            from tiny_models import build_all

            build_all(root)
            cfg = _config(root)
        else:
            cfg = build_full(root, torch.float16)
        build_s = time.perf_counter() - t
        maps, ident = pose_maps(max(args.frames, args.naive_frames), args.size), identity(args.size)
        naive = run_naive(root, maps, ident, args, device, dtype)
        import gc

        gc.collect()
        ours = run_backend(cfg, maps, ident, args, device)
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__, "models": "tiny (test checkpoints)" if args.tiny else "full-size SD 1.5, random",
        "size": args.size, "steps": args.steps, "dtype": str(dtype).replace("torch.", ""),
        "build_seconds": round(build_s, 1), "naive": naive, "motionlib": ours,
        "ratio": round(ours["fps"] / naive["fps"], 2),
    }
    print(json.dumps(result, indent=2))
    print(f"\nnaive per-frame loop: {naive['fps']:.2f} frames/s, peak {naive['peak_gib']} GiB\n"
          f"controlnet backend:   {ours['fps']:.2f} frames/s, peak {ours['peak_gib']} GiB (batch {ours['batch']})\n"
          f"ratio: {result['ratio']:.2f}x (goal >= 3x on a GPU)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
