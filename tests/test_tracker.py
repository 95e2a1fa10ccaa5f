"""Parallel worker processes, stitched, give the same track as one sequential tracker."""

import numpy as np
import pytest

from conftest import write_clip
from motionlib.media import video
from motionlib.ingest.pipeline import IngestOptions, analyze
from motionlib.ingest.tracker import plan_segments


def _same_track(a, b, tol_px):
    assert a.shape == b.shape
    assert (np.isnan(a) == np.isnan(b)).all()
    both = np.isfinite(a) & np.isfinite(b)
    return np.abs(a[both] - b[both])


def test_parallel_workers_match_sequential_on_the_sample_clip(sample, demo_library):
    """On the sample clip the second worker starts on a different person than the running track
    (the boundary falls where the tracker is between the man and the woman): the first worker
    must catch up, and the stitched result must equal the sequential one."""
    from motionlib.library import Library

    lib, rec = demo_library
    if rec["stats"]["workers"] == 1:
        seq = Library(lib).load(rec["ref"]).keypoints
    else:
        seq = analyze(sample, IngestOptions(workers=1)).motion.keypoints
    par = analyze(sample, IngestOptions(workers=2))
    assert par.stats["workers"] == 2 and par.stats["fallbacks"] >= 1
    diff = _same_track(par.motion.keypoints, seq, 2.0)
    assert diff.max() < 2.0  # pixels of a 1768x994 frame


def test_more_workers_than_segments_and_a_clean_boundary(tmp_path, demo_frames):
    clip = write_clip(tmp_path / "four.mp4", demo_frames)  # 4 s: room for two 2 s segments
    one = analyze(clip, IngestOptions(workers=1))
    many = analyze(clip, IngestOptions(workers=3))
    assert many.stats["segments"] == 2
    diff = _same_track(many.motion.keypoints, one.motion.keypoints, 1.0)
    # A fresh tracker after its warm-up differs only by the smoothing filter's first frames.
    assert np.median(diff) < 1.0
    assert np.allclose(one.motion.timestamps, many.motion.timestamps)
    assert np.allclose(one.quality.details["framing"]["detection"], many.quality.details["framing"]["detection"])


def test_segment_plan(sample):
    info = video.probe(sample)  # 7.67 s
    assert plan_segments(info, None, None, 1) == [0.0, pytest.approx(info.declared_duration)]
    b = plan_segments(info, None, None, 2)
    assert len(b) == 3 and b[0] == 0 and b[-1] == pytest.approx(info.declared_duration)
    assert b[1] - b[0] > b[2] - b[1]  # the first worker starts at once: it gets more
    assert len(plan_segments(info, 1.0, 4.0, 4)) == 2  # 3 s leaves room for one 2 s segment
    assert len(plan_segments(info, 0.0, 4.0, 4)) == 3
