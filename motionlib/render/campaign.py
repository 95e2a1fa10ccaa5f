"""Campaign files (TOML): many renders with shared defaults, validated against
schemas/campaign.schema.json before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

from motionlib.core.errors import InputError
from motionlib.core.names import file_stem, validate_name
from motionlib.render.pipeline import RenderJob

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "campaign.schema.json"
MAX_BYTES = 1 << 20
MAX_JOBS = 10_000
FIELDS = ("backend", "retarget", "anchor_frame", "size", "seed", "prompt", "negative_prompt", "threshold", "params")


def _schema() -> dict:
    from importlib import resources

    try:  # installed package data first, then the source tree
        return json.loads(resources.files("motionlib").joinpath("schemas/campaign.schema.json").read_text())
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return json.loads(SCHEMA.read_text())


def load(path: Path) -> tuple[str, Path, list[RenderJob]]:
    """(campaign name, output directory, jobs) of a campaign file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from jsonschema import Draft202012Validator

    path = Path(path)
    if not path.is_file():
        raise InputError(f"campaign file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise InputError(f"{path.name} is {path.stat().st_size:,} bytes; a campaign file may have at most "
                         f"{MAX_BYTES:,} (split it)")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path.name} is not valid TOML: {err}") from None
    except RecursionError:
        raise InputError(f"{path.name} nests arrays or tables too deeply") from None
    from jsonschema.exceptions import best_match

    errors = list(Draft202012Validator(_schema()).iter_errors(doc))
    if errors:
        e = best_match(errors)
        while e.context:  # anyOf / oneOf: say which alternative came closest, and why
            e = best_match(e.context)
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        message = {"not": "give 'identity' or 'identities', not both",
                   "oneOf": "give 'motion' or 'motions', not both"}.get(e.validator, e.message)
        raise InputError(f"{path.name}: {where}: {message}" + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""))
    try:
        name = validate_name(doc.get("name") or path.stem)
    except InputError as err:
        raise InputError(f"{path.name}: name: {err}") from None
    out_dir = path.parent / doc.get("output_dir", f"renders/{file_stem(name)}")
    count = sum(len(raw.get("motions") or [1]) * len(raw.get("identities") or [1]) for raw in doc["jobs"])
    if count > MAX_JOBS:
        raise InputError(f"{path.name} makes {count:,} renders; a campaign may make at most {MAX_JOBS:,} (split it)")
    defaults = doc.get("defaults", {})
    jobs: list[RenderJob] = []
    for i, raw in enumerate(doc["jobs"]):
        settings = {**defaults, **{k: raw[k] for k in FIELDS if k in raw}}
        if "params" in defaults and "params" in raw:
            settings["params"] = {**defaults["params"], **raw["params"]}
        motions = raw.get("motions") or [raw["motion"]]
        identities = raw.get("identities") or [raw["identity"]]
        if raw.get("output") and len(motions) * len(identities) > 1:
            raise InputError(f"{path.name}: jobs/{i}: 'output' names one file but the job makes "
                             f"{len(motions) * len(identities)} renders")
        for m in motions:
            for ident in identities:
                jobs.append(RenderJob(
                    motion=m, identity=ident, backend=settings.get("backend", "pose"),
                    output=str(out_dir / raw["output"]) if raw.get("output") else None,
                    size=str(settings["size"]) if "size" in settings else None,
                    retarget=settings.get("retarget", "bones"), anchor_frame=settings.get("anchor_frame"),
                    seed=settings.get("seed"),
                    prompt=settings.get("prompt", ""), negative_prompt=settings.get("negative_prompt", ""),
                    threshold=float(settings.get("threshold", 0.3)), params=dict(settings.get("params", {})),
                    campaign=name,
                ))
    return name, out_dir, jobs
