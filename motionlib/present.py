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


ANSI = {"green": "32", "yellow": "33", "red": "31", "dim": "2", "bold": "1"}
SAMPLE_ROWS = 1000  # rows a streamed table sizes its columns from


def _paint(text: str, style: str, colour: bool) -> str:
    return f"\x1b[{ANSI[style]}m{text}\x1b[0m" if colour and style in ANSI else text


def motion_lines(records, colour: bool):
    """``motions_table`` as lines of text, streamed: the motion column is sized from the first
    SAMPLE_ROWS records (a longer ref is shortened), every other column has its fixed width, so
    the first line goes out at once and memory stays bounded at any library size. ``colour``:
    scores in ANSI colours (a terminal), else plain text."""
    import itertools

    records = iter(records)
    first = list(itertools.islice(records, SAMPLE_ROWS))
    ref_width = min(48, max([len("motion")] + [len(r.ref) for r in first]))
    heads = (("duration", 8), ("fps", 5), ("frames", 6), ("occl", 4), ("jitter", 6), ("framing", 7), ("overall", 7))
    yield _paint(" ".join(["motion".ljust(ref_width)] + [h.rjust(w) for h, w in heads] + ["tags"]), "bold", colour)

    def score(v, width):
        text = "-" if v is None else f"{v:.2f}"
        return _paint(text.rjust(width), score_style(v), colour)

    for r in itertools.chain(first, records):
        ref = r.ref if len(r.ref) <= ref_width else r.ref[: ref_width - len(str(r.version)) - 2] + "…@" + str(r.version)
        yield " ".join([ref.ljust(ref_width), f"{r.duration:.2f}s".rjust(8), f"{r.fps:.2f}".rjust(5),
                        str(r.frames).rjust(6), score(r.occlusion, 4), score(r.jitter, 6), score(r.framing, 7),
                        score(r.overall, 7), ", ".join(r.tags)])


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
    "backend": lambda r: backend_text(r),
    "seed": lambda r: str(r.seed),
    "s": lambda r: f"{r.timings.get('total', 0):.1f}",
    "qa": lambda r: qa_text(r.params.get("qa")),
}


# render parameters that change the pictures (opt-in shortcuts, render/backends/speed.py): shown
# beside the backend when a render turned them on
SHORTCUTS = {"step_cache": lambda v: f"step_cache={v}" if isinstance(v, int) and v > 1 else None}


def shortcut_labels(params: dict | None) -> list[str]:
    """The picture-changing shortcuts a render's parameters turned on, as short labels."""
    labels = (label((params or {}).get(key)) for key, label in SHORTCUTS.items())
    return [text for text in labels if text]


def backend_text(r) -> str:
    """The backend, and the picture-changing shortcuts its render turned on (step caching ...)."""
    return " ".join([r.backend, *shortcut_labels((r.params or {}).get("params"))])


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


def render_lines(records, colour: bool):
    """The render history as lines, streamed like ``motion_lines``: id, status, motion, identity,
    backend, seed, seconds, QA, then where the video went (or why it failed). Text columns are
    sized from the first SAMPLE_ROWS records (at most 24 cells; longer text is shortened)."""
    import itertools

    records = iter(records)
    first = list(itertools.islice(records, SAMPLE_ROWS))
    cols = ("id", "status", "motion", "identity", "backend", "seed", "s", "qa")
    cell = {c: (lambda r, c=c: _plain(RENDER_CELLS[c](r))) for c in cols}
    width = {c: min(24, max([len(c)] + [len(cell[c](r)) for r in first])) for c in cols}
    right = {"id", "seed", "s"}

    def fit(text: str, c: str) -> str:
        text = text if len(text) <= width[c] else text[: width[c] - 1] + "…"
        return text.rjust(width[c]) if c in right else text.ljust(width[c])

    yield _paint(" ".join([fit(c, c) for c in cols] + ["output (--json: full paths)"]), "bold", colour)
    for r in itertools.chain(first, records):
        status = fit(r.status, "status")
        line = [fit(cell[c](r), c) if c != "status" else (status if r.status == "done" else _paint(status, "red", colour))
                for c in cols]
        yield " ".join(line + [short_path(r.output) if r.status == "done" else (r.error or "")])


def _plain(text: str) -> str:
    """A cell without its rich markup."""
    import re

    return re.sub(r"\[/?[a-z ]+\]", "", text)
