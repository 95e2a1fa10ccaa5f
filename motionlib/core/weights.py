"""Where the ONNX pose estimators' weights are, and whether they are here (docs/estimators.md).

The ``rtmw`` and ``dwpose`` estimators need two ONNX files each: a person ``detector`` and a
whole-body ``pose`` model. Like a diffusion model (``render.models``), each is a Hugging Face id
with the file's path in that repository, or a local path, and the same models config file
(``--models-config``, else ``$MOTIONLIB_MODELS_CONFIG``, else ``models.toml`` in the per-user
config directory) changes them in an ``[rtmw]`` or ``[dwpose]`` table. Nothing is downloaded: an
id is looked up in the local Hugging Face cache, read by its layout
(``models--OWNER--NAME/snapshots/COMMIT/PATH``, the commit a ref names), so no Hub client is
needed. A ``.onnx`` file is a model itself; a ``.zip`` is one of OpenMMLab's ONNX SDK archives
(what rtmlib fetches), which holds the model as ``end2end.onnx``.

Pure standard library: ``motionlib models`` lists these without importing onnxruntime.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from motionlib.core.errors import InputError

CONFIG_ENV = "MOTIONLIB_MODELS_CONFIG"  # the same file and order as render.models.config_path
ROLES = ("detector", "pose")
SUFFIXES = (".onnx", ".zip")
_COMMIT = re.compile(r"[0-9a-f]{40}")

# estimator -> role -> default file. DWPose: the files its authors publish (ControlNet's, UniAnimate's
# and MimicMotion's annotator). RTMW: rtmlib's "performance" Wholebody models (RTMW-l, distilled
# from RTMW-x, 384x288, and YOLOX-m trained on Human-Art), from the Hugging Face mirror rtmlib
# itself falls back to (Tau-J/RTMPose mirrors download.openmmlab.com/mmpose/v1/projects/).
DEFAULTS: dict[str, dict[str, dict[str, str]]] = {
    "dwpose": {
        "detector": {"id": "yzd-v/DWPose", "weight_name": "yolox_l.onnx"},
        "pose": {"id": "yzd-v/DWPose", "weight_name": "dw-ll_ucoco_384.onnx"},
    },
    "rtmw": {
        "detector": {"id": "Tau-J/RTMPose", "subfolder": "rtmposev1/onnx_sdk",
                     "weight_name": "yolox_m_8xb8-300e_humanart-c2c7a14a.zip"},
        "pose": {"id": "Tau-J/RTMPose", "subfolder": "rtmw/onnx_sdk",
                 "weight_name": "rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122.zip"},
    },
}


@dataclass(frozen=True)
class WeightRef:
    estimator: str
    role: str
    id: str  # a Hub id (owner/name), or a local file or folder
    subfolder: str | None = None
    weight_name: str | None = None  # None: ``id`` is the file itself
    revision: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def file(self) -> str | None:
        """The file's path below ``id`` (None when ``id`` is the file)."""
        parts = [p for p in (self.subfolder, self.weight_name) if p]
        return "/".join(parts) if parts else None

    @property
    def label(self) -> str:
        return self.id + (f" ({self.file})" if self.file else "") + (f"@{self.revision}" if self.revision else "")

    @property
    def is_local(self) -> bool:
        return looks_local(self.id)


