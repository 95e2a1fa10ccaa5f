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

    def to_json(self) -> dict:
        return asdict(self)

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
        total, largest = 0, 0
        for f in found:
            t, big = _params_under(f.path)
            total, largest = total + t, max(largest, big)
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
        self._resolved = out
        return out

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

    def plan_runtime(self, params: dict, total_params: int, largest_params: int) -> Runtime:
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
        if device.startswith("cuda"):
            free = torch.cuda.mem_get_info(torch.device(device))[0] / 2**30
            if offload == "auto":
                offload = memory_plan(free, total_params, largest_params, size, self.headroom_gib)
        elif offload in ("auto",):
            offload = "none"
        elif offload != "none":
            raise InputError(f"{self.name}: offload={offload} needs a CUDA GPU")
        slicing, tiling = params.get("vae_slicing", "auto"), params.get("vae_tiling", "auto")
        tight = offload != "none"
        if slicing == "auto":
            slicing = device != "cpu" and tight
        if tiling == "auto":
            tiling = device != "cpu" and offload == "sequential"
        import torch.nn.functional as F

        attention = "sdpa" if hasattr(F, "scaled_dot_product_attention") else "math"
        return Runtime(device, dtype, offload, bool(slicing), bool(tiling), attention,
                       None if free is None else round(free, 2), round(need, 2))

    # --- loading ---------------------------------------------------------------------------

    def located(self, role: str):
        return self._located[role]

    def load_kwargs(self) -> dict:
        return {"torch_dtype": self._runtime.torch_dtype, "use_safetensors": True, "local_files_only": True}

    def pipeline(self, progress: Callable[[str, int, int], None] | None = None):
        """The loaded pipeline (from the cache when the same models and runtime were used last)."""
        key = json.dumps([self.name, {r: str(f.path) for r, f in self._located.items()},
                          self._runtime.to_json(), self.cache_extra()], sort_keys=True, default=str)
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
