"""Rich rendering of records for the terminal (tables, score bars)."""

from __future__ import annotations


def score_text(value):
    from rich.text import Text

    if value is None:
        return Text("-", style="dim")
    style = "green" if value >= 0.7 else "yellow" if value >= 0.4 else "red"
    return Text(f"{value:.2f}", style=style)


def motions_table(records):
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col, kw in (
        ("motion", {}), ("duration", {"justify": "right"}), ("fps", {"justify": "right"}),
        ("frames", {"justify": "right"}), ("occlusion", {"justify": "right"}),
        ("jitter", {"justify": "right"}), ("framing", {"justify": "right"}),
        ("overall", {"justify": "right"}), ("tags", {}),
    ):
        table.add_column(col, **kw)
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
