"""Render commands: render (one job, a motion x identity matrix, a campaign, or again) and renders."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from motionlib.cli.app import (
    app, console, describe, fail, handles_errors, print_json, stream_json, warn_lines, write_lines,
)


def _params(pairs: list[str]) -> dict:
    from motionlib.core.errors import InputError

    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {p!r}: write KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@app.command(rich_help_panel="Render")
@handles_errors
def render(
    ctx: typer.Context,
    motion: Annotated[List[str], typer.Option("--motion", "-m", help="Motion (NAME or NAME@N); repeat for several.")] = [],
    identity: Annotated[List[str], typer.Option("--identity", "-i", help="Identity; repeat for several (every motion x identity is rendered).")] = [],
    backend: Annotated[str, typer.Option("--backend", "-b", help="pose (no model: pose maps beside the identity), controlnet, animatediff, wan-animate or wan-animate-2 (diffusion, see `motionlib models`; wan-animate-2 is driven by the kept source clip).")] = "pose",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="MP4 for one render; a directory for several (default: ./renders/).")] = None,
    size: Annotated[Optional[str], typer.Option(help="Picture size: the long side (default 512) or WIDTHxHEIGHT.")] = None,
    retarget: Annotated[str, typer.Option(help="bones (identity's proportions) or global (one scale and offset).")] = "bones",
    anchor_frame: Annotated[Optional[int], typer.Option("--anchor-frame", help="The motion frame fitted onto the identity (default: the first showing shoulders and hips; see `motionlib fit`).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: drawn and recorded).")] = None,
    prompt: Annotated[str, typer.Option(help="Text prompt (diffusion backends).")] = "",
    negative_prompt: Annotated[str, typer.Option("--negative-prompt", help="Negative prompt (diffusion backends).")] = "",
    threshold: Annotated[float, typer.Option(help="Joints below this confidence are left out of the pose maps.")] = 0.3,
    param: Annotated[List[str], typer.Option("--param", "-p", help="Backend parameter KEY=VALUE (pose: layout=side-by-side|overlay|posemap; see docs/render.md).")] = [],
    steps: Annotated[Optional[int], typer.Option(help="Denoising steps (diffusion backends; default 20; wan-animate-2 40, distilled 10).", rich_help_panel="Diffusion")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale (default 7.5; wan-animate 1.0; wan-animate-2 3.0, distilled 1.0).", rich_help_panel="Diffusion")] = None,
    strength: Annotated[Optional[float], typer.Option(help="ControlNet conditioning scale (controlnet, animatediff; default 1.0).", rich_help_panel="Diffusion")] = None,
    model: Annotated[List[str], typer.Option("--model", help="Use another model for one role: ROLE=ID_OR_PATH (see `motionlib models`).", rich_help_panel="Diffusion")] = [],
    models_config: Annotated[Optional[Path], typer.Option("--models-config", help="Models TOML (default: $MOTIONLIB_MODELS_CONFIG, else models.toml in the user config directory).", rich_help_panel="Diffusion")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA when present), cuda, cuda:N, mps or cpu.", rich_help_panel="Diffusion")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="auto (fp16 on a GPU, bf16 for wan-animate and wan-animate-2, fp32 on the CPU), fp16, bf16 or fp32.", rich_help_panel="Diffusion")] = None,
    offload: Annotated[Optional[str], typer.Option(help="auto (from free GPU memory), none, model or sequential CPU offload.", rich_help_panel="Diffusion")] = None,
    allow_cpu: Annotated[bool, typer.Option("--allow-cpu", help="Run a real diffusion model on the CPU (very slow) instead of refusing.", rich_help_panel="Diffusion")] = False,
    no_compile: Annotated[bool, typer.Option("--no-compile", help="controlnet, animatediff: skip torch.compile of the UNet and ControlNet (on by default on CUDA; the compiled code is cached, the first render on a machine waits for it). Same as -p compile=false.", rich_help_panel="Diffusion")] = False,
    campaign: Annotated[Optional[Path], typer.Option("--campaign", help="A TOML file listing renders (schemas/campaign.schema.json).")] = None,
    again: Annotated[Optional[int], typer.Option("--again", help="Render again with every parameter of render ID (see `motionlib renders`).")] = None,
    overwrite: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    redo: Annotated[bool, typer.Option("--redo", help="With --campaign: render again the jobs already rendered (by default a job whose video and record match is skipped).")] = False,
    address: Annotated[Optional[str], typer.Option("--ray", metavar="auto|local|ADDRESS", help="With --campaign: render the jobs on a Ray cluster, a worker per GPU: auto (the one RAY_ADDRESS or `ray start` here names), local (one started in this process) or its ADDRESS (docs/render.md).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the render records as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
):
    """Render motions onto identities; every render is recorded (see `motionlib renders`)."""
    from motionlib.core.errors import InputError
    from motionlib.render.pipeline import RenderJob

    lib = ctx.obj.library
    modes = sum([bool(motion or identity), campaign is not None, again is not None])
    if modes != 1:
        raise InputError("give --motion and --identity, or --campaign FILE, or --again ID")
    if redo and campaign is None:
        raise InputError("--redo goes with --campaign (a single render is redone with --again ID --force)")
    if address is not None and campaign is None:
        raise InputError("--ray goes with --campaign")
    if campaign is not None:
        prepared = lib.plan_campaign(campaign, output=output, overwrite=overwrite, redo=redo)
    elif again is not None:
        prepared = [lib.plan_again(again, output=output, overwrite=overwrite)]
    else:
        if not motion or not identity:
            raise InputError("give at least one --motion and one --identity")
        params = _params(param)
        params.update(_diffusion_params(steps=steps, guidance=guidance, strength=strength, device=device, dtype=dtype,
                                        offload=offload, models=_models(model), allow_cpu=allow_cpu or None,
                                        compile=False if no_compile else None,
                                        models_config=str(models_config) if models_config else None))
        jobs = [RenderJob(motion=m, identity=i, backend=backend, size=size, retarget=retarget,
                          anchor_frame=anchor_frame, seed=seed,
                          prompt=prompt, negative_prompt=negative_prompt, threshold=threshold, params=params)
                for m in dict.fromkeys(motion) for i in dict.fromkeys(identity)]
        prepared = lib.plan_renders(jobs, output=output, overwrite=overwrite)
    show = not (quiet or as_json) and sys.stderr.isatty()
    labels = {id(p): f"[{n}/{len(prepared)}] {p.label}" for n, p in enumerate(prepared, 1)}
    current = []  # the job running now, for the message when it is interrupted

    def job_progress(prep):
        current[:] = [labels[id(prep)]]
        return _bar(labels[id(prep)], prep.motion.frames) if show else contextlib.nullcontext(None)

    unrecorded = []  # jobs that failed before their record could be written (a full disk, say)

    def on_failure(prep, err):
        sys.stderr.write(f"error: {labels[id(prep)]}: {describe(err)}\n")
        if getattr(err, "record", None) is None:
            unrecorded.append(prep)

    skipped = {p.done.id for p in prepared if p.done is not None}
    if skipped and not as_json:
        console(stderr=True).print(f"{len(skipped)} of {len(prepared)} jobs already rendered and unchanged: skipped "
                                   "(--redo renders them again)")
    try:
        if address is not None:
            results = _render_on_ray(lib, prepared, address.strip(), show, labels, on_failure)
        else:
            results = lib.render_all(prepared, job_progress=job_progress, on_failure=on_failure)
    except KeyboardInterrupt:
        if address is not None:
            fail("campaign: interrupted; the records of the jobs running are marked failed", 130)
        fail(f"{current[0] if current else 'render'}: interrupted; its record is marked failed and no partial video was left", 130)
    if as_json:
        print_json([dict(r.to_json(), skipped=r.id in skipped) for r in results])
    else:
        _summary(results, single=len(prepared) == 1, skipped=skipped, unrecorded=len(unrecorded))
    if unrecorded or any(r.status != "done" for r in results):
        raise typer.Exit(1)


def _render_on_ray(lib, prepared, address: str, show: bool, labels: dict, on_failure) -> list:
    """A campaign's jobs on a Ray cluster: one progress bar over the jobs, advanced as each one
    finishes; a job whose worker died and is rendered again says so on stderr."""
    def on_retry(prep, err):
        from motionlib.library.distributed import why_died

        sys.stderr.write(f"warning: {labels[id(prep)]}: its Ray worker died ({why_died(err)}); rendering it again\n")

    todo = sum(p.done is None for p in prepared)
    with (_bar("on Ray", todo) if show and todo else contextlib.nullcontext(None)) as bar:
        progress = (lambda label, done, total: bar(label, done, total)) if bar else None
        return lib.render_all_ray(prepared, address, progress=progress, on_failure=on_failure, on_retry=on_retry)


def _diffusion_params(**given) -> dict:
    """Options given on the command line, as backend parameters (a backend that takes none of
    them refuses them by name)."""
    return {k: v for k, v in given.items() if v not in (None, {}, [])}


def _models(pairs: list[str]) -> dict:
    from motionlib.core.errors import InputError

    out = {}
    for p in pairs:
        role, sep, value = p.partition("=")
        if not sep or not role.strip() or not value.strip():
            raise InputError(f"--model {p!r}: write ROLE=ID_OR_PATH (roles: see `motionlib models`)")
        out[role.strip()] = value.strip()
    return out


@contextlib.contextmanager
def _bar(label: str, frames: int):
    """A progress bar on stderr for one render; yields its progress callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stage]}"),
                  TimeRemainingColumn(), transient=True, console=console(stderr=True)) as bar:
        task = bar.add_task(label, total=frames, stage="")
        yield lambda stage, done, total: bar.update(task, completed=done, total=total, stage=stage)


