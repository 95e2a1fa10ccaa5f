"""Each score moves the right way; formulas behave as documented. Uses the real sample motion."""

import math

import numpy as np
import pytest

from motionlib.processing.quality import assess, detect_cuts
from motionlib.processing.signal import lowpass, runs


@pytest.fixture(scope="module")
def demo_motion(demo_library):
    from motionlib.library import Library

    lib, rec = demo_library
    return Library(lib).load(rec["ref"])


def _assess(m, keypoints=None, confidence=None, width=None, height=None, diffs=None):
    return assess(
        m.keypoints if keypoints is None else keypoints,
        m.confidence if confidence is None else confidence,
        m.timestamps, m.duration, width or m.width, height or m.height, frame_diffs=diffs,
    )


def test_lowpass_passes_slow_motion_without_lag_and_removes_fast_noise():
    fs = 30.0
    t = np.arange(300) / fs
    slow = np.sin(2 * np.pi * 1.0 * t)
    fast = np.sin(2 * np.pi * 12.0 * t)
    y = lowpass(slow, fs, 6.0)
    assert np.abs(y[30:-30] - slow[30:-30]).max() < 0.02  # passes, zero phase (no lag)
    lag = np.argmax(np.correlate(y, slow, "full")) - (len(t) - 1)
    assert lag == 0
    assert np.abs(lowpass(fast, fs, 6.0)[30:-30]).max() < 0.1  # 12 Hz is attenuated >10x
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]


def test_more_noise_lowers_jitter_monotonically(demo_motion):
    from motionlib.processing.quality import torso_length

    torso = torso_length(demo_motion.keypoints)
    rng = np.random.default_rng(0)
    base_noise = rng.standard_normal(demo_motion.keypoints.shape).astype(np.float32)
    scores, raws = [], []
    for sigma in (0.0, 0.02, 0.05, 0.1, 0.2):
        kp = demo_motion.keypoints + sigma * torso * base_noise
        q = _assess(demo_motion, keypoints=kp)
        scores.append(q.scores["jitter"])
        raws.append(q.raw["jitter"])
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert all(a < b for a, b in zip(raws, raws[1:])), raws
    assert scores[-1] < 0.1


def test_hiding_wrists_lowers_occlusion_and_warns(demo_motion):
    base = _assess(demo_motion)
    conf = demo_motion.confidence.copy()
    conf[::2, 15] = 0.0  # left wrist hidden in every other frame
    conf[1::2, 16] = 0.0  # right wrist in the others
    hidden = _assess(demo_motion, confidence=conf)
    assert hidden.scores["occlusion"] < base.scores["occlusion"] - 0.05
    assert hidden.details["occlusion"]["hidden"]["wrists"] == 1.0
    assert any(w.startswith("wrists hidden in 100%") for w in hidden.warnings)
    # wrists weigh more than the same number of face points
    conf_face = demo_motion.confidence.copy()
    conf_face[::2, 1] = 0.0
    conf_face[1::2, 2] = 0.0
    assert _assess(demo_motion, confidence=conf_face).scores["occlusion"] > hidden.scores["occlusion"]


def test_cropping_lowers_framing(demo_motion):
    base = _assess(demo_motion)
    det = demo_motion.detected
    hips_y = np.nanmedian(demo_motion.keypoints[det][:, [23, 24], 1])
    # A frame that ends at the hips: knees and ankles fall outside.
    cropped = _assess(demo_motion, height=int(hips_y))
    assert cropped.scores["framing"] < base.scores["framing"] - 0.1
    assert cropped.raw["framing"] < base.raw["framing"]
    assert any("outside the frame" in w for w in cropped.warnings)


def test_cut_detection_on_synthetic_differences():
    ts = np.arange(100) / 25.0
    diffs = np.full(99, 0.01)
    diffs += np.random.default_rng(1).uniform(0, 0.01, 99)
    diffs[49] = 0.4  # between frame 49 and 50
    cuts = detect_cuts(diffs, ts)
    assert [c["frame"] for c in cuts] == [50]
    assert cuts[0]["time"] == pytest.approx(2.0)
    # steady fast motion (large but uniform differences) is not a cut
    assert detect_cuts(np.full(99, 0.2), ts) == []


def test_overall_is_geometric_mean(demo_motion):
    q = _assess(demo_motion)
    s = [v for v in q.scores.values() if v is not None]
    assert q.overall == pytest.approx(math.prod(s) ** (1 / len(s)), abs=1e-3)
    for v in list(q.scores.values()) + [q.overall]:
        assert 0.0 <= v <= 1.0


def test_sparse_hands_or_face_of_a_whole_body_motion_are_said():
    from motionlib.core.skeleton import MEDIAPIPE_HOLISTIC_543 as H
    from motionlib.processing.quality import block_warnings

    T = 120
    kp = np.full((T, 543, 2), 100.0, np.float32)
    conf = np.zeros((T, 543), np.float32)
    conf[:, :33] = 0.9
    conf[:8, 33:54] = 1.0  # the left hand in 8 frames
    conf[:100, 54:75] = 1.0  # the right hand in most
    conf[:, 75:] = 1.0  # the face in all
    assert block_warnings(kp, conf, H) == ["left hand found in only 8 of 120 frames (7%): its points are missing elsewhere"]