@dataclass
class Found:
    ref: WeightRef
    path: Path | None  # the .onnx or .zip file; None when missing
    size: int = 0
    problem: str | None = None

    @property
    def present(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict:
        return {"estimator": self.ref.estimator, "role": self.ref.role, **self.ref.to_json(), "present": self.present,
                "path": str(self.path) if self.path else None, "weight_bytes": self.size, "problem": self.problem}


_SHA: dict[tuple[str, int, int], str] = {}


CACHE_ENV = "MOTIONLIB_CACHE_DIR"


def cache_dir() -> Path:
    """``$MOTIONLIB_CACHE_DIR``, else the per-user cache directory (~/.cache/motionlib on Linux):
    fetched models, compiled kernels, a shared library's staging and fetched files."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("motionlib", appauthor=False))


def file_sha256(path: Path) -> str:
    """A model file's SHA-256, remembered for as long as its path, size and modification time
    stay (ingest asks for it often: the settings digest carries it)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA[key] = h.hexdigest()
    return _SHA[key]


def looks_local(model_id: str) -> bool:
    """A Hub id is exactly ``owner/name``; anything else, or anything that exists here, is a path."""
    return (model_id.startswith(("/", "./", "../", "~")) or model_id.count("/") != 1
            or Path(model_id).expanduser().exists())


def config_path(explicit: str | os.PathLike | None = None) -> tuple[Path | None, bool]:
    """The models config to read and whether it was asked for (an asked-for file must exist)."""
    if explicit:
        return Path(explicit).expanduser(), True
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser(), True
    from platformdirs import user_config_dir

    return Path(user_config_dir("motionlib")) / "models.toml", False


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment says now ($HF_HUB_CACHE, else $HF_HOME/hub,
    else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub). huggingface_hub reads
    these once, when it is imported; reading them per call keeps a long-lived process (a test, a
    notebook) looking where its environment points."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _ref(estimator: str, role: str, value, where: str) -> WeightRef:
    """A config value: a path to the file (``.onnx``/``.zip``), a Hub id or local folder that holds
    the default file name (and, for a Hub id, its default subfolder), or a table with ``id`` and
    optionally ``subfolder``, ``weight_name`` and ``revision``."""
    default = DEFAULTS[estimator][role]
    if isinstance(value, str):
        value = {"id": value}
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"].strip():
        raise InputError(f"{where}: give a path or Hugging Face id, or a table with id (and subfolder, weight_name, revision)")
    extra = set(value) - {"id", "subfolder", "weight_name", "revision"}
    if extra:
        raise InputError(f"{where}: unknown key {', '.join(sorted(extra))} (keys: id, subfolder, weight_name, revision)")
    for k in ("subfolder", "weight_name", "revision"):
        if value.get(k) is not None and not isinstance(value[k], str):
            raise InputError(f"{where}: {k} must be a string")
    model_id = value["id"].strip()
    sub, name = value.get("subfolder"), value.get("weight_name")
    local = looks_local(model_id)
    if name is None and not (local and (model_id.endswith(SUFFIXES) or Path(model_id).expanduser().is_file())):
        name = default["weight_name"]  # a folder or repository holding the usual file
        if sub is None and not local:
            sub = default.get("subfolder")
    return WeightRef(estimator, role, model_id, sub, name, value.get("revision"))


def defaults(estimator: str) -> dict[str, WeightRef]:
    return {role: _ref(estimator, role, v, f"default {estimator}.{role}") for role, v in DEFAULTS[estimator].items()}


def load(estimator: str, explicit: str | os.PathLike | None = None) -> tuple[dict[str, WeightRef], str]:
    """(role -> the file to use, where that came from) for ``estimator``. Tables of the config
    other than the estimators' (the diffusion backends') are render.models' to check."""
    if estimator not in DEFAULTS:
        raise InputError(f"{estimator!r} is not an estimator with weights (those: {', '.join(DEFAULTS)})")
    refs = defaults(estimator)
    path, required = config_path(explicit)
    if path is None or not path.is_file():
        if required:
            raise InputError(f"models config {path} does not exist")
        return refs, "built-in defaults"
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(f"models config {path}: {err}") from None
    table = doc.get(estimator)
    if table is None:
        return refs, str(path)
    if not isinstance(table, dict):
        raise InputError(f"models config {path}: [{estimator}] must be a table")
    for role, value in table.items():
        if role not in refs:
            raise InputError(f"models config {path}: [{estimator}] has no role {role!r} (roles: {', '.join(ROLES)})")
        refs[role] = _ref(estimator, role, value, f"models config {path}: {estimator}.{role}")
    return refs, str(path)


def locate(ref: WeightRef) -> Found:
    """The file ``ref`` names, in a local folder or the local Hugging Face cache (never the
    network), checked to be an ONNX model or an archive holding one."""
    if ref.is_local:
        base = Path(ref.id).expanduser()
        path = base / ref.file if ref.file else base
        if not base.exists():
            return Found(ref, None, 0, f"{base} does not exist")
        if not path.is_file():
            return Found(ref, None, 0, f"{path} is missing")
    else:
        path, problem = _cached(ref)
        if path is None:
            return Found(ref, None, 0, problem)
    if path.suffix.lower() not in SUFFIXES:
        return Found(ref, None, 0, f"{path.name} is not an ONNX model (.onnx, or an ONNX SDK .zip holding one)")
    if path.suffix.lower() == ".zip":
        try:
            member = zip_member(path)
        except (OSError, zipfile.BadZipFile):
            return Found(ref, None, 0, f"{path.name} is not a readable zip archive")
        if member is None:
            return Found(ref, None, 0, f"{path.name} holds no .onnx model")
    return Found(ref, path, path.stat().st_size)


def _cached(ref: WeightRef) -> tuple[Path | None, str | None]:
    repo = hf_cache_dir() / ("models--" + ref.id.replace("/", "--"))
    if not repo.is_dir():
        return None, "not in the local Hugging Face cache"
    revision = ref.revision or "main"
    if _COMMIT.fullmatch(revision):
        commit = revision
    else:
        try:
            commit = (repo / "refs" / revision).read_text().strip()
        except OSError:
            return None, f"revision {revision} is not in the local Hugging Face cache"
    path = repo / "snapshots" / commit / (ref.file or "")
    if not ref.file or not path.is_file():
        return None, f"{ref.file} is not in the local Hugging Face cache"
    return path, None


def zip_member(path: Path) -> str | None:
    """The ONNX model inside an ONNX SDK archive: its ``end2end.onnx``, else its only ``.onnx``."""
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.lower().endswith(".onnx")]
    ends = [n for n in names if n.rsplit("/", 1)[-1] == "end2end.onnx"]
    if ends:
        return ends[0]
    return names[0] if len(names) == 1 else None


def fetch_hint(ref: WeightRef) -> str:
    """How to put a missing file where motionlib looks."""
    if ref.is_local:
        return f"a correct local path (set [{ref.estimator}] {ref.role} in the models config)"
    rev = f" --revision {ref.revision}" if ref.revision else ""
    return f"`hf download {ref.id} {ref.file}{rev}`"


def missing_message(found: Found) -> str:
    ref = found.ref
    return (f"estimator {ref.estimator!r} needs its {ref.role} model {ref.label}, which is not usable here: "
            f"{found.problem}; fetch it with {fetch_hint(ref)} (or set [{ref.estimator}] {ref.role} in the models config)")
