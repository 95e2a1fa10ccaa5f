"""Motion commands: ingest, list, show, tempo, tag, untag, rm, reindex, doctor."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from motionlib.cli.app import (
    Ref_, app, console, describe, fail, handles_errors, print_json, stream_json, warn_lines, write_lines,
)


@app.command()
@handles_errors
def ingest(
    ctx: typer.Context,
    files: Annotated[List[Path], typer.Argument(help="Video files to ingest (a glob works: clips/*.mp4).")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Motion name (default: each file's stem).")] = None,
    tag: Annotated[List[str], typer.Option("--tag", "-t", help="Tag to attach (repeatable).")] = [],
    start: Annotated[Optional[float], typer.Option(help="Start of the span to keep, seconds.")] = None,
    end: Annotated[Optional[float], typer.Option(help="End of the span to keep, seconds.")] = None,
    estimator: Annotated[Optional[str], typer.Option("--estimator", metavar="NAME", help="mediapipe-pose (legacy MediaPipe Pose; the default where installed: Python 3.11-3.12), mediapipe-tasks (the Tasks API PoseLandmarker; the default on Python 3.13+, with the model `motionlib models fetch pose` caches), mediapipe-holistic (legacy, body + hands + face), or rtmw / dwpose (a person detector and a whole-body model, ONNX, COCO-WholeBody 133 points; weights: `motionlib models`).", show_default=False)] = None,
    whole_body: Annotated[bool, typer.Option("--whole-body", help="Add hands and face (MediaPipe Holistic, 543 points): --estimator mediapipe-holistic.")] = False,
    task_file: Annotated[Optional[Path], typer.Option("--task-file", help="Use the MediaPipe Tasks PoseLandmarker with this .task model instead of the cached one (implies --estimator mediapipe-tasks).")] = None,
    max_size: Annotated[int, typer.Option("--max-size", help="Long side, in pixels, of the frames given to the estimator.")] = 640,
    workers: Annotated[int, typer.Option(help="Pose trackers in parallel on one clip (0: one per core, at most 4; with several clips, 1 each).")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Clips ingested at once, each in its own process (0: one per core).")] = 0,
    keep_source: Annotated[bool, typer.Option("--keep-source/--no-keep-source", help="Keep a content-addressed copy of the clip in the library.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON (a list, one entry per file).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Estimate poses in video clips and store each as the next version of a motion."""
    from motionlib.core.errors import InputError, MotionlibError
    from motionlib.ingest.pipeline import IngestOptions

    options = IngestOptions(
        estimator=estimator, whole_body=whole_body, task_file=task_file, start=start, end=end,
        max_size=max_size, workers=workers,
    )
    options.spec()  # option conflicts fail before any work
    lib = ctx.obj.library
    err = console(stderr=True)
    out = console()
    show_progress = not (as_json or quiet) and sys.stderr.isatty()
    if jobs < 0:
        raise InputError("--jobs must be >= 0")
    if len(files) > 1 and jobs != 1:
        _ingest_parallel(lib, files, name, tag, options, keep_source, jobs, show_progress, as_json, out, err)
        return
    results, failed = [], 0
    for path in files:
        try:
            result = _ingest_one(lib, path, name, tag, options, keep_source, show_progress)
        except MotionlibError as e:
            failed += 1
            results.append({"file": str(path), "status": "failed", "error": describe(e)})
            sys.stderr.write(f"error: {path}: {describe(e)}\n")
            continue
        except KeyboardInterrupt:
            fail(f"{path}: interrupted; nothing was stored for it", 130)
        results.append(result.to_json())
        if not as_json:
            _print_result(out, result)
    if as_json:
        print_json(results)
    elif len(files) > 1:
        err.print(f"{len(files) - failed} of {len(files)} ingested" + (f", {failed} failed" if failed else ""))
    lib.close()
    _exit_now(1 if failed else 0)


