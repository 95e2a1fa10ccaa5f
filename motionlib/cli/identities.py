"""Identity commands: the people motions are rendered onto."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from motionlib.cli.app import app, console, handles_errors, print_json, stream_json, warn_lines

identity_app = typer.Typer(help="Add, list, show and remove identities (pictures of the people to render).",
                           no_args_is_help=True, rich_markup_mode=None)
app.add_typer(identity_app, name="identity")


@identity_app.command("add")
@handles_errors
def add(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="A picture of one person (JPEG, PNG, WebP or BMP).")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Identity name (default: the file's stem).")] = None,
    person: Annotated[Optional[int], typer.Option("--person", help="In a picture of several people, the one to use (1 = leftmost).", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the identity as JSON.")] = False,
):
    """Check the picture, find the person's pose, and keep the picture in the library."""
    rec = ctx.obj.library.add_identity(image, name=name, person=person)
    if as_json:
        print_json(rec.to_json())
        return
    out = console()
    out.print(f"{rec.name}  {rec.width}x{rec.height} {rec.format}  {'full body' if rec.body == 'full' else 'upper body'}")
    warn_lines(out, rec.warnings)


@identity_app.command("list")
@handles_errors
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the identities as one JSON array, one a line.")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="Print the identities as JSON Lines, one per line.")] = False,
):
    """List identities."""
    from motionlib.core.errors import InputError

    if as_json and as_jsonl:
        raise InputError("give --json or --jsonl, not both")
    records = ctx.obj.library.identities()
    if as_json or as_jsonl:
        stream_json((r.to_json() for r in records), lines=as_jsonl)
        return
    if not records:
        console().print("no identities yet: add one with `motionlib identity add IMAGE --name NAME`")
        return
    from rich.table import Table

    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("identity", "size", "body", "file", "added"):
        t.add_column(col)
    for r in records:
        t.add_row(r.name, f"{r.width}x{r.height}", r.body, r.file_name, r.created[:10])
    console().print(t)


@identity_app.command("show")
@handles_errors
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The identity.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the identity, with its pose, as JSON.")] = False,
):
    """Show one identity: picture, size, body coverage, pose, warnings."""
    r = ctx.obj.library.get_identity(name)
    if as_json:
        print_json(r.to_json())
        return
    out = console()
    out.print(f"[bold]{r.name}[/bold]  {r.width}x{r.height} {r.format}, {r.size_bytes} bytes, "
              f"{'full body' if r.body == 'full' else 'upper body'}")
    out.print(f"file      {r.file_name}  sha256 {r.sha256[:16]}…  kept as {r.path}")
    seen = sum(1 for c in r.pose["confidence"] if c >= 0.5)
    out.print(f"pose      {seen} of {len(r.pose['confidence'])} joints seen ({r.estimator}); faces: {r.pose.get('faces')}")
    warn_lines(out, r.warnings)


@identity_app.command("rm")
@handles_errors
def rm(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The identity to remove.")],
):
    """Remove an identity (its picture goes too unless another identity uses it)."""
    r = ctx.obj.library.remove_identity(name)
    console().print(f"removed identity {r.name}")
