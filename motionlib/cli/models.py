"""`motionlib models`: what each diffusion backend, ONNX pose estimator and the Tasks estimator need
and whether it is on this machine; `motionlib models fetch pose`: the Tasks estimator's model into
the user cache."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from typer.core import TyperGroup

from motionlib.cli.app import app, console, handles_errors, print_json

ESTIMATOR_MODELS = ("pose",)  # names `models` and `models fetch` take besides the diffusion backends


class _ListByDefault(TyperGroup):
    """`motionlib models [BACKEND...]` lists, as it always did; `motionlib models fetch NAME` fetches.
    Anything that is not a subcommand goes to ``list``."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


models_app = typer.Typer(
    cls=_ListByDefault,
    help="List the models each diffusion backend and the Tasks pose estimator need, where they are looked "
         "for and which are present (`motionlib models [BACKEND...]`); fetch the estimator's model "
         "(`motionlib models fetch pose`).",
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(models_app, name="models", rich_help_panel="Render")


@models_app.command("list")
@handles_errors
def list_models(
    ctx: typer.Context,
    backend: Annotated[List[str], typer.Argument(help="Backends or estimators to show (default: all diffusion backends, ONNX pose estimators and the Tasks estimator's model); pose: only the latter.", show_default=False)] = None,
    models_config: Annotated[Optional[Path], typer.Option("--models-config", help="Models TOML (default: $MOTIONLIB_MODELS_CONFIG, else models.toml in the user config directory).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every model with its state as JSON.")] = False,
):
    """List the models each diffusion backend and pose estimator needs, where they are looked for, and
    which are present (the default subcommand)."""
    from motionlib.core import weights
    from motionlib.core.errors import InputError
    from motionlib.render import models as registry

    config = registry.load_config(models_config)
    asked = list(dict.fromkeys(backend or [*registry.DEFAULTS, *weights.DEFAULTS, *ESTIMATOR_MODELS]))
    for n in asked:
        if n not in registry.DEFAULTS and n not in weights.DEFAULTS and n not in ESTIMATOR_MODELS:
            raise InputError(f"{n!r} is not a diffusion backend ({', '.join(registry.DEFAULTS)}), an ONNX estimator "
                             f"({', '.join(weights.DEFAULTS)}) or an estimator's model ({', '.join(ESTIMATOR_MODELS)})")
    rows, onnx_rows = [], []
    for n in asked:
        if n in weights.DEFAULTS:
            refs, _ = weights.load(n, models_config)
            for ref in refs.values():
                found = weights.locate(ref)
                row = found.to_json()
                if not found.present:
                    row["fetch"] = weights.fetch_hint(ref)
                onnx_rows.append(row)
        elif n in registry.DEFAULTS:
            for ref in config.refs(n):
                found = registry.locate(ref, config.safetensors_only)
                row = {"backend": n, **found.to_json()}
                if not found.present:
                    row["fetch"] = registry.fetch_hint(ref)
                note = registry.UNVERIFIED.get((n, ref.role))
                if note and ref.id == registry.DEFAULTS[n][ref.role]["id"]:
                    row["note"] = note  # a default id that could not be checked against its repository
                rows.append(row)
    estimator_rows = [_estimator_row(n) for n in asked if n in ESTIMATOR_MODELS]
    if as_json:
        print_json({"config": config.source, "safetensors_only": config.safetensors_only, "models": rows,
                    "estimators": onnx_rows, "estimator_models": estimator_rows})
        return
    from rich.table import Table

    out = console()
    if rows or onnx_rows:
        out.print(f"models config: {config.source}" + ("" if config.safetensors_only else " (pickle weights allowed)"))
    listed = []
    for title, key, items in (("backend", "backend", rows), ("estimator", "estimator", onnx_rows)):
        if not items:
            continue
        t = Table(box=None, header_style="bold", pad_edge=False)
        t.add_column(title, no_wrap=True)
        t.add_column("role", no_wrap=True)
        t.add_column("model", overflow="fold")
        t.add_column("state", no_wrap=True)
        for r in items:
            where = "/".join(p for p in (r.get("subfolder"), r.get("weight_name")) if p)
            model = r["id"] + (f" [dim]{where}[/dim]" if where else "")
            state = f"[green]present[/green] {_size(r['weight_bytes'])}" if r["present"] else "[red]missing[/red]"
            t.add_row(r[key], r["role"], model, state)
        if listed:
            out.print()
        out.print(t)
        listed += [(r[key], r) for r in items]
    missing = [(who, r) for who, r in listed if not r["present"]]
    if missing:
        out.print(f"\n{len(missing)} of {len(listed)} missing (nothing is downloaded at render or ingest time):")
        for who, r in missing:
            out.print(f"  {who} {r['role']}: {r['problem']}", style="red")
        out.print("to fetch them:")
        for hint in dict.fromkeys(r["fetch"] for _, r in missing):
            out.print(f"  {hint.strip(chr(96))}", soft_wrap=True)  # a command to copy: never folded
    for r in rows:
        if r.get("note"):
            out.print(f"note: {r['backend']} {r['role']} = {r['id']}: {r['note']}", style="yellow")
    for r in estimator_rows:
        if listed:
            out.print()
        out.print(f"ingest {r['role']} model ({r['used_by']}): {r['weight_name']}")
        if r["present"]:
            out.print(f"  [green]present[/green] {_size(r['weight_bytes'])}  {r['path']}")
            out.print(f"  sha256 {r['sha256']} ({r['verified']})")
        else:
            style = "red" if r["needed"] else "yellow"
            out.print(f"  [{style}]missing[/{style}]: {r['problem']}")
            out.print(f"  to fetch it (once; ingest then finds it offline): {r['fetch'].strip(chr(96))}")


def _estimator_row(name: str) -> dict:
    from motionlib.ingest.estimators import mediapipe as mpe
    from motionlib.ingest.estimators import models

    row = models.locate(models.MODELS[name]).to_json()
    legacy = mpe.legacy_available()
    row["needed"] = not legacy
    row["used_by"] = ("--estimator mediapipe-tasks; legacy mediapipe-pose is the default here" if legacy else
                      "the default estimator on this Python, mediapipe-tasks")
    return row


@models_app.command("fetch")
@handles_errors
def fetch_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model to fetch: pose (the Tasks estimator's pose landmarker, about 9 MB).")],
    url: Annotated[Optional[str], typer.Option("--url", help="Fetch from this address instead of the publisher's: a mirror, or file:PATH of a copy fetched on another machine. The same checks apply.")] = None,
    digest: Annotated[Optional[str], typer.Option("--sha256", help="Require this SHA-256 (default: the digest recorded at the first fetch: none is published with the file).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even when a good copy is cached.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model's state as JSON.")] = False,
):
    """Download an estimator's model into the user cache (checked, bounded, complete or nothing), once:
    ingest finds it there afterwards, offline."""
    from motionlib.core.errors import InputError
    from motionlib.ingest.estimators import models

    if name not in models.MODELS:
        raise InputError(f"{name!r} is not a model motionlib fetches (models: {', '.join(models.MODELS)})")
    model = models.MODELS[name]
    before = models.locate(model)
    recorded = models.recorded_digest(before.path)
    err = console(stderr=True)
    show = sys.stderr.isatty() and not as_json
    if show:
        err.print(f"fetching {model.file} from {url or model.url} ...")

    def progress(done: int, total: int | None) -> None:
        if show and (done == total or done % (1 << 20) < models.CHUNK):
            sys.stderr.write(f"\r  {_size(done)}" + (f" of {_size(total)}" if total else "") + " ")
            sys.stderr.flush()

    found = models.fetch(model, url=url, digest=digest, force=force, progress=progress)
    if show:
        sys.stderr.write("\n")
    kept = before.present and not force and found.sha256 == before.sha256 and (digest is None or found.sha256 == digest.strip().lower())
    row = {**found.to_json(), "fetched": not kept}
    if as_json:
        print_json(row)
        return
    out = console()
    if kept:
        out.print(f"{model.name}: {found.path} is there already ({_size(row['weight_bytes'])}, sha256 {found.sha256}); "
                  "--force fetches it again")
        return
    out.print(f"{model.name}: {found.path} ({_size(row['weight_bytes'])})")
    if model.sha256 or digest:
        how = " (as required)"
    elif recorded:
        how = " (the digest recorded at the first fetch)"
    else:
        how = " (no digest is published for it: this one is recorded now, and later uses are checked against it)"
    out.print(f"  sha256 {found.sha256}{how}")


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