def _summary(results, single: bool, skipped: set[int] = frozenset(), unrecorded: int = 0) -> None:
    from motionlib.present import renders_table

    out = console()
    if single and results and results[0].status == "done":
        r = results[0]
        out.print(f"render {r.id}: {r.motion_ref} x {r.identity_name} ({r.backend}, seed {r.seed}) -> {r.output} "
                  f"in {r.timings.get('total', 0):.1f}s")
        warn_lines(out, r.params.get("result", {}).get("warnings", []))
        return
    out.print(renders_table(results, ("id", "motion", "identity", "backend", "status", "s", "qa")))
    for r in results:  # each render's fit flags (docs/render.md), so a batch says which to look at
        result = r.params.get("result", {})
        if result.get("warnings"):
            out.print(f"render {r.id} ({r.motion_ref} x {r.identity_name}): risk {result.get('risk', 0):.2f}")
            warn_lines(out, result["warnings"])
    failed = sum(r.status != "done" for r in results) + unrecorded
    out.print(f"{len(results) + unrecorded - failed - len(skipped)} of {len(results) + unrecorded} rendered"
              + (f", {len(skipped)} skipped (already rendered)" if skipped else "")
              + (f", {failed} failed" if failed else ""))


@app.command(rich_help_panel="Render")
@handles_errors
def fit(
    ctx: typer.Context,
    motion: Annotated[str, typer.Option("--motion", "-m", help="Motion (NAME or NAME@N).")],
    identity: Annotated[str, typer.Option("--identity", "-i", help="Identity.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the fitted track as .npz (docs/exchange.md), in the identity picture's pixels.")] = None,
    preview: Annotated[Optional[Path], typer.Option("--preview", help="Write a contact sheet of the fit over the identity at key frames (.png).")] = None,
    retarget: Annotated[str, typer.Option(help="bones (identity's proportions) or global (one scale and offset).")] = "bones",
    anchor_frame: Annotated[Optional[int], typer.Option("--anchor-frame", help="The motion frame fitted onto the identity (default: the first showing shoulders and hips).")] = None,
    overwrite: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
):
    """Fit a motion onto an identity as render does, before any GPU time: the anchor frame's error
    against her joints, the proportions used, and risk flags with a risk score (docs/render.md)."""
    report = ctx.obj.library.fit(motion, identity, method=retarget, anchor=anchor_frame, output=output,
                                 preview=preview, overwrite=overwrite)
    if as_json:
        print_json(report)
        return
    _print_fit(report)


