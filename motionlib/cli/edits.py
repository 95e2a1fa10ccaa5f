"""Edit commands. Each stores its result as the next version, with parent, operation and params."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from motionlib.cli.app import Ref_, app, console, handles_errors, print_json, warn_lines

Name_ = Annotated[Optional[str], typer.Option("--name", "-n", help="Store the result under this name (default: the same name, next version).")]
Tags_ = Annotated[List[str], typer.Option("--tag", "-t", help="Tag to attach to the new version (repeatable).")]
Json_ = Annotated[bool, typer.Option("--json", help="Print the new version, its parent and the measurements as JSON.")]
Own_ = Annotated[bool, typer.Option("--own-tags", help="Give the new version only the --tag tags (by default it also carries its parent's).")]


def _run(ctx: typer.Context, ref: str, edit, name, tags, as_json: bool, own_tags: bool = False, span=None) -> None:
    result = ctx.obj.library.derive(ref, edit, name=name, tags=tags, inherit_tags=not own_tags, span=span)
    if as_json:
        print_json(result.to_json())
        return
    _print(result)


def _print(result) -> None:
    from rich.text import Text

    from motionlib.present import score_text

    out = console()
    r, p = result.record, result.parent
    line = Text(f"{r.ref}  {result.operation} of {p.ref}  {r.frames} frames  {r.duration:.2f}s  {r.fps:.2f} fps")
    out.print(line)
    scores = Text(" ")
    for key, label in (("overall", "overall"), ("occlusion", "occl"), ("jitter", "jitter"), ("framing", "framing")):
        scores.append(f" {label} ")
        scores.append_text(score_text(getattr(p, key)))
        scores.append("->")
        scores.append_text(score_text(getattr(r, key)))
    out.print(scores)
    shown = {k: v for k, v in result.result.items() if v not in (None, [], {}) and k not in ("verdict_words", "loops")}
    used = result.params.get("tempo")
    if isinstance(used, dict) and used.get("bpm"):  # retime --bpm, loop --beats: the tempo fitted to
        out.print(f"  at the {used['source']} tempo {used['bpm']:.1f} BPM (confidence {used['confidence']:.2f})")
    if result.result.get("verdict_words"):  # a loop's verdict, in words, before the numbers
        good = result.result.get("loops")
        out.print(f"  {'loops' if good else 'does NOT loop'} ({result.result['verdict_words']})",
                  style="green" if good else "bold red")
    if shown:
        out.print("  " + ", ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in shown.items()))
    new = [w for w in result.warnings if w not in p.warnings]
    warn_lines(out, new)
    if len(new) < len(result.warnings):
        out.print(f"  ({len(result.warnings) - len(new)} warnings as before; `motionlib show {r.ref}` lists them)",
                  style="dim")


def _fmt(v) -> str:
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return "; ".join(f"{g.get('start')}-{g.get('end')}s" for g in v[:5]) + (" ..." if len(v) > 5 else "")
    return str(v)


@app.command(rich_help_panel="Edit (each makes a new version)")
@handles_errors
def trim(
    ctx: typer.Context, ref: Ref_,
    start: Annotated[Optional[float], typer.Option(help="Start, seconds (default 0).")] = None,
    end: Annotated[Optional[float], typer.Option(help="End, seconds (default: the end).")] = None,
    name: Name_ = None, tag: Tags_ = [], own_tags: Own_ = False, as_json: Json_ = False,
):
    """Keep the frames between --start and --end seconds."""
    from motionlib.core.errors import InputError
    from motionlib.processing import ops

    if start is None and end is None:
        raise InputError("give --start and/or --end (seconds)")
    _run(ctx, ref, lambda m: ops.trim(m, start, end), name, tag, as_json, own_tags, span=(start, end))


@app.command(rich_help_panel="Edit (each makes a new version)")
@handles_errors
def smooth(
    ctx: typer.Context, ref: Ref_,
    method: Annotated[str, typer.Option(help="butterworth (zero phase, no lag) or one-euro (causal, adaptive).")] = "butterworth",
    cutoff: Annotated[float, typer.Option(help="Low-pass cutoff in Hz (One-Euro: its minimum cutoff).")] = 6.0,
    max_gap: Annotated[float, typer.Option("--max-gap", help="Interpolate gaps and low-confidence runs up to this many seconds.")] = 0.2,
    min_confidence: Annotated[float, typer.Option("--min-confidence", help="Points below this are treated as guesses.")] = 0.5,
    window: Annotated[int, typer.Option(help="Hampel outlier window, frames.")] = 7,
    sigmas: Annotated[float, typer.Option(help="Hampel threshold in robust standard deviations.")] = 3.0,
    beta: Annotated[float, typer.Option(help="One-Euro speed coefficient.")] = 0.01,
    name: Name_ = None, tag: Tags_ = [], own_tags: Own_ = False, as_json: Json_ = False,
):
    """Remove keypoint noise: outliers (Hampel), short gaps, then a low-pass filter."""
    from motionlib.processing import ops

    _run(ctx, ref, lambda m: ops.smooth(m, method=method, cutoff=cutoff, max_gap=max_gap, min_confidence=min_confidence,
                                        window=window, sigmas=sigmas, beta=beta), name, tag, as_json, own_tags)


@app.command(rich_help_panel="Edit (each makes a new version)")
@handles_errors
def loop(
    ctx: typer.Context, ref: Ref_,
    min_length: Annotated[Optional[float], typer.Option("--min-length", help="Shortest loop, seconds (default 1).")] = None,
    blend: Annotated[int, typer.Option(help="Frames over which the seam is blended.")] = 4,
    max_length: Annotated[Optional[float], typer.Option("--max-length", help="Longest loop, seconds (default: 4 x --min-length, at least 10).")] = None,
    beats: Annotated[Optional[int], typer.Option("--beats", help="A loop this many beats long (within a frame) at the motion's tempo: the one stored with it, else measured from the motion (`motionlib tempo`).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Store nothing and exit 1 when the result does not loop (its seam over 2.5 typical frame steps).")] = False,
    name: Name_ = None, tag: Tags_ = [], own_tags: Own_ = False, as_json: Json_ = False,
):
    """Cut at the best loop point and blend the seam, so the motion repeats without a jump."""
    from motionlib.processing import ops

    _run(ctx, ref, lambda m: ops.loop(m, min_length=min_length, blend=blend, max_length=max_length, strict=strict,
                                      beats=beats),
         name, tag, as_json, own_tags)


@app.command(rich_help_panel="Edit (each makes a new version)")
@handles_errors
def mirror(ctx: typer.Context, ref: Ref_, name: Name_ = None, tag: Tags_ = [], own_tags: Own_ = False,
           as_json: Json_ = False):
    """Swap left and right and flip horizontally."""
    from motionlib.processing import ops

    _run(ctx, ref, ops.mirror, name, tag, as_json, own_tags)


@app.command("in-place", rich_help_panel="Edit (each makes a new version)")
@handles_errors
def in_place(
    ctx: typer.Context, ref: Ref_,
    axes: Annotated[str, typer.Option(help="Remove travel along x, y or xy.")] = "x",
    cutoff: Annotated[float, typer.Option(help="Travel = hip path low-passed at this many Hz (0 pins the hips).")] = 1.0,
    name: Name_ = None, tag: Tags_ = [], own_tags: Own_ = False, as_json: Json_ = False,
):
    """Remove the root's travel so that the performer stays centred."""
    from motionlib.processing import ops

    _run(ctx, ref, lambda m: ops.in_place(m, axes=axes, cutoff=cutoff), name, tag, as_json, own_tags)


