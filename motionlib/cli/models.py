"""`motionlib models`: what each diffusion backend and ONNX pose estimator needs and whether it is
on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from motionlib.cli.app import app, console, handles_errors, print_json


@app.command(rich_help_panel="Render")
@handles_errors
def models(
    backend: Annotated[List[str], typer.Argument(help="Backends or estimators to show (default: all diffusion backends and ONNX pose estimators).", show_default=False)] = None,
    models_config: Annotated[Optional[Path], typer.Option("--models-config", help="Models TOML (default: $MOTIONLIB_MODELS_CONFIG, else models.toml in the user config directory).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every model with its state as JSON.")] = False,
):
    """List the models each diffusion backend and pose estimator needs, where they are looked for, and which are present."""
    from motionlib.core import weights
    from motionlib.core.errors import InputError
    from motionlib.render import models as registry

    config = registry.load_config(models_config)
    names = list(dict.fromkeys(backend or [*registry.DEFAULTS, *weights.DEFAULTS]))
    for n in names:
        if n not in registry.DEFAULTS and n not in weights.DEFAULTS:
            raise InputError(f"{n!r} is not a diffusion backend or an estimator with models (backends: "
                             f"{', '.join(registry.DEFAULTS)}; estimators: {', '.join(weights.DEFAULTS)})")
    rows, estimator_rows = [], []
    for n in names:
        if n in weights.DEFAULTS:
            refs, _ = weights.load(n, models_config)
            for ref in refs.values():
                found = weights.locate(ref)
                row = found.to_json()
                if not found.present:
                    row["fetch"] = weights.fetch_hint(ref)
                estimator_rows.append(row)
            continue
        for ref in config.refs(n):
            found = registry.locate(ref, config.safetensors_only)
            row = {"backend": n, **found.to_json()}
            if not found.present:
                row["fetch"] = registry.fetch_hint(ref)
            rows.append(row)
    if as_json:
        print_json({"config": config.source, "safetensors_only": config.safetensors_only, "models": rows,
                    "estimators": estimator_rows})
        return
    from rich.table import Table

    out = console()
    out.print(f"models config: {config.source}" + ("" if config.safetensors_only else " (pickle weights allowed)"))
    listed = []
    for title, key, items in (("backend", "backend", rows), ("estimator", "estimator", estimator_rows)):
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


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
