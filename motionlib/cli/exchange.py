"""Preview, export and import: motions as videos and as keypoint files for other tools."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from motionlib.cli.app import Ref_, app, console, handles_errors, print_json



def _progress(label: str):
    """A context manager giving a progress callback ``(done, total)``: a bar on a terminal, else
    nothing."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                      transient=True, console=console(stderr=True)) as p:
            task = p.add_task(label, total=None)
            yield lambda done, total: p.update(task, completed=done, total=total)

    return bar()


@app.command(rich_help_panel="Look and exchange")
@handles_errors
def preview(
    ctx: typer.Context, ref: Ref_,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="MP4 to write (default: NAME-vN-preview.mp4 here).")] = None,
    over_source: Annotated[bool, typer.Option("--over-source", help="Draw the skeleton over the kept source clip.")] = False,
    size: Annotated[Optional[str], typer.Option(help="WIDTHxHEIGHT, or the long side in pixels (default 512).")] = None,
    threshold: Annotated[float, typer.Option(help="Joints below this confidence are not drawn.")] = 0.3,
    full_frame: Annotated[bool, typer.Option("--full-frame", help="Pose maps of the whole source frame, not just around the performer.")] = False,
    start: Annotated[Optional[float], typer.Option(help="Only from here, seconds (as trim keeps it; default 0).")] = None,
    end: Annotated[Optional[float], typer.Option(help="Only up to here, seconds (default: the end).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
):
    """Write a video of the motion at its true timing: pose maps, or the skeleton over the source."""
    with _progress("preview") as cb:
        info = ctx.obj.library.preview(ref, output, size=size, over_source=over_source, threshold=threshold,
                                       progress=cb, full_frame=full_frame, start=start, end=end)
    if as_json:
        print_json(info)
    else:
        print(f"wrote {info['path']} ({info['width']}x{info['height']}, {info['frames']} frames, {info['duration']:.2f}s)")


@app.command(rich_help_panel="Look and exchange")
@handles_errors
def sheet(
    ctx: typer.Context, ref: Ref_,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG to write (default: NAME-vN-sheet.png here).")] = None,
    count: Annotated[int, typer.Option(help="Key frames to show (1-64).")] = 8,
    over_source: Annotated[Optional[bool], typer.Option("--over-source/--pose-only", help="Draw over the kept source clip (default: when the version still sits on it).")] = None,
    overwrite: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
):
    """A contact sheet of a motion: key frames (the stillest of each stretch of time) as skeletons,
    over the source clip when it is kept, each with its time."""
    info = ctx.obj.library.sheet(ref, output, count=count, over_source=over_source, overwrite=overwrite)
    if as_json:
        print_json(info)
    else:
        where = "over the source clip" if info["over_source"] else "pose maps"
        print(f"wrote {info['path']} ({info['width']}x{info['height']}): {info['ref']}, {len(info['frames'])} frames, "
              f"{where}, at " + ", ".join(f"{t:.2f}s" for t in info["times"]))


@app.command(rich_help_panel="Look and exchange")
@handles_errors
def export(
    ctx: typer.Context, ref: Ref_,
    fmt: Annotated[str, typer.Option("--format", "-f", help=(
        "openpose-json (a directory, one file per frame, pixels and confidences, as OpenPose writes), "
        "controlnet-aux (a directory, one file per frame, as controlnet_aux's decode_json_as_poses reads), "
        "comfyui (one .json: ComfyUI's POSE_KEYPOINT list of frames), bvh (the 3D world landmarks as a "
        "skeleton for Blender and other animation tools), npz, csv or mp4 (pose maps)."))],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write (a new or empty directory for openpose-json and controlnet-aux).")],
    size: Annotated[Optional[str], typer.Option(help="mp4 only: WIDTHxHEIGHT or the long side (default 512).")] = None,
    threshold: Annotated[float, typer.Option(help="controlnet-aux and comfyui: points seen with at least this confidence are kept (as confidence 1), the others written as unknown.")] = 0.3,
    overwrite: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="The estimator's track before cleaning (ingested versions keep it; docs/fidelity.md).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
):
    """Write a version's keypoints for other tools (ComfyUI, ControlNet, Blender and other animation
    tools, spreadsheets, NumPy); docs/exchange.md says what each keeps and loses."""
    with _progress("export") as cb:
        info = ctx.obj.library.export(ref, fmt, output, size=size, overwrite=overwrite, progress=cb, raw=raw,
                                      threshold=threshold)
    if as_json:
        print_json(info)
    else:
        extra = f" ({info['files']} files)" if "files" in info else ""
        what = " (raw track)" if raw else ""
        tail = ""
        if fmt == "bvh":
            tail = f" -> {info['bvh_frames']} BVH frames of {info['frame_time'] * 1000:.2f} ms"
            if info["resampled"]:
                tail += " (re-sampled to a steady rate)"
            if info["filled_frames"]:
                tail += f", {info['filled_frames']} without 3D landmarks filled in"
        print(f"wrote {info['path']}{extra}: {info['ref']}{what} as {fmt}, {info['frames']} frames{tail}")


@app.command("import", rich_help_panel="Look and exchange")
@handles_errors
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="OpenPose JSON directory or file, or a .npz written by export.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="openpose-json or npz.")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Motion name (default: the file or directory name).")] = None,
    tag: Annotated[List[str], typer.Option("--tag", "-t", help="Tag to attach (repeatable).")] = [],
    fps: Annotated[Optional[float], typer.Option(help="openpose-json: frame rate when the files carry no timestamps (default 30).")] = None,
    size: Annotated[Optional[str], typer.Option(help="openpose-json: frame size WIDTHxHEIGHT when the files carry no canvas size.")] = None,
    person: Annotated[int, typer.Option(help="openpose-json: which entry of 'people' to follow.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
):
    """Bring keypoints made elsewhere into the library, scored like an ingest."""
    from motionlib.core.errors import InputError

    wh = None
    if size:
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
        if not m or not all(0 < int(v) <= 100_000 for v in m.groups()):
            raise InputError(f"--size {size!r}: give WIDTHxHEIGHT, e.g. 1920x1080")
        wh = (int(m.group(1)), int(m.group(2)))
    if person < 0:
        raise InputError("--person must be >= 0")
    result = ctx.obj.library.import_keypoints(path, fmt, name=name, tags=tag, fps=fps, size=wh, person=person)
    if as_json:
        print_json(result.to_json() | {"notes": result.warnings})
        return
    from motionlib.cli.motions import _print_result

    out = console()
    if result.status == "unchanged":
        out.print(f"{result.record.ref}  unchanged: it already holds {result.record.source_name} imported with these settings")
        return
    _print_result(out, result)