def _ingest_parallel(lib, files, name, tags, options, keep_source, jobs, show_progress, as_json, out, err) -> None:
    """Several clips at once (Library.ingest_many): a progress bar per clip, each result printed
    as it comes, then the summary; the exit status says whether any failed."""
    from motionlib.core.errors import MotionlibError

    bar = _clip_bars(files) if show_progress else contextlib.nullcontext(None)
    with bar as update:
        def events(i, kind, n):
            if update is not None:
                update(i, kind, n)

        try:
            results = lib.ingest_many(files, jobs=jobs, name=name, tags=tags, options=options,
                                      keep_source=keep_source, events=events)
        except KeyboardInterrupt:
            fail("interrupted; clips not yet committed were not stored", 130)
    failed = 0
    for path, result in zip(files, results):
        if isinstance(result, MotionlibError):
            failed += 1
            sys.stderr.write(f"error: {path}: {describe(result)}\n")
        elif not as_json:
            _print_result(out, result)
    if as_json:
        print_json([{"file": str(p), "status": "failed", "error": describe(r)} if isinstance(r, MotionlibError)
                    else r.to_json() for p, r in zip(files, results)])
    else:
        err.print(f"{len(files) - failed} of {len(files)} ingested" + (f", {failed} failed" if failed else ""))
    lib.close()
    _exit_now(1 if failed else 0)