def _print_fit(report: dict) -> None:
    from rich.table import Table

    out = console()
    err = report["anchor_error"]
    worst = max((v["of_height"] or 0 for v in err["joints"].values()), default=0.0)
    out.print(f"[bold]{report['motion']} on {report['identity']}[/bold] ({report['method']}): anchor frame "
              f"{report['anchor_frame']}, at her {report['retarget'].get('anchored_at', '-')}; worst joint there "
              f"{100 * worst:.1f}% of her height; risk {report['risk']:.2f}")
    if report["proportions"]:
        t = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("bone", "hers px", "performer px", "ratio", "from"):
            t.add_column(col, justify="left" if col in ("bone", "from") else "right")
        for b in report["proportions"]:
            t.add_row(b["bone"], "-" if b["identity_px"] is None else f"{b['identity_px']:.0f}",
                      "-" if b["performer_px"] is None else f"{b['performer_px']:.0f}", f"{b['ratio']:.2f}", b["from"])
        out.print(t)
    warn_lines(out, [f["message"] for f in report["flags"]])
    for key in ("output", "preview"):
        if key in report:
            out.print(f"wrote {report[key]}")


@app.command(rich_help_panel="Render")
@handles_errors
def qa(
    ctx: typer.Context,
    render_id: Annotated[int, typer.Argument(metavar="RENDER_ID", help="A render's id (see `motionlib renders`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the render record, with its QA, as JSON.")] = False,
):
    """Check a render against the pose that drove it: pose estimation on its video, the error per
    joint, swapped limbs, lost frames, a score and a verdict (stored in the record; docs/render.md)."""
    record = ctx.obj.library.qa(render_id)
    if as_json:
        print_json(record.to_json())
        return
    q = record.params["qa"]
    console().print(
        f"render {record.id} ({record.motion_ref} x {record.identity_name}, {record.backend}): "
        f"[bold]{q['verdict']}[/bold] {q.get('score', 0) or 0:.2f} - median error "
        f"{'-' if q.get('median_error') is None else format(q['median_error'], '.2f')} torso lengths, "
        f"body lost in {100 * q.get('lost', 0):.0f}%, swapped in {100 * q.get('swapped', 0):.0f}% of frames")


