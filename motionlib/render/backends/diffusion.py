"""What the diffusion backends share: model resolution before any work, the device / precision /
memory plan, loading through ``from_pretrained`` from local folders only, progress and frames.

Every check that can fail runs in ``resolve`` (called by the pipeline's ``prepare``): unknown
parameters, a models config that does not parse, a model that is not on this machine (named, with
the command that fetches it), a real model on the CPU without ``allow_cpu``. Loading happens in
``render``; a loaded pipeline is kept for the next job of a batch that uses the same models.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from motionlib.core.errors import InputError
from motionlib.render.backends.base import Backend, ModelSpec

# a model this large (parameters) is "real": on the CPU it needs --allow-cpu
CPU_PARAM_LIMIT = 100_000_000
DTYPES = {"fp16": 2, "bf16": 2, "fp32": 4}
OFFLOADS = ("auto", "none", "model", "sequential")
SCHEDULERS = ("default", "unipc", "ddim", "euler", "dpm")

COMMON_DEFAULTS: dict[str, Any] = {
    "steps": 20,
    "guidance": 7.5,
    "scheduler": "unipc",
    "device": "auto",  # auto | cpu | cuda | cuda:N | mps
    "dtype": "auto",  # auto (fp16 on CUDA, fp32 on CPU) | fp16 | bf16 | fp32
    "offload": "auto",  # auto (from free GPU memory) | none | model | sequential
    "vae_slicing": "auto",
    "vae_tiling": "auto",
    "allow_cpu": False,
    "models": {},  # role -> id / path / table; filled with every resolved model by resolve()
    "models_config": None,  # path of a models TOML (else $MOTIONLIB_MODELS_CONFIG, else the user config)
}

_CACHE: dict[str, Any] = {}  # one loaded pipeline, reused while the models and runtime match


def clear_pipeline_cache() -> None:
    """Forget the loaded pipeline (the next render loads its models again)."""
    _CACHE.clear()


@dataclass
class Runtime:
    device: str
    dtype: str
    offload: str
    vae_slicing: bool
    vae_tiling: bool
    attention: str
    free_gib: float | None
    need_gib: float
    batch: int | None = None  # images per denoiser call (the backend says what that means), None: its own rule
    plan: str = ""  # the memory plan in one readable line: what was chosen and why

    def to_json(self) -> dict:
        return asdict(self)

    def placement(self) -> dict:
        """What loading depends on (the pipeline cache's key): not the batch or the wording."""
        return {k: v for k, v in asdict(self).items() if k not in ("batch", "plan", "need_gib", "free_gib")}

    @property
    def torch_dtype(self):
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[self.dtype]


def param_count(path: Path) -> int:
    """Parameters in a safetensors file, read from its header (no tensor is loaded)."""
    import struct

    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error):
        return 0
    total = 0
    for key, info in header.items():
        if key != "__metadata__":
            total += int(np.prod(info.get("shape", []), dtype=np.int64))
    return total


def _params_under(path: Path) -> tuple[int, int]:
    """(total, largest single folder) parameter counts of the safetensors a model loads: the file,
    the folder, or a pipeline's component folders. Of variant files (``x.fp16.safetensors`` beside
    ``x.safetensors``) only one is counted."""
    from motionlib.render.models import weighted_components

    if path.is_file():
        files = [path]
    else:
        index = path / "model_index.json"
        folders = weighted_components(path, index) if index.is_file() else [path]
        files = sorted(f for d in folders if d.is_dir() for f in d.glob("*.safetensors"))
    per_folder: dict[Path, dict[str, int]] = {}
    for f in files:
        group = per_folder.setdefault(f.parent, {})
        key = f.name.replace(".fp16.", ".").replace(".bf16.", ".")
        group[key] = max(group.get(key, 0), param_count(f))
    sizes = [sum(g.values()) for g in per_folder.values()]
    return sum(sizes), max(sizes, default=0)


def memory_plan(free_gib: float, total_params: int, largest_params: int, bytes_per_param: int,
                headroom_gib: float) -> str:
    """How to place the models on a GPU with ``free_gib`` free: all of them (``none``), one at a
    time (``model`` CPU offload: the largest must fit), or layer by layer (``sequential``)."""
    if free_gib >= total_params * bytes_per_param / 2**30 + headroom_gib:
        return "none"
    if free_gib >= largest_params * bytes_per_param / 2**30 + headroom_gib:
        return "model"
    return "sequential"


