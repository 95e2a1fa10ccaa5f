"""How records look in a terminal: score colours, tables and the words that explain scores. The
command line and the browser both use it (rich is imported inside the functions)."""

from __future__ import annotations


def score_style(value: float | None) -> str:
    """Colour of a score: green >= 0.7, yellow >= 0.4, red below; dim when unknown."""
    if value is None:
        return "dim"
    return "green" if value >= 0.7 else "yellow" if value >= 0.4 else "red"


def score_text(value):
    from rich.text import Text

    if value is None:
        return Text("-", style="dim")
    return Text(f"{value:.2f}", style=score_style(value))


def motions_table(records):
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1, 0, 0))
    ref_width = min(48, max([len("motion")] + [len(r.ref) for r in records]))
    table.add_column("motion", no_wrap=True, min_width=ref_width)
    for col, width in (("duration", 8), ("fps", 5), ("frames", 6), ("occl", 4), ("jitter", 6),
                       ("framing", 7), ("overall", 7)):
        table.add_column(col, justify="right", no_wrap=True, min_width=width)
    table.add_column("tags", overflow="fold")
    for r in records:
        table.add_row(
            r.ref, f"{r.duration:.2f}s", f"{r.fps:.2f}", str(r.frames),
            score_text(r.occlusion), score_text(r.jitter), score_text(r.framing),
            score_text(r.overall), ", ".join(r.tags),
        )
    return table


EXPLAIN = {
    "occlusion": "weighted share of body joints confidently visible and in frame "
    "(wrists/ankles x3); raw = that share",
    "jitter": "high-frequency keypoint noise: RMS residual against a zero-phase 6 Hz low-pass, "
    "in torso lengths; score = exp(-raw/0.05)",
    "framing": "detection rate x body inside the frame (2% margin) x subject size x drift, "
    "halved per hard cut; raw = share of core joints inside",
    "overall": "geometric mean of the known scores",
}


def short_path(path: str) -> str:
    """A path as short as it can be shown: relative to here when close, else its file name."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        rel = path
    return rel if len(rel) <= 40 and not rel.startswith("..") else os.path.basename(path)


def status_text(status: str) -> str:
    """A render's status as rich markup (red unless done)."""
    return status if status == "done" else f"[red]{status}[/red]"


RENDER_CELLS = {
    "id": lambda r: str(r.id),
    "status": lambda r: status_text(r.status),
    "motion": lambda r: r.motion_ref,
    "identity": lambda r: r.identity_name,
    "backend": lambda r: r.backend,
    "seed": lambda r: str(r.seed),
    "s": lambda r: f"{r.timings.get('total', 0):.1f}",
    "qa": lambda r: qa_text(r.params.get("qa")),
}


def qa_text(qa: dict | None) -> str:
    """A render's QA verdict and score, or '-' (not checked: pose backend, or not yet)."""
    if not qa:
        return "-"
    if "error" in qa:
        return "error"
    return qa["verdict"] if qa.get("score") is None else f"{qa['verdict']} {qa['score']:.2f}"


def renders_table(records, columns=("id", "status", "motion", "identity", "backend", "seed", "s", "qa"),
                  output_heading: str = "output"):
    """Render records in ``columns`` (RENDER_CELLS), then where the video went (or why it failed)."""
    from rich.table import Table

    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in columns:
        t.add_column(col, no_wrap=True, max_width=24, overflow="ellipsis")
    t.add_column(output_heading, overflow="fold", min_width=16)
    for r in records:
        t.add_row(*(RENDER_CELLS[c](r) for c in columns),
                  short_path(r.output) if r.status == "done" else (r.error or ""))
    return t
