"""Speed paths of the SD 1.5 backends (controlnet, animatediff), and the opt-in shortcuts.

Paths that keep the pictures (the same frames as the plain path within fp16/fp32 rounding), on by
default where they pay (a CUDA device), each off with its parameter:

* ``compile``: ``torch.compile`` of the UNet and the ControlNet. The compiled code is kept in a
  cache under the user cache directory (``<cache>/torch-compile``, or $TORCHINDUCTOR_CACHE_DIR), so
  the compile cost (minutes for SD 1.5) is paid once per machine and model shape, not per render;
  the first time, a one-line note says so. ``compile_mode``: default | reduce-overhead (CUDA graphs)
  | max-autotune.
* ``fuse_qkv``: the query, key and value projections of every self-attention in one matrix product
  (diffusers' fused projections; cross-attention keeps the IP-Adapter's processors, and
  AnimateDiff's motion modules, which FreeNoise rebuilds, are left as they are).
* ``channels_last`` (controlnet): the convolutions' weights and activations in NHWC.

Shortcuts that change the pictures, off unless asked for, recorded with the render and shown by
``motionlib renders``:

* ``step_cache=N``: DeepCache-style step caching. The UNet runs whole every N-th step; between,
  only its outermost blocks (first down block, last up block) run, on the deep features kept from
  the last whole step. The ControlNet still runs every step.

Nothing here imports torch at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from motionlib.core.errors import InputError

SPEED_DEFAULTS = {"compile": "auto", "compile_mode": "default", "fuse_qkv": "auto", "step_cache": 0}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
COMPILE_BACKEND_ENV = "MOTIONLIB_COMPILE_BACKEND"  # inductor (default); tests use aot_eager on the CPU
_NOTED: set[str] = set()


def check_speed(backend: str, p: dict) -> None:
    for key in ("compile", "fuse_qkv", "channels_last"):
        if key in p and p[key] not in ("auto", True, False):
            raise InputError(f"{backend}: {key} must be auto, true or false")
    if p.get("compile_mode", "default") not in COMPILE_MODES:
        raise InputError(f"{backend}: compile_mode {p['compile_mode']!r} is not one of {', '.join(COMPILE_MODES)}")
    v = p.get("step_cache", 0)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 10:
        raise InputError(f"{backend}: step_cache must be 0 (off) or the UNet's whole-step interval, 2 to 10")


@dataclass
class SpeedPlan:
    compile: bool
    compile_backend: str | None
    compile_mode: str | None
    fuse_qkv: bool
    channels_last: bool
    step_cache: int
    cache_dir: str | None = None
    compile_warm: bool | None = None  # the compiled code was in the cache already (a previous render)

    def to_json(self) -> dict:
        return asdict(self)

    def key(self) -> list:
        return [self.compile, self.compile_backend, self.compile_mode, self.fuse_qkv, self.channels_last,
                self.step_cache]


def plan_speed(params: dict, device: str) -> SpeedPlan:
    """What runs: ``auto`` turns a path on on CUDA only (on the CPU compiling costs more than it saves)."""
    cuda = device.startswith("cuda")

    def on(key: str, default=False) -> bool:
        v = params.get(key, default)
        return cuda if v == "auto" else bool(v)

    comp = on("compile")
    return SpeedPlan(comp, os.environ.get(COMPILE_BACKEND_ENV, "inductor") if comp else None,
                     params.get("compile_mode", "default") if comp else None, on("fuse_qkv"),
                     on("channels_last"), int(params.get("step_cache", 0) or 0))


# --- compile cache ------------------------------------------------------------------------------


def compile_cache_dir() -> Path:
    """Where torch.compile keeps its code: $TORCHINDUCTOR_CACHE_DIR when set, else
    ``torch-compile`` in motionlib's user cache directory (kept across renders and reboots)."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    from motionlib.core.weights import cache_dir

    return cache_dir() / "torch-compile"


def setup_compile_cache() -> Path:
    """Point inductor's (and Triton's) caches at the persistent folder, with the FX-graph and
    AOT-autograd caches on, before anything is compiled in this process."""
    path = compile_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path))
    os.environ.setdefault("TRITON_CACHE_DIR", str(path / "triton"))
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    if hasattr(functorch_config, "enable_autograd_cache"):
        functorch_config.enable_autograd_cache = True
    return path


def warm_marker(plan: SpeedPlan, what: dict) -> Path:
    """A file that says: code compiled for these models, shapes and device is in the cache."""
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    digest = hashlib.sha256(json.dumps([torch.__version__, device, plan.key(), what], sort_keys=True,
                                       default=str).encode()).hexdigest()[:16]
    return Path(plan.cache_dir or compile_cache_dir()) / "motionlib-warm" / digest