# --- the memory plan of the Stable Diffusion 1.5 backends (controlnet, animatediff) ----------------
#
# What stays on the GPU, fp16 (2 bytes a parameter), from the public checkpoints' parameter counts
# (read from the files' headers at resolve, so these are only the reasoning, not constants used):
#   SD 1.5 UNet 0.86 B = 1.60 GiB; OpenPose ControlNet 0.36 B = 0.67 GiB; VAE 0.08 B = 0.16 GiB;
#   CLIP ViT-L text encoder 0.12 B = 0.23 GiB; IP-Adapter's ViT-H image encoder 0.63 B = 1.18 GiB
#   and its projection 0.02 B: controlnet ~2.08 B = 3.9 GiB. AnimateDiff's motion adapter (v1.5-2/3)
#   adds 0.45 B = 0.84 GiB: ~2.53 B = 4.7 GiB, and the UNet with its motion modules (one model under
#   model offload, the largest) is 1.31 B = 2.45 GiB.
# What a denoiser call needs beyond the weights, per image of its batch, at 512x512 (64x64 latents):
#   the UNet's skip connections and the ControlNet's residuals for it are each ~6.7 M values (13 MiB);
#   inside the 64x64 blocks a 320-channel tensor is 2.5 MiB and the GEGLU feed-forward holds 20 + 10
#   MiB; SDPA never stores the 4096 x 4096 attention. ~60 MiB of live tensors, doubled for the
#   caching allocator's slack and the fp32 upcasts (time embedding, norms): IMAGE_GIB = 0.2. The motion
#   modules add a temporal attention + feed-forward after every spatial block and the (B*H*W, F, C)
#   copies around them: ANIMATEDIFF_IMAGE_GIB = 0.25, so a 16-frame window with both guidance halves
#   (32 images) takes ~8 GiB, with the halves one after another ~4 GiB. (Check: AnimateDiff's README
#   puts 16 frames at 512x512 at ~12 GB; 4.7 + 8 is that.) All of it scales with the pixel count.
# Decoding a frame with the VAE: its last up-blocks run 128-256 channels at 512x512 (64-128 MiB a
#   tensor, several alive at once): VAE_FRAME_GIB = 0.4 a frame decoded together (slicing: one at a time).
# MARGIN_GIB: what the plan keeps free (fragmentation, the encoders' transients, cuDNN workspaces).
# SEQUENTIAL_RESIDENT_GIB: what sequential offload keeps on the GPU (the largest layer or so).
IMAGE_GIB = 0.2
ANIMATEDIFF_IMAGE_GIB = 0.25
VAE_FRAME_GIB = 0.4
MARGIN_GIB = 1.0
SEQUENTIAL_RESIDENT_GIB = 0.5


@dataclass
class MemoryChoice:
    offload: str
    batch: int  # images per denoiser call
    vae_slicing: bool
    vae_tiling: bool
    need_gib: float  # what the choice is expected to use at its peak
    why: str  # one readable line


def plan_memory(free_gib: float, weights_gib: float, largest_gib: float, image_gib: float, batches: list[int],
                good_batch: int, decode_frames: Callable[[int], int], vae_frame_gib: float = VAE_FRAME_GIB,
                offload: str = "auto", unit: Callable[[int], str] = lambda b: f"batch {b}") -> MemoryChoice:
    """The offload, denoiser batch and VAE slicing / tiling for ``free_gib`` of GPU memory.

    ``batches``: the batch sizes a backend can run (images per denoiser call), the one it prefers
    first; ``good_batch``: the smallest worth keeping every model on the GPU for (rather than
    offloading models to run a larger one). Keeping the models on the GPU comes first (offloading
    moves gigabytes over PCIe on every call), then model offload, then sequential (layer by layer,
    many times slower). ``decode_frames(batch)``: frames the VAE decodes at once; slicing decodes
    one at a time when those do not fit beside what stays on the GPU, tiling when one frame does not.
    ``unit`` words a batch for the line."""
    resident = {"none": weights_gib, "model": largest_gib, "sequential": SEQUENTIAL_RESIDENT_GIB}
    order = ["none", "model", "sequential"] if offload == "auto" else [offload]
    batch = None
    for choice in order:
        room = free_gib - resident[choice] - MARGIN_GIB
        fits = [b for b in batches if b * image_gib <= room]
        last = choice == order[-1]
        if fits and (fits[0] >= good_batch or last):
            batch = fits[0]
            break
    if batch is None:  # not even the smallest batch fits: run the smallest, layer by layer
        batch = min(batches)
    room = free_gib - resident[choice] - MARGIN_GIB
    # while decoding, the denoiser's activations are gone and offloaded models are off the GPU
    decode_room = free_gib - (weights_gib if choice == "none" else SEQUENTIAL_RESIDENT_GIB) - MARGIN_GIB
    frames = decode_frames(batch)
    slicing = frames > 1 and frames * vae_frame_gib > decode_room
    tiling = choice == "sequential" or vae_frame_gib > decode_room
    need = resident[choice] + batch * image_gib + MARGIN_GIB
    kept = {"none": f"all models on the GPU ({weights_gib:.1f} GiB)",
            "model": f"model offload (all {weights_gib:.1f} GiB do not fit beside the activations; "
                     f"the largest model, {largest_gib:.1f} GiB, at a time)",
            "sequential": "sequential offload (not even the largest model fits beside the activations)"}[choice]
    fit = "fits" if batch * image_gib <= room else "does not fit: expect out-of-memory"
    why = (f"{free_gib:.1f} GiB free: {kept}, {unit(batch)} (~{batch * image_gib:.1f} GiB of activations, "
           f"{fit} in {max(room, 0):.1f} GiB); VAE ")
    if slicing or tiling:
        what = " and ".join(w for w, on in (("slicing", slicing), ("tiling", tiling)) if on)
        why += f"{what} on (decoding {frames} frame(s) at once needs ~{frames * vae_frame_gib:.1f} GiB, {max(decode_room, 0):.1f} left)"
    else:
        why += f"decodes {frames} frame(s) at once (~{frames * vae_frame_gib:.1f} GiB of {decode_room:.1f} left)"
    return MemoryChoice(choice, batch, slicing, tiling, round(need, 2), why)