@contextlib.contextmanager
def _clip_bars(files):
    """One progress bar per clip on stderr; yields ``update(i, kind, n)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
                  TimeRemainingColumn(), transient=True, console=console(stderr=True)) as bar:
        tasks = [bar.add_task(Path(f).name, total=None, state="waiting") for f in files]

        def update(i, kind, n):
            if kind == "start":
                bar.update(tasks[i], total=n, state="frames")
            elif kind == "frames":
                bar.update(tasks[i], completed=n)
            else:
                task = bar.tasks[i]
                bar.update(tasks[i], state=kind, completed=task.total or task.completed)

        yield update


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown of mediapipe, TFLite and SQLAlchemy objects
    (~0.45 s measured on the sample clip). Everything that matters is done by now: the index is
    committed, files are fsynced, staging is removed; output streams are flushed here."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if os.environ.get("MOTIONLIB_NO_FAST_EXIT"):
        raise typer.Exit(code)
    os._exit(code)


def _ingest_one(lib, path, name, tags, options, keep_source, show_progress):
    if not show_progress:
        return lib.ingest(path, name=name, tags=tags, options=options, keep_source=keep_source)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("frames"), TimeRemainingColumn(), transient=True,
        console=console(stderr=True),
    ) as bar:
        task = bar.add_task(Path(path).name, total=None)
        return lib.ingest(
            path, name=name, tags=tags, options=options, keep_source=keep_source,
            on_start=lambda total: bar.update(task, total=total),
            progress=lambda done: bar.update(task, completed=done),
        )


def _print_result(out, result) -> None:
    from motionlib.present import score_text
    from rich.text import Text

    r = result.record
    if result.status == "unchanged":
        out.print(f"{r.ref}  unchanged: it already holds {r.source_name} ingested with these settings")
        return
    line = Text(f"{r.ref}  {r.frames} frames  {r.duration:.2f}s  {r.fps:.2f} fps  overall ")
    line.append_text(score_text(r.overall))
    line.append("  (occlusion ")
    line.append_text(score_text(r.occlusion))
    line.append(", jitter ")
    line.append_text(score_text(r.jitter))
    line.append(", framing ")
    line.append_text(score_text(r.framing))
    line.append(")")
    out.print(line)
    warn_lines(out, result.warnings)


@app.command("list", context_settings={"ignore_unknown_options": True})
@handles_errors
def list_(
    ctx: typer.Context,
    query: Annotated[Optional[List[str]], typer.Argument(
        metavar="[QUERY]...",
        help="Terms that must all hold: tag:dance 'score>0.7' 'fps>=30' 'name:wave*' -tag:draft "
             "'duration<6' is:latest, or a word in the name; quote terms with < > * (docs/query.md).")] = None,
    tag: Annotated[List[str], typer.Option("--tag", help="Only versions with this tag (repeatable: all must match).")] = [],
    min_score: Annotated[Optional[float], typer.Option("--min-score", help="Only versions whose overall score is at least this.")] = None,
    sort: Annotated[Optional[str], typer.Option("--sort", help="Sort by a field: score, -score (descending), duration:desc; comma-separated.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Show at most this many versions.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print records as one JSON array, a record a line (see docs/json.md).")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="Print records as JSON Lines, one per line (for pipes).")] = False,
):
    """List motion versions with duration, frame rate, scores and tags."""
    from motionlib.core.errors import InputError
    from motionlib.index.query import Query, parse_sort

    terms = list(query or [])
    unknown = [t for t in terms if t.startswith("--")]
    if unknown:
        raise InputError(f"no such option: {unknown[0]} (see motionlib list --help)")
    q = Query.parse(terms)
    parse_sort(sort)  # a bad --sort fails before the library opens
    if limit is not None and limit < 0:
        raise InputError("--limit must be >= 0")
    if as_json and as_jsonl:
        raise InputError("give --json or --jsonl, not both")
    # streamed: the first line goes out at once and memory stays bounded at any library size
    records = ctx.obj.library.iter_list(tags=tag, min_score=min_score, query=q, sort=sort, limit=limit)
    if as_json or as_jsonl:
        stream_json((r.to_json() for r in records), lines=as_jsonl)
        return
    first = next(records, None)
    if first is None:
        hint = "no motions match" if (tag or min_score is not None or q) else \
            "the library is empty: add a clip with `motionlib ingest CLIP.mp4`"
        console(stderr=True).print(hint)
        return
    import itertools

    from motionlib.present import motion_lines

    write_lines(motion_lines(itertools.chain([first], records), colour=_colour()))


def _colour() -> bool:
    """Colours on stdout: a terminal, and NO_COLOR not set (as rich decides)."""
    import os

    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


@app.command()
@handles_errors
def show(
    ctx: typer.Context,
    ref: Ref_,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record, with the full quality report, as JSON.")] = False,
):
    """Show one version: scores explained, warnings, source, estimator, lineage."""
    lib = ctx.obj.library
    record = lib.get(ref)
    manifest = lib.manifest(record)
    if as_json:
        data = record.to_json()
        data["quality"] = manifest.get("quality")
        data["track"] = manifest.get("track")
        data["estimator_settings"] = manifest.get("estimator")
        data["source"].update({k: manifest["source"].get(k) for k in (
            "container", "codec", "coded_width", "coded_height", "rotation", "time_offset", "start", "end")})
        data["lineage"]["result"] = manifest.get("lineage", {}).get("result")
        data["source"]["aligned"] = manifest["source"].get("aligned", True)
        data["variable_frame_rate"] = manifest.get("variable_frame_rate")
        data["schema_version"] = manifest.get("schema_version")
        data["tempo"] = manifest.get("tempo")
        print_json(data)
        return
    _print_show(record, manifest)


def _print_show(record, manifest) -> None:
    from rich.table import Table

    from motionlib.present import EXPLAIN, score_text

    out = console()
    src = manifest.get("source", {})
    est = manifest.get("estimator", {})
    out.print(f"[bold]{record.ref}[/bold]  {record.frames} frames, {record.duration:.2f}s, "
              f"{record.fps:.2f} fps{' (variable)' if manifest.get('variable_frame_rate') else ''}, "
              f"{record.width}x{record.height}, skeleton {record.skeleton}")
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("score")
    t.add_column("value", justify="right")
    t.add_column("raw", justify="right")
    t.add_column("what it measures")
    for key in ("occlusion", "jitter", "framing", "overall"):
        raw = getattr(record, key + "_raw", None) if key != "overall" else None
        t.add_row(key, score_text(getattr(record, key)), "" if raw is None else f"{raw:.4f}", EXPLAIN[key])
    out.print(t)
    if record.warnings:
        out.print("[bold]warnings[/bold]")
        warn_lines(out, record.warnings)
    _print_cleaning(out, manifest.get("track") or {})
    if "tempo" in manifest:
        out.print(f"[bold]tempo[/bold]     {tempo_line(manifest['tempo'])}")
    out.print(f"[bold]tags[/bold]      {', '.join(record.tags) or '-'}")
    coded = (f"{src.get('codec') or ''} {src.get('coded_width')}x{src.get('coded_height')}".strip()
             if src.get("coded_width") else (src.get("codec") or src.get("container") or ""))
    out.print(f"[bold]source[/bold]    {src.get('file_name')}  sha256 {str(src.get('sha256'))[:16]}…  {coded}"
              f"{', rotated ' + str(src.get('rotation')) + '°' if src.get('rotation') else ''}"
              f"  kept: {src.get('kept_path') or 'no'}")
    size = est.get("inference_size")
    model = est.get("model") or {}
    out.print(f"[bold]estimator[/bold] {est.get('name')} ({est.get('library')})"
              + (f", inference size {size[0]}x{size[1]}" if size else "")
              + (f", model {model.get('file') or model.get('source')} sha256 {model['sha256'][:16]}…"
                 if model.get("sha256") else ""))
    lineage = manifest.get("lineage", {})
    out.print(f"[bold]lineage[/bold]   {lineage.get('operation')}"
              f"{' of ' + lineage['parent'] if lineage.get('parent') else ''}  {lineage.get('params') or ''}")
    result = {k: v for k, v in (lineage.get("result") or {}).items() if k != "cleaning"}  # listed above
    if result:
        out.print(f"          result {result}")
    out.print(f"[bold]created[/bold]   {record.created}   store {record.store_path}")


def tempo_line(t: dict | None) -> str:
    """A stored (or measured) tempo in one line: BPM, source, confidence, beats."""
    if not t or not t.get("bpm"):
        return f"none measurable ({(t or {}).get('why') or 'not measured'})"
    beats = t.get("beats") or []
    first = " ".join(f"{b:.2f}" for b in beats[:4]) + (" ..." if len(beats) > 4 else "")
    cycle = f", the pose repeats every {t['cycle']:.2f}s" if t.get("cycle") else ""
    carried = f", carried from {t['carried_from']}" if t.get("carried_from") else ""
    return (f"{t['bpm']:.1f} BPM from the {t['source']} (confidence {t['confidence']:.2f}{cycle}{carried}), "
            f"{t.get('beat_count', len(beats))} beats: {first or '-'} s")


@app.command()
@handles_errors
def tempo(
    ctx: typer.Context,
    ref: Ref_,
    measure: Annotated[bool, typer.Option("--measure", help="Measure again (audio of the kept source, else the motion) instead of reading what is stored.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tempo, every beat time and where they come from as JSON.")] = False,
):
    """A version's tempo and beat times: stored with it at ingest (from the clip's audio, else the
    motion's own periodicity), or measured now; stores nothing."""
    got = ctx.obj.library.tempo(ref, measure=measure)
    if as_json:
        print_json(got)
        return
    where = "stored with the version" if got["stored"] else "measured now, not stored"
    console().print(f"{got['ref']}  {tempo_line(got)}  [dim]({where})[/dim]")


