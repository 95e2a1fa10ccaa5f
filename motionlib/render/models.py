"""Which model weights each diffusion backend needs, where they come from, and whether they are here.

A model is named by a Hugging Face id or a local path (``id``), optionally with ``subfolder``,
``weight_name`` and ``revision``. The defaults below are the usual public checkpoints; a TOML file
(``--models-config``, else ``$MOTIONLIB_MODELS_CONFIG``, else ``models.toml`` in the per-user config
directory) replaces any of them, and ``--model ROLE=ID`` replaces one for a single render. Nothing
is downloaded at render time: a model is either a local folder or already in the local Hugging
Face cache. Weights must be safetensors unless the config sets ``safetensors_only = false``.
See docs/models.md.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from motionlib.core.errors import InputError
from motionlib.core.weights import config_path, hf_cache_dir, looks_local  # one models file, one cache, one id rule for renders and estimators

CONFIG_ENV = "MOTIONLIB_MODELS_CONFIG"

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
OPENPOSE_CN = "lllyasviel/control_v11p_sd15_openpose"
IP_ADAPTER = {"id": "h94/IP-Adapter", "subfolder": "models", "weight_name": "ip-adapter_sd15.safetensors"}
IP_IMAGE_ENCODER = {"id": "h94/IP-Adapter", "subfolder": "models/image_encoder"}

# backend -> role -> default model
DEFAULTS: dict[str, dict[str, dict]] = {
    "controlnet": {
        "base": {"id": SD15},
        "controlnet": {"id": OPENPOSE_CN},
        "ip_adapter": IP_ADAPTER,
        "image_encoder": IP_IMAGE_ENCODER,
    },
    "animatediff": {
        "base": {"id": SD15},
        "controlnet": {"id": OPENPOSE_CN},
        "motion_adapter": {"id": "guoyww/animatediff-motion-adapter-v1-5-3"},
        "ip_adapter": IP_ADAPTER,
        "image_encoder": IP_IMAGE_ENCODER,
    },
    "wan-animate": {
        "pipeline": {"id": "Wan-AI/Wan2.2-Animate-14B-Diffusers"},
    },
    # the ids diffusers' Wan-Animate-2 page names (docs/source/en/api/pipelines/wan_animate_2.md);
    # only one of the two is used by a render (-p distilled=true takes the second)
    "wan-animate-2": {
        "pipeline": {"id": "Wan-AI/Wan2.2-Animate-2-14B-Diffusers"},
        "distilled": {"id": "Wan-AI/Wan2.2-Animate-2-14B-Distilled-Diffusers"},
    },
}

# default ids motionlib has not seen working (said by `motionlib models` while they are the ones used)
UNVERIFIED = {
    ("wan-animate-2", "pipeline"): "id from diffusers' Wan-Animate-2 docs; its files not checked by motionlib",
    ("wan-animate-2", "distilled"): "id from diffusers' Wan-Animate-2 docs, not seen on the Hub; unverified",
}

# what each role is: a whole diffusers pipeline folder, one model folder, or one weights file
KINDS = {"base": "pipeline", "pipeline": "pipeline", "distilled": "pipeline", "controlnet": "model", "motion_adapter": "model",
         "image_encoder": "model", "ip_adapter": "file"}
WEIGHT_SUFFIXES = (".safetensors",)
NOT_LOADED = ("safety_checker",)  # pipeline components motionlib never loads
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class ModelRef:
    role: str
    id: str
    subfolder: str | None = None
    weight_name: str | None = None
    revision: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def label(self) -> str:
        where = "/".join(p for p in (self.subfolder, self.weight_name) if p)
        return f"{self.id}" + (f" ({where})" if where else "") + (f"@{self.revision}" if self.revision else "")

    @property
    def is_local(self) -> bool:
        return looks_local(self.id)


@dataclass
class Located:
    ref: ModelRef
    path: Path | None  # the folder (pipeline / model) or file (weights) to load; None if missing
    weight_bytes: int = 0
    problem: str | None = None  # why it is missing or unusable

    @property
    def present(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict:
        return {"role": self.ref.role, **self.ref.to_json(), "present": self.present,
                "path": str(self.path) if self.path else None, "weight_bytes": self.weight_bytes,
                "problem": self.problem}


@dataclass
class ModelConfig:
    models: dict[str, dict[str, ModelRef]]
    safetensors_only: bool = True
    source: str = "built-in defaults"

    def refs(self, backend: str, overrides: dict | None = None) -> list[ModelRef]:
        table = dict(self.models[backend])
        for role, value in (overrides or {}).items():
            if role not in table:
                raise InputError(f"{{model={role}=...}}: backend {backend!r} has no model role {role!r} "
                                 f"(roles: {', '.join(table)})", params=["model"])
            table[role] = _ref(role, value, f"{{model}} {role}")
        return list(table.values())


def _ref(role: str, value, where: str) -> ModelRef:
    """``where`` says where the value came from in messages (it may hold the field ``{model}``)."""
    if isinstance(value, str):
        value = {"id": value}
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"].strip():
        raise InputError(f"{where}: give a model id or path, or a table with id (and subfolder, weight_name, revision)", params=["model"])
    extra = set(value) - {"id", "subfolder", "weight_name", "revision"}
    if extra:
        raise InputError(f"{where}: unknown key {', '.join(sorted(extra))} (keys: id, subfolder, weight_name, revision)", params=["model"])
    for k in ("subfolder", "weight_name", "revision"):
        if value.get(k) is not None and not isinstance(value[k], str):
            raise InputError(f"{where}: {k} must be a string", params=["model"])
    if KINDS[role] == "file" and not value.get("weight_name"):
        raise InputError(f"{where}: {role} needs weight_name (the weights file)", params=["model"])
    return ModelRef(role, value["id"].strip(), value.get("subfolder"), value.get("weight_name"), value.get("revision"))


def load_config(explicit: str | os.PathLike | None = None) -> ModelConfig:
    path, required = config_path(explicit)
    models = {b: {r: _ref(r, v, f"default {b}.{r}") for r, v in roles.items()} for b, roles in DEFAULTS.items()}
    if path is None or not path.is_file():
        if required:
            raise InputError(f"models config {path} does not exist")
        return ModelConfig(models)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(f"models config {path}: {err}") from None
    safetensors_only = doc.pop("safetensors_only", True)
    if not isinstance(safetensors_only, bool):
        raise InputError(f"models config {path}: safetensors_only must be true or false")
    from motionlib.core.weights import DEFAULTS as ESTIMATOR_WEIGHTS

    for backend, roles in doc.items():
        if backend in ESTIMATOR_WEIGHTS:  # the pose estimators' weights: core.weights reads those
            continue
        if backend not in models:
            raise InputError(f"models config {path}: unknown backend [{backend}] (backends: {', '.join(models)})")
        if not isinstance(roles, dict):
            raise InputError(f"models config {path}: [{backend}] must be a table")
        for role, value in roles.items():
            if role not in models[backend]:
                raise InputError(f"models config {path}: [{backend}] has no role {role!r} "
                                 f"(roles: {', '.join(models[backend])})")
            models[backend][role] = _ref(role, value, f"models config {path}: {backend}.{role}")
    return ModelConfig(models, safetensors_only, str(path))


# --- finding weights on disk ------------------------------------------------------------------


def locate(ref: ModelRef, safetensors_only: bool = True) -> Located:
    """Find ``ref`` in a local folder or the local Hugging Face cache, never on the network, and
    check that its weights are there (safetensors unless allowed otherwise)."""
    root, problem = _root(ref)
    if root is None:
        return Located(ref, None, 0, problem)
    base = root / ref.subfolder if ref.subfolder else root
    kind = KINDS[ref.role]
    if kind == "file":
        path = base / ref.weight_name
        if not path.is_file():
            return Located(ref, None, 0, f"{path} is missing")
        if safetensors_only and path.suffix not in WEIGHT_SUFFIXES:
            return Located(ref, None, 0, f"{path.name} is not safetensors (set safetensors_only = false to allow pickle weights)")
        return Located(ref, path, path.stat().st_size)
    if not base.is_dir():
        return Located(ref, None, 0, f"{base} is missing")
    folders = [base]
    if kind == "pipeline":
        index = base / "model_index.json"
        if not index.is_file():
            return Located(ref, None, 0, f"{index} is missing (not a diffusers pipeline folder)")
        folders = weighted_components(base, index)
    total = 0
    for folder in folders:
        size, why = _weights_in(folder, safetensors_only)
        if why:
            return Located(ref, None, 0, why)
        total += size
    return Located(ref, base, total)


def _root(ref: ModelRef) -> tuple[Path | None, str | None]:
    if ref.is_local:
        p = Path(ref.id).expanduser()
        return (p, None) if p.exists() else (None, f"{p} does not exist")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return None, "huggingface_hub is not installed (pip install 'motionlib[diffusion]')"
    try:
        return Path(snapshot_download(ref.id, revision=ref.revision, local_files_only=True,
                                      cache_dir=hf_cache_dir())), None
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None, "not in the local Hugging Face cache"


def weighted_components(base: Path, index: Path) -> list[Path]:
    """Component folders of a pipeline that hold a model (they have a config.json)."""
    import json

    try:
        entries = json.loads(index.read_text())
    except (OSError, ValueError):
        return [base / "__unreadable_model_index__"]
    out = []
    for name, value in entries.items():
        if name.startswith("_") or name in NOT_LOADED or not isinstance(value, list) or value[0] is None:
            continue
        folder = base / name
        if not folder.is_dir():
            out.append(folder)  # reported missing by _weights_in
        elif (folder / "config.json").is_file():
            out.append(folder)
    return out


def _weights_in(folder: Path, safetensors_only: bool) -> tuple[int, str | None]:
    if not folder.is_dir():
        return 0, f"{folder} is missing"
    if not (folder / "config.json").is_file():
        return 0, f"{folder / 'config.json'} is missing"
    files = [p for p in folder.iterdir() if p.is_file()]
    safe = [p for p in files if p.suffix in WEIGHT_SUFFIXES]
    pickled = [p for p in files if p.suffix in PICKLE_SUFFIXES]
    index = [p for p in files if p.name.endswith(".safetensors.index.json")]
    if index:  # sharded: every shard it lists must be here
        import json

        try:
            shards = set(json.loads(index[0].read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError):
            return 0, f"{index[0]} is unreadable"
        gone = sorted(s for s in shards if not (folder / s).is_file())
        if gone:
            return 0, f"{folder} lacks shard {gone[0]}" + (f" and {len(gone) - 1} more" if len(gone) > 1 else "")
    if safe:
        return sum(p.stat().st_size for p in safe), None
    if pickled:
        if safetensors_only:
            return 0, (f"{folder} has only pickle weights ({pickled[0].name}); safetensors are required "
                       "(set safetensors_only = false in the models config to allow them)")
        return sum(p.stat().st_size for p in pickled), None
    return 0, f"{folder} holds no weights file"


def fetch_hint(ref: ModelRef) -> str:
    """How to put a missing model where motionlib looks."""
    if ref.is_local:
        return f"a correct local path (point {ref.role} at another folder in the models config)"
    rev = f" --revision {ref.revision}" if ref.revision else ""
    if KINDS[ref.role] == "file":
        target = "/".join(p for p in (ref.subfolder, ref.weight_name) if p)
        return f"`hf download {ref.id} {target}{rev}`"
    include = f' --include "{ref.subfolder}/*"' if ref.subfolder else ' --include "*.json" "*.txt" "*.safetensors"'
    if KINDS[ref.role] == "pipeline":  # the component folders only, not single-file checkpoints at the top
        include = ' --include "model_index.json" "*/*.json" "*/*.txt" "*/*.model" "*/*.safetensors"'
    return f"`hf download {ref.id}{include}{rev}`"


def missing_message(backend: str, found: Located) -> str:
    ref = found.ref
    return (f"backend {backend!r} needs model {ref.role} = {ref.label}, which is not usable here: "
            f"{found.problem}; fetch it with {fetch_hint(ref)} (or set [{backend}] {ref.role} in the models config)")