def check_range(backend: str, key: str, value, lo: float, hi: float, integer: bool = False) -> None:
    """A numeric parameter within [lo, hi] (an int where ``integer``; never a bool)."""
    kinds = int if integer else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool) or not lo <= value <= hi:
        raise InputError(f"{backend}: {key} must be {'an integer' if integer else 'a number'} from {lo:g} to {hi:g}")


class DiffusionBackend(Backend):
    generates = True
    multiple = 8  # the frame size must be a multiple of this
    preferred_dtype = "fp16"
    headroom_gib = 3.0  # activations etc. on top of the weights, for the memory plan
    needs_face = False

    # --- before any work -------------------------------------------------------------------

    def check(self, params: dict) -> None:
        super().check(params)
        p = {**self.defaults, **params}
        check_range(self.name, "steps", p["steps"], 1, 500, integer=True)
        check_range(self.name, "guidance", p["guidance"], 0, 50)
        if p["scheduler"] not in SCHEDULERS:
            raise InputError(f"{self.name}: scheduler {p['scheduler']!r} is not one of {', '.join(SCHEDULERS)}")
        if p["dtype"] not in ("auto", *DTYPES):
            raise InputError(f"{self.name}: dtype {p['dtype']!r} is not one of auto, {', '.join(DTYPES)}")
        if p["offload"] not in OFFLOADS:
            raise InputError(f"{self.name}: offload {p['offload']!r} is not one of {', '.join(OFFLOADS)}")
        for key in ("vae_slicing", "vae_tiling"):
            if p[key] not in ("auto", True, False):
                raise InputError(f"{self.name}: {key} must be auto, true or false")
        if not isinstance(p["allow_cpu"], bool):
            raise InputError(f"{self.name}: allow_cpu must be true or false")
        if not isinstance(p["models"], dict):
            raise InputError(f"{self.name}: models must be a table of role = model")

    def resolve(self, params: dict) -> dict:
        """Resolve every model to a local folder (or fail naming it) and plan the device."""
        from motionlib.render import models as registry

        config = registry.load_config(params.get("models_config"))
        refs = self.select_models(config.refs(self.name, params.get("models")), params)
        found = [registry.locate(r, config.safetensors_only) for r in refs]
        for f in found:
            if not f.present:
                raise InputError(registry.missing_message(self.name, f))
        per_role = {f.ref.role: _params_under(f.path) for f in found}
        total = sum(t for t, _ in per_role.values())
        largest = self.largest_params(per_role)
        runtime = self.plan_runtime(params, total, largest)
        if runtime.device == "cpu" and total > CPU_PARAM_LIMIT and not params.get("allow_cpu"):
            raise InputError(
                f"backend {self.name!r}: no GPU here, and these models ({total / 1e9:.2f} billion parameters) "
                "would take very long on the CPU; pass {allow_cpu} to run them anyway", params={"allow_cpu": "allow_cpu=True"})
        out = dict(params)
        out["models"] = {r.role: {k: v for k, v in r.to_json().items() if k != "role"} for r in refs}
        out["models_config"] = None  # the models are recorded in full: --again needs no config file
        self._located = {f.ref.role: f for f in found}
        self._runtime = runtime
        self._params_total = total
        self._params_largest = largest
        self._resolved = out
        return out

    def largest_params(self, per_role: dict[str, tuple[int, int]]) -> int:
        """Parameters of the largest model that must sit on the GPU at once under model offload,
        from each role's (total, largest folder)."""
        return max((big for _, big in per_role.values()), default=0)

    def replan(self, width: int, height: int) -> Runtime:
        """The memory plan again for the frame size a render has (resolve plans for 512 x 512), with
        the free memory measured at resolve (a pipeline loaded since would count against itself)."""
        rt = self._runtime
        self._runtime = self.plan_runtime(self._resolved, self._params_total, self._params_largest, width, height,
                                          free_gib=rt.free_gib)
        self._runtime.attention = rt.attention
        return self._runtime

    def select_models(self, refs: list, params: dict) -> list:
        """The models (``ModelRef``) a render with ``params`` uses, of all its backend's roles (all
        of them, unless a backend keeps alternatives: only those are located and recorded)."""
        return refs

    def models(self, params: dict) -> list[ModelSpec]:
        out = []
        for role, m in (params.get("models") or {}).items():
            if isinstance(m, dict) and "id" in m:
                out.append(ModelSpec(role, m["id"], m.get("revision"), m.get("subfolder"), m.get("weight_name")))
        return out

    # the memory plan's cost model (None: only the weights and headroom_gib decide the offload)
    image_gib: float | None = None  # denoiser activations per image of a batch at 512 x 512, fp16

    def batch_options(self, params: dict) -> tuple[list[int], int, Callable[[int], int], Callable[[int], str]]:
        """(batches to choose from, preferred first; the smallest worth keeping every model on the
        GPU for; frames the VAE decodes at once for a batch; the words for a batch)."""
        raise NotImplementedError

    def plan_runtime(self, params: dict, total_params: int, largest_params: int, width: int = 512, height: int = 512,
                     free_gib: float | None = None) -> Runtime:
        import torch

        want = params.get("device", "auto")
        if want == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif want.startswith("cuda"):
            if not torch.cuda.is_available():
                raise InputError(f"{self.name}: device {want!r} asked for, but PyTorch sees no CUDA GPU here")
            device = want
        elif want == "mps":
            if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
                raise InputError(f"{self.name}: device 'mps' asked for, but it is not available")
            device = want
        elif want == "cpu":
            device = "cpu"
        else:
            raise InputError(f"{self.name}: device {want!r}: give auto, cpu, cuda, cuda:N or mps")
        dtype = params.get("dtype", "auto")
        if dtype == "auto":
            dtype = self.preferred_dtype if device != "cpu" else "fp32"
        if device == "cpu" and dtype == "fp16":
            raise InputError(f"{self.name}: fp16 is for GPUs; on the CPU use fp32 or bf16")
        if device.startswith("cuda") and dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise InputError(f"{self.name}: this GPU has no bf16; use fp16")
        size = DTYPES[dtype]
        need = total_params * size / 2**30 + self.headroom_gib
        free = None
        offload = params.get("offload", "auto")
        batch, why = None, ""
        slicing, tiling = params.get("vae_slicing", "auto"), params.get("vae_tiling", "auto")
        if device.startswith("cuda"):
            free = free_gib if free_gib is not None else torch.cuda.mem_get_info(torch.device(device))[0] / 2**30
            if self.image_gib is not None:
                pixels = width * height / 512**2
                batches, good, decode_frames, unit = self.batch_options(params)
                choice = plan_memory(free, total_params * size / 2**30, largest_params * size / 2**30,
                                     self.image_gib * pixels, batches, good, decode_frames, VAE_FRAME_GIB * pixels,
                                     offload, unit)
                offload, batch, need = choice.offload, choice.batch, choice.need_gib
                why = f"{width}x{height}, {choice.why}"
                if slicing == "auto":
                    slicing = choice.vae_slicing
                if tiling == "auto":
                    tiling = choice.vae_tiling
            elif offload == "auto":
                offload = memory_plan(free, total_params, largest_params, size, self.headroom_gib)
        elif offload in ("auto",):
            offload = "none"
        elif offload != "none":
            raise InputError(f"{self.name}: offload={offload} needs a CUDA GPU")
        tight = offload != "none"
        if slicing == "auto":
            slicing = device != "cpu" and tight
        if tiling == "auto":
            tiling = device != "cpu" and offload == "sequential"
        if not why:
            why = (f"{device}: every model on it, the backend's own batch" if free is None else
                   f"{free:.1f} GiB free, {need:.1f} GiB wanted (weights + {self.headroom_gib:g} GiB): "
                   + ("all models on the GPU" if offload == "none" else f"{offload} offload"))
            why += f"; VAE slicing {'on' if slicing else 'off'}, tiling {'on' if tiling else 'off'}"
        import torch.nn.functional as F

        attention = "sdpa" if hasattr(F, "scaled_dot_product_attention") else "math"
        return Runtime(device, dtype, offload, bool(slicing), bool(tiling), attention,
                       None if free is None else round(free, 2), round(need, 2), batch, why)

    # --- loading ---------------------------------------------------------------------------

    def located(self, role: str):
        return self._located[role]

    def load_kwargs(self) -> dict:
        return {"torch_dtype": self._runtime.torch_dtype, "use_safetensors": True, "local_files_only": True}

    def pipeline(self, progress: Callable[[str, int, int], None] | None = None):
        """The loaded pipeline (from the cache when the same models and runtime were used last)."""
        key = json.dumps([self.name, {r: str(f.path) for r, f in self._located.items()},
                          self._runtime.placement(), self.cache_extra()], sort_keys=True, default=str)
        if _CACHE.get("key") == key:
            self.report["pipeline_cached"] = True
            return _CACHE["pipe"]
        _CACHE.clear()
        if progress is not None:
            progress("loading models", 0, 1)
        import gc
        import time

        gc.collect()
        t = time.perf_counter()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network while loading
        _quiet_libraries()
        import warnings

        from motionlib.core.errors import ModelError

        try:
            with warnings.catch_warnings():
                # diffusers >= 0.40 renames torch_dtype to dtype; the old name works in every version we take
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = self.load()
                pipe.set_progress_bar_config(disable=True)
                self.place(pipe)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as err:  # noqa: BLE001 - damaged or mismatched weights, reported in one line
            where = ", ".join(f"{role}={f.path}" for role, f in self._located.items())
            first = (str(err).strip().splitlines() or [""])[0][:300]
            raise ModelError(f"backend {self.name!r} could not load its models ({where}): "
                             f"{type(err).__name__}: {first}") from err
        self.report["load_seconds"] = round(time.perf_counter() - t, 3)
        self.report["pipeline_cached"] = False
        _CACHE.update(key=key, pipe=pipe)
        return pipe

    def cache_extra(self) -> Any:
        return None

    def load(self):
        raise NotImplementedError

    def place(self, pipe) -> None:
        rt = self._runtime
        if rt.offload == "model":
            pipe.enable_model_cpu_offload(device=rt.device)
        elif rt.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=rt.device)
        else:
            pipe.to(rt.device)
        vae = getattr(pipe, "vae", None)
        if vae is not None:
            if rt.vae_slicing and hasattr(vae, "enable_slicing"):
                vae.enable_slicing()
            if rt.vae_tiling and hasattr(vae, "enable_tiling"):
                vae.enable_tiling()

    def set_scheduler(self, pipe, name: str, **overrides) -> None:
        if name == "default":
            return
        import diffusers

        cls = {"unipc": diffusers.UniPCMultistepScheduler, "ddim": diffusers.DDIMScheduler,
               "euler": diffusers.EulerDiscreteScheduler, "dpm": diffusers.DPMSolverMultistepScheduler}[name]
        pipe.scheduler = cls.from_config(pipe.scheduler.config, **overrides)

    # --- running ---------------------------------------------------------------------------

    def generator(self, seed: int):
        """Noise is drawn on the CPU, so a seed gives the same start on any device."""
        import torch

        return torch.Generator("cpu").manual_seed(int(seed))

    def step_callback(self, progress: Callable[[str, int, int], None], total: int):
        """A ``callback_on_step_end`` reporting ``steps`` done of ``total``, across all the
        pipeline's denoising loops (Wan-Animate runs one per segment)."""
        done = [0]

        def cb(pipe, i, t, kwargs):
            done[0] += 1
            progress("steps", done[0], total)
            return kwargs

        return cb

    def start_report(self, ctx) -> None:
        paths = {}
        for role, f in self._located.items():
            p = Path(f.path)
            snap = next((q for q in (p, *p.parents) if q.parent.name == "snapshots"), None)
            paths[role] = {"path": str(p), "commit": snap.name if snap else None}
        self.report.update(runtime=self._runtime.to_json(), parameters=self._params_total, model_files=paths)

    def render(self, ctx, plan, progress) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


def _quiet_libraries() -> None:
    """diffusers / transformers print loading bars and advice; our own progress bar is enough."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def to_uint8(frames) -> np.ndarray:
    """Pipeline output (float in [0, 1], ... x H x W x 3) -> uint8 frames."""
    a = np.asarray(frames, dtype=np.float32)
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(image))