@app.command(rich_help_panel="Edit (each makes a new version)")
@handles_errors
def retime(
    ctx: typer.Context, ref: Ref_,
    fps: Annotated[Optional[float], typer.Option(help="Output frame rate (default: the current mean rate).")] = None,
    speed: Annotated[float, typer.Option(help="Playback speed factor (2 = twice as fast).")] = 1.0,
    bpm: Annotated[Optional[float], typer.Option("--bpm", help="Play at this tempo, beats a minute: speed = BPM / the motion's tempo (stored with it, else measured from the motion).")] = None,
    name: Name_ = None, tag: Tags_ = [], own_tags: Own_ = False, as_json: Json_ = False,
):
    """Resample by timestamps to a new frame rate and/or speed (or tempo)."""
    from motionlib.processing import ops

    _run(ctx, ref, lambda m: ops.retime(m, fps=fps, speed=speed, bpm=bpm), name, tag, as_json, own_tags)


@app.command("fill-gaps", rich_help_panel="Edit (each makes a new version)")
@handles_errors
def fill_gaps(
    ctx: typer.Context, ref: Ref_,
    max_gap: Annotated[float, typer.Option("--max", help="Longest dropout to interpolate, seconds.")] = 0.5,
    name: Name_ = None, tag: Tags_ = [], own_tags: Own_ = False, as_json: Json_ = False,
):
    """Interpolate dropouts up to --max seconds; longer ones stay marked as missing."""
    from motionlib.processing import ops

    _run(ctx, ref, lambda m: ops.fill_gaps(m, max_gap), name, tag, as_json, own_tags)


@app.command(rich_help_panel="Edit (each makes a new version)")
@handles_errors
def mine(
    ctx: typer.Context, ref: Ref_,
    min_length: Annotated[float, typer.Option("--min", help="Shortest candidate, seconds.")] = 3.0,
    max_length: Annotated[float, typer.Option("--max", help="Longest candidate, seconds.")] = 6.0,
    top: Annotated[int, typer.Option("--top", "-n", help="How many candidates to keep.")] = 5,
    loops: Annotated[bool, typer.Option("--loops", help="Make each candidate a loop too, and rank the ones that loop first.")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="Name the candidates NAME-1, NAME-2 ... (default: the motion's name + -mined).")] = None,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a PNG of the candidates side by side.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Rank and show the candidates; store nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
):
    """Split a long performance into ranked candidates (clean, well framed, moving; loops on
    request), each kept as a motion of its own with its lineage back to this one."""
    report = ctx.obj.library.mine(ref, min_length=min_length, max_length=max_length, top=top, loops=loops,
                                  name=name, sheet=sheet, dry_run=dry_run)
    if as_json:
        print_json(report)
        return
    out = console()
    if not report["candidates"]:
        out.print(f"no candidate of {min_length:g}-{max_length:g}s in {report['ref']} is clean, framed and moving enough")
        return
    for r in report["candidates"]:
        loop = f"  {r['loop']['verdict']}" if loops else ""
        made = f" -> {r['ref']}" if "ref" in r else ""
        out.print(f"{r['name']}  {r['start']:.2f}-{r['end']:.2f}s  score {r['rank_score']:.2f} (presence {r['presence']:.2f}, "
                  f"clean {r['clean']:.2f}, framing {r['framing']:.2f}, movement {r['movement']:.2f}){loop}{made}")
    if report.get("sheet"):
        out.print(f"sheet: {report['sheet']}")
    if not report["stored"]:
        out.print("(dry run: nothing stored)", style="dim")