def _print_cleaning(out, track: dict) -> None:
    """What cleaning changed (docs/fidelity.md), each repair and rejection with its time."""
    if "swaps" not in track:
        return  # stored before cleaning existed
    out.print(f"[bold]cleaning[/bold]  {track.get('swapped_frames', 0)} frames with left/right swaps repaired, "
              f"{track.get('rejected_frames', 0)} frames rejected, {track.get('doubted_joints', 0)} joint "
              f"confidences doubted, {track.get('recovered_frames', 0)} frames recovered")

    def frames(s: dict) -> str:
        return f"frames {s['start_frame']}-{s['end_frame'] - 1}"

    for s in track.get("rejected", []):
        out.print(f"  rejected  {s['start']:.2f}-{s['end']:.2f} s  {frames(s)}  {s['reason']}")
    for c in track.get("jump_cuts", []):
        out.print(f"  jump cut  {c['time']:.2f} s  frame {c['frame']}")
    for s in track.get("swaps", []):
        out.print(f"  swap      {s['start']:.2f}-{s['end']:.2f} s  {frames(s)}  {s['part']}")


@app.command()
@handles_errors
def tag(
    ctx: typer.Context,
    ref: Ref_,
    tags: Annotated[List[str], typer.Argument(help="Tags to add.")],
):
    """Add tags to a version (the latest unless name@N)."""
    record = ctx.obj.library.tag(ref, tags)
    console().print(f"{record.ref}: {', '.join(record.tags)}")


@app.command()
@handles_errors
def untag(
    ctx: typer.Context,
    ref: Ref_,
    tags: Annotated[List[str], typer.Argument(help="Tags to remove.")],
):
    """Remove tags from a version (the latest unless name@N)."""
    record = ctx.obj.library.untag(ref, tags)
    console().print(f"{record.ref}: {', '.join(record.tags) or '(no tags)'}")


@app.command()
@handles_errors
def rename(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(metavar="NAME", help="The motion to rename (all its versions).")],
    new: Annotated[str, typer.Argument(metavar="NEW_NAME", help="Its new name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the renamed records as JSON.")] = False,
):
    """Rename a motion; its versions keep their numbers, and edits made from it follow."""
    records = ctx.obj.library.rename(old, new)
    if as_json:
        print_json([r.to_json() for r in records])
    else:
        console().print(f"renamed {old} to {new}: " + ", ".join(r.ref for r in records))


@app.command()
@handles_errors
def rm(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="The version to remove (name@N).")],
    all_versions: Annotated[bool, typer.Option("--all", help="Remove every version of NAME.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Remove it even if other versions were made from it (they keep their data).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the removed records as JSON.")] = False,
):
    """Remove a stored version (or, with --all, every version of a name)."""
    removed = ctx.obj.library.remove(ref, all_versions=all_versions, force=force)
    if as_json:
        print_json([r.to_json() for r in removed])
    else:
        console().print("removed " + ", ".join(r.ref for r in removed))


