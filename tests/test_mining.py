"""Mining a long performance: candidates avoid still, rejected and cut stretches; the library
keeps each as a motion with its lineage back, loops them on request, and draws them as a sheet."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionlib.core.errors import InputError
from motionlib.library import Library
from motionlib.processing import mining
from tests.conftest import assert_one_line_error, copy_library, invoke, library_snapshot
from tests.test_ops import make_motion


def test_candidates_are_moving_clean_and_cut_free():
    # 20 s: waving throughout, but still from 5 to 10 s, a rejected stretch 12-14 s, a cut at 17 s
    m = make_motion(T=600, wave_hz=1.0, wave_px=60, noise=0.3)
    rw = m.skeleton.index("right_wrist")
    still = (m.timestamps >= 5) & (m.timestamps < 10)
    m.keypoints[still] = m.keypoints[still][:1]
    track = {"rejected": [{"reason": "other person", "start_frame": 360, "end_frame": 420}]}
    found = mining.candidates(m, min_length=2.0, max_length=3.0, top=10, track=track, cuts=[17.0])
    assert found and all(c.score >= mining.MIN_SCORE for c in found)
    for c in found:
        assert min(c.end, 10) - max(c.start, 5) <= 0.5 * (c.end - c.start), ("mostly still", c)
        assert not (c.start < 17.0 < c.end), ("holds the cut", c)
        assert min(c.end, 14) - max(c.start, 12) <= 0.5 * (c.end - c.start), ("mostly rejected", c)
    spans = sorted((c.start, c.end) for c in found)
    assert all(b[0] - a[1] > -0.25 * 3 for a, b in zip(spans, spans[1:])), "little overlap"
    assert float(np.std(m.keypoints[:, rw, 1])) > 0
    with pytest.raises(InputError, match="min_length"):
        mining.candidates(m, min_length=4, max_length=3)


def test_mine_keeps_candidates_with_lineage_loops_them_and_draws_a_sheet(demo_library, tmp_path):
    lib_root = copy_library(demo_library[0], tmp_path / "lib")
    with Library(lib_root) as lib:
        before = library_snapshot(lib_root)
        dry = lib.mine("demo", min_length=1.5, max_length=3.0, top=3, dry_run=True)
        assert dry["candidates"] and library_snapshot(lib_root) == before
        report = lib.mine("demo", min_length=1.5, max_length=3.0, top=3, loops=True, sheet=tmp_path / "m.png")
        assert [r["name"] for r in report["candidates"]] == [f"demo-mined-{k}" for k in range(1, len(report["candidates"]) + 1)]
        scores = [r["rank_score"] for r in report["candidates"]]
        assert scores == sorted(scores, reverse=True)
        for r in report["candidates"]:
            made = lib.get(r["ref"])
            chain = [made]
            while chain[-1].parent:
                chain.append(lib.get(chain[-1].parent))
            assert chain[-1].ref == "demo@1", "lineage back to the mined motion"
            trim = next(c for c in chain if c.operation == "trim")
            assert trim.op_params == {"start": r["start"], "end": r["end"]} or trim.op_params.get("start") == r["start"]
            assert "mined" in made.tags and "sample" not in made.tags
            if r["loop"]["verdict"] not in ("no loop",):
                assert made.operation == "loop"
        assert (tmp_path / "m.png").stat().st_size > 1000
    proc = invoke("mine", "demo", "--min", "4", "--max", "3", library=lib_root)
    assert_one_line_error(proc, "--min")
    out = json.loads(invoke("mine", "demo", "--min", "1.5", "--max", "2", "--top", "1", "--dry-run", "--json",
                            library=lib_root).stdout)
    assert len(out["candidates"]) == 1 and out["stored"] is False