def warm_up_note(plan: SpeedPlan, what: dict, progress=None) -> Path | None:
    """Before the first compiled render of ``what`` on this machine: one note on stderr (a one-time
    wait; where the code is kept; how to skip it). Returns the marker to touch once it ran."""
    if not plan.compile:
        return None
    marker = warm_marker(plan, what)
    plan.compile_warm = marker.exists()
    if not plan.compile_warm and str(marker) not in _NOTED:
        _NOTED.add(str(marker))
        print(f"motionlib: compiling the UNet and ControlNet for this device and size (torch.compile, "
              f"{plan.compile_mode}): a one-time wait, minutes on a GPU; later renders reuse the code kept in "
              f"{plan.cache_dir} (compile=false, or --no-compile, skips it)", file=sys.stderr, flush=True)
        if progress is not None:
            progress("compiling (one-time)", 0, 1)
    return marker


def mark_warm(marker: Path | None) -> None:
    if marker is not None and not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("")


# --- the paths ----------------------------------------------------------------------------------


def fuse_self_attention(model, skip: tuple[str, ...] = ("motion_modules",)) -> int:
    """Fuse Q, K and V of every self-attention that runs diffusers' plain SDPA processor into one
    projection (FusedAttnProcessor2_0); other processors (IP-Adapter's) and modules under ``skip``
    keep theirs. Returns how many were fused."""
    import torch
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0, FusedAttnProcessor2_0

    n = 0
    for name, module in model.named_modules():
        if not isinstance(module, Attention) or module.is_cross_attention or any(s in name for s in skip):
            continue
        if type(module.processor) is not AttnProcessor2_0:
            continue
        with torch.no_grad():
            module.fuse_projections()
        module.set_processor(FusedAttnProcessor2_0())
        n += 1
    return n


def to_channels_last(*models) -> None:
    import torch

    for m in models:
        if m is not None:
            m.to(memory_format=torch.channels_last)


def compile_models(plan: SpeedPlan, *models) -> None:
    """Compile each model in place (``Module.compile``: the module keeps its type and attributes).
    A UNet carrying a step cache is compiled block by block (the cache decides, outside, which run)."""
    plan.cache_dir = str(setup_compile_cache())
    kw = {"backend": plan.compile_backend}
    if plan.compile_backend == "inductor" and plan.compile_mode != "default":
        kw["mode"] = plan.compile_mode
    for m in models:
        if m is None:
            continue
        cache = getattr(m, "_motionlib_step_cache", None)
        if cache is None:
            m.compile(**kw)
        else:
            for block in (*m.down_blocks, m.mid_block, *m.up_blocks):
                getattr(block, "block", block).compile(**kw)


class StepCache:
    """DeepCache-style step caching on a diffusers UNet (UNet2DConditionModel, UNetMotionModel).

    The deep blocks (every down block but the first, the mid block, every up block but the last)
    are wrapped: on a whole step they run and their outputs are kept; on the steps between they
    return the kept outputs, so only the outermost blocks (full resolution) run, fed by the fresh
    skip connections and the deep feature of the last whole step. ``reset()`` before each denoising
    loop (the first step is always whole)."""

    def __init__(self, unet, interval: int) -> None:
        import torch

        self.interval = int(interval)
        self.calls = 0
        self.fresh = True
        self.outputs: dict[str, object] = {}
        self.deep_runs = 0  # deep-block passes run (for tests and the record)
        self.scope = None  # whose deep features these are (a window's), when the caller says
        self.manual = False
        state = self

        class Cached(torch.nn.Module):
            def __init__(self, block, key):
                super().__init__()
                self.block = block
                self.key = key

            def __getattr__(self, name):  # has_cross_attention, resnets, motion_modules ...
                try:
                    return super().__getattr__(name)
                except AttributeError:
                    return getattr(self.block, name)

            def forward(self, *args, **kwargs):
                key = (state.scope, self.key)
                if state.fresh or key not in state.outputs:
                    out = self.block(*args, **kwargs)
                    state.outputs[key] = out
                    if self.key == "mid":
                        state.deep_runs += 1
                    return out
                return state.outputs[key]

        for i in range(1, len(unet.down_blocks)):
            unet.down_blocks[i] = Cached(unet.down_blocks[i], f"down{i}")
        unet.mid_block = Cached(unet.mid_block, "mid")
        for i in range(len(unet.up_blocks) - 1):
            unet.up_blocks[i] = Cached(unet.up_blocks[i], f"up{i}")

        def before(module, args, kwargs):
            if state.manual:  # the caller said which step and whose features (``step``)
                return
            state.fresh = state.calls % state.interval == 0
            state.calls += 1

        unet.register_forward_pre_hook(before, with_kwargs=True)
        unet._motionlib_step_cache = self

    def step(self, index: int, scope) -> None:
        """The next UNet call is denoising step ``index`` of ``scope`` (e.g. one window of a clip
        denoised window by window): whole on every ``interval``-th step, and the kept features are
        that scope's own. (Each scope keeps its deep features: the memory grows with the number of
        windows, which is why step caching is opt-in.)"""
        self.manual = True
        self.fresh = index % self.interval == 0
        self.scope = scope

    def reset(self) -> None:
        self.calls = 0
        self.fresh = True
        self.manual = False
        self.scope = None
        self.outputs.clear()


def step_cache_of(pipe) -> StepCache | None:
    return getattr(pipe.unet, "_motionlib_step_cache", None)
