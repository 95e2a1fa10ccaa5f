"""`motionlib models`: what each diffusion backend needs and whether it is on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from motionlib.cli.app import app, console, handles_errors, print_json


@app.command(rich_help_panel="Render")
@handles_errors
def models(
    backend: Annotated[List[str], typer.Argument(help="Backends to show (default: all diffusion backends).", show_default=False)] = None,
    models_config: Annotated[Optional[Path], typer.Option("--models-config", help="Models TOML (default: $MOTIONLIB_MODELS_CONFIG, else models.toml in the user config directory).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every model with its state as JSON.")] = False,
):
    """List the models each diffusion backend needs, where they are looked for, and which are present."""
    from motionlib.core.errors import InputError
    from motionlib.render import models as registry

    config = registry.load_config(models_config)
    names = list(dict.fromkeys(backend or registry.DEFAULTS))
    for n in names:
        if n not in registry.DEFAULTS:
            raise InputError(f"{n!r} is not a diffusion backend (backends with models: {', '.join(registry.DEFAULTS)})")
    rows = []
    for n in names:
        for ref in config.refs(n):
            found = registry.locate(ref, config.safetensors_only)
            row = {"backend": n, **found.to_json()}
            if not found.present:
                row["fetch"] = registry.fetch_hint(ref)
            note = registry.UNVERIFIED.get((n, ref.role))
            if note and ref.id == registry.DEFAULTS[n][ref.role]["id"]:
                row["note"] = note
            rows.append(row)
    if as_json:
        print_json({"config": config.source, "safetensors_only": config.safetensors_only, "models": rows})
        return
    from rich.table import Table

    out = console()
    out.print(f"models config: {config.source}" + ("" if config.safetensors_only else " (pickle weights allowed)"))
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("backend", no_wrap=True)
    t.add_column("role", no_wrap=True)
    t.add_column("model", overflow="fold")
    t.add_column("state", no_wrap=True)
    for r in rows:
        where = "/".join(p for p in (r.get("subfolder"), r.get("weight_name")) if p)
        model = r["id"] + (f" [dim]{where}[/dim]" if where else "")
        state = f"[green]present[/green] {_size(r['weight_bytes'])}" if r["present"] else "[red]missing[/red]"
        t.add_row(r["backend"], r["role"], model, state)
    out.print(t)
    missing = [r for r in rows if not r["present"]]
    if missing:
        out.print(f"\n{len(missing)} of {len(rows)} missing (nothing is downloaded at render time):")
        for r in missing:
            out.print(f"  {r['backend']} {r['role']}: {r['problem']}", style="red")
        out.print("to fetch them:")
        for hint in dict.fromkeys(r["fetch"] for r in missing):
            out.print(f"  {hint.strip(chr(96))}")
    for r in rows:
        if r.get("note"):
            out.print(f"note: {r['backend']} {r['role']} = {r['id']}: {r['note']}", style="yellow")


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