@app.command(rich_help_panel="Render")
@handles_errors
def renders(
    ctx: typer.Context,
    limit: Annotated[Optional[int], typer.Option(help="Only the newest N.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as one JSON array, a record a line.")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="Print the records as JSON Lines, one per line.")] = False,
):
    """The history of renders: what was rendered with which settings, and where it went."""
    from motionlib.core.errors import InputError

    if as_json and as_jsonl:
        raise InputError("give --json or --jsonl, not both")
    if limit is not None and limit < 0:
        raise InputError("--limit must be >= 0")
    records = ctx.obj.library.iter_renders(limit=limit)  # streamed: bounded memory at any number
    if as_json or as_jsonl:
        stream_json((r.to_json() for r in records), lines=as_jsonl)
        return
    first = next(records, None)
    if first is None:
        console().print("no renders yet: try `motionlib render --motion NAME --identity NAME`")
        return
    import itertools

    from motionlib.present import render_lines

    write_lines(render_lines(itertools.chain([first], records), colour=sys.stdout.isatty()))


@app.command(rich_help_panel="Render")
@handles_errors
def mosaic(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="The campaign's name (as its renders recorded it).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="mosaic.png (each render's middle frame) or mosaic.mp4 (all playing together).")],
    tile: Annotated[int, typer.Option(help="Long side of each cell, pixels.")] = 256,
    overwrite: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
):
    """A campaign's renders side by side: motions down, identities across."""
    info = ctx.obj.library.mosaic(campaign, output, tile=tile, overwrite=overwrite)
    if as_json:
        print_json(info)
        return
    gaps = f", {info['missing']} cells empty (not rendered, failed or deleted)" if info["missing"] else ""
    console().print(f"wrote {info['path']}: {len(info['motions'])} motions x {len(info['identities'])} identities{gaps}")
