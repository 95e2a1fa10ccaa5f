"""Rich rendering of records for the terminal (tables, score colours); the browser uses it too."""

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
