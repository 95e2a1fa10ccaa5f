"""The parallel, stitched tracker gives the same track as one sequential tracker."""

import numpy as np

from motionlib.ingest.pipeline import IngestOptions, analyze


def test_parallel_segments_match_sequential_on_the_sample_clip(sample, demo_library):
    from motionlib.library import Library

    lib, rec = demo_library
    parallel = Library(lib).load(rec["ref"])  # ingested with the default (parallel) workers
    seq = analyze(sample, IngestOptions(workers=1))
    assert seq.stats["workers"] == 1 and rec["stats"]["workers"] >= 2
    a, b = parallel.keypoints, seq.motion.keypoints
    assert a.shape == b.shape
    assert (np.isnan(a) == np.isnan(b)).all()
    both = np.isfinite(a) & np.isfinite(b)
    assert np.abs(a[both] - b[both]).max() < 2.0  # pixels of a 1768x994 frame


def test_three_workers_short_segments(short_clip):
    one = analyze(short_clip, IngestOptions(workers=1))
    three = analyze(short_clip, IngestOptions(workers=3))
    assert three.stats["segments"] >= 3
    a, b = one.motion.keypoints, three.motion.keypoints
    assert (np.isnan(a) == np.isnan(b)).all()
    both = np.isfinite(a)
    # Fresh trackers after a warm-up differ only by the smoothing filter's first frames.
    assert np.median(np.abs(a[both] - b[both])) < 1.0