@app.command()
@handles_errors
def reindex(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
):
    """Rebuild the index from the store (keeps tags; repairs a lost or corrupt index)."""
    from motionlib.library import Library

    lib, aside = Library.open_repairing(ctx.obj.library_path)
    if aside is not None:
        console(stderr=True).print(f"the index was unreadable; moved it to {aside.name}")
    result = lib.reindex()
    if as_json:
        print_json(result)
        return
    console().print(f"indexed {result['versions']} versions")
    for s in result["skipped"]:
        sys.stderr.write(f"skipped {s}\n")


@app.command()
@handles_errors
def similar(
    ctx: typer.Context,
    ref: Ref_,
    top: Annotated[int, typer.Option("--top", "-n", help="How many to list (1-1000).")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records with their similarity as JSON.")] = False,
):
    """The motions most like this one, whatever their position, size, facing or tempo (1.00 = the
    same movement); the query term like:NAME combines it with any other (docs/query.md)."""
    found = ctx.obj.library.similar(ref, top)
    if as_json:
        print_json([dict(r.to_json(), similarity=round(s, 4)) for r, s in found])
        return
    if not found:
        console(stderr=True).print("no other motion has a descriptor yet")
        return
    from rich.table import Table

    from motionlib.present import score_text

    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("similarity", "motion", "duration", "operation", "overall", "tags"):
        t.add_column(col, justify="right" if col in ("similarity", "duration", "overall") else "left")
    for r, s in found:
        t.add_row(f"{s:.3f}", r.ref, f"{r.duration:.2f}s", r.operation, score_text(r.overall), ", ".join(r.tags))
    console().print(t)


@app.command()
@handles_errors
def doctor(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe: leftovers of killed writers, planted links, dead render records.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Check structure only; do not read every version's arrays.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
):
    """Check the library (index against store, leftovers, damaged versions, planted links) and
    say how to repair; exit 1 while problems remain."""
    from motionlib.core.errors import IndexDamaged
    from motionlib.library import Library

    try:
        lib = Library.open(ctx.obj.library_path)
    except IndexDamaged as err:
        fail(f"{err.message().split(' (')[0]}: the index is damaged; `motionlib reindex` rebuilds it from the store "
             "(tags come back from the versions' sidecars; identities and render records live only in the index)")
    show = not as_json and sys.stderr.isatty()
    with _doctor_bar(show) as progress:
        report = lib.doctor(fix=fix, quick=quick, progress=progress)
    if as_json:
        print_json(report)
    else:
        out = console()
        checked = report["checked"]
        out.print(f"checked {checked['versions']} versions{' (structure only)' if quick else ''} and "
                  f"{checked['identities']} identities in {report['library']}"
                  + (" (read-only: nothing can be fixed)" if report["read_only"] else ""))
        warn_lines(out, report["warnings"])
        for line in report["fixed"]:
            out.print(f"  fixed: {line}", style="green")
        for p in report["problems"]:
            out.print(f"  x {p['problem']}", style="red")
            out.print(f"    repair: {p['repair']}")
        if not report["problems"]:
            out.print("no problems found")
    if report["problems"]:
        raise typer.Exit(1)


@contextlib.contextmanager
def _doctor_bar(show: bool):
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("checking versions"), BarColumn(), MofNCompleteColumn(), transient=True,
                  console=console(stderr=True)) as bar:
        task = bar.add_task("check", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@app.command(context_settings={"ignore_unknown_options": True})
@handles_errors
def browse(
    ctx: typer.Context,
    query: Annotated[Optional[List[str]], typer.Argument(
        metavar="[QUERY]...", help="Start with this filter (the query language of `motionlib list`).")] = None,
):
    """Browse, search, tag, rename and delete versions in a full-screen terminal app."""
    from motionlib.core.errors import InputError
    from motionlib.index.query import Query

    q = Query.parse(list(query or []))  # a bad query fails before the screen opens
    if not sys.stdout.isatty():
        raise InputError("browse needs a terminal; use `motionlib list` in scripts")
    lib = ctx.obj.library
    try:
        from motionlib.tui.app import run
    except ImportError as err:
        raise InputError(f"the terminal browser needs textual ({err}); reinstall motionlib") from None
    where = lib.location if lib.files.shared else lib.root
    lib.close()
    run(where, str(q))
