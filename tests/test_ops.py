"""Edits on synthetic motions of known shape, and the smoothing figures on the real clip."""

from __future__ import annotations

import numpy as np
import pytest

from motionlib.core.errors import InputError, MotionlibError
from motionlib.core.motion import Motion
from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK
from motionlib.processing import ops
from motionlib.processing.quality import assess_motion
from motionlib.processing.cleaning import body_centre_and_scale

# A standing pose (pixels) in MediaPipe order, roughly 200 px tall.
_NAMED = {
    "nose": (0, -170), "left_eye_inner": (4, -175), "left_eye": (7, -175), "left_eye_outer": (10, -175),
    "right_eye_inner": (-4, -175), "right_eye": (-7, -175), "right_eye_outer": (-10, -175),
    "left_ear": (14, -170), "right_ear": (-14, -170), "mouth_left": (5, -162), "mouth_right": (-5, -162),
    "left_shoulder": (25, -140), "right_shoulder": (-25, -140), "left_elbow": (35, -100),
    "right_elbow": (-35, -100), "left_wrist": (40, -60), "right_wrist": (-40, -60),
    "left_pinky": (42, -52), "right_pinky": (-42, -52), "left_index": (40, -50), "right_index": (-40, -50),
    "left_thumb": (37, -54), "right_thumb": (-37, -54), "left_hip": (15, -70), "right_hip": (-15, -70),
    "left_knee": (17, -35), "right_knee": (-17, -35), "left_ankle": (18, 0), "right_ankle": (-18, 0),
    "left_heel": (16, 4), "right_heel": (-16, 4), "left_foot_index": (24, 6), "right_foot_index": (-24, 6),
}
POSE = np.array([_NAMED[n] for n in SK.joint_names], np.float32)


def make_motion(T=150, fps=30.0, *, travel=(0.0, 0.0), wave_hz=1.0, wave_px=30.0, noise=0.0, seed=0,
                centre=(320.0, 400.0)) -> Motion:
    """A performer at ``centre`` waving the right wrist (sinusoid), travelling ``travel`` px/s."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    kp = np.repeat(POSE[None], T, axis=0) + np.asarray(centre, np.float32)
    kp[:, :, 0] += (travel[0] * t)[:, None]
    kp[:, :, 1] += (travel[1] * t)[:, None]
    rw = SK.index("right_wrist")
    kp[:, rw, 1] += wave_px * np.sin(2 * np.pi * wave_hz * t)
    kp += rng.normal(0, noise, kp.shape).astype(np.float32) if noise else 0
    conf = np.full((T, SK.num_joints), 0.95, np.float32)
    return Motion(SK, kp.astype(np.float32), conf, t, 640, 480, T / fps).validate()


def test_trim_keeps_the_span_and_rezeroes_time():
    m = make_motion()
    e = ops.trim(m, 1.0, 3.0)
    assert e.motion.frames == 60 and e.motion.timestamps[0] == 0.0
    assert e.motion.duration == pytest.approx(2.0)
    np.testing.assert_array_equal(e.motion.keypoints, m.keypoints[30:90])
    assert e.span == (1.0, 3.0) and e.params == {"start": 1.0, "end": 3.0}


@pytest.mark.parametrize("start, end, words", [
    (6.0, None, "past the end"), (2.0, 1.0, "after"), (-1, 2, ">= 0"), (0, 9.0, "past the end"),
    (1.0, 1.02, "at least 2"),
])
def test_trim_rejects_ranges_outside_the_clip(start, end, words):
    with pytest.raises(InputError, match=words):
        ops.trim(make_motion(), start, end)


def test_smooth_removes_noise_without_lag():
    clean = make_motion(T=240, wave_hz=1.5, wave_px=40)
    noisy = make_motion(T=240, wave_hz=1.5, wave_px=40, noise=3.0, seed=1)
    e = ops.smooth(noisy)
    err_before = np.abs(noisy.keypoints - clean.keypoints).mean()
    err_after = np.abs(e.motion.keypoints - clean.keypoints).mean()
    assert err_after < 0.7 * err_before  # a 6 Hz cutoff keeps 40% of the band at 30 fps
    tighter = ops.smooth(noisy, cutoff=3.0)
    assert np.abs(tighter.motion.keypoints - clean.keypoints).mean() < 0.5 * err_before
    assert abs(e.result["lag_frames"]) < 0.25
    assert assess_motion(e.motion).scores["jitter"] > assess_motion(noisy).scores["jitter"] + 0.2
    # the wave keeps its amplitude (a 1.5 Hz movement is far below the 6 Hz cutoff)
    rw = SK.index("right_wrist")
    amp = np.ptp(e.motion.keypoints[20:-20, rw, 1])
    assert amp == pytest.approx(np.ptp(clean.keypoints[20:-20, rw, 1]), rel=0.1)


def test_one_euro_lags_where_butterworth_does_not():
    noisy = make_motion(T=240, wave_hz=1.5, wave_px=40, noise=3.0, seed=1)
    lag_bw = ops.smooth(noisy).result["lag_frames"]
    lag_oe = ops.smooth(noisy, method="one-euro", cutoff=1.0, beta=0.0).result["lag_frames"]
    assert lag_oe > 1.0 > abs(lag_bw)


def test_smooth_rejects_outliers_and_fills_short_gaps_only():
    m = make_motion(T=150)
    kp = m.keypoints.copy()
    conf = m.confidence.copy()
    lw = SK.index("left_wrist")
    kp[40, lw] += 80  # a one-frame spike
    kp[60:63] = np.nan  # 0.1 s dropout of everything
    conf[60:63] = 0
    kp[100:130] = np.nan  # 1 s dropout
    conf[100:130] = 0
    m2 = Motion(SK, kp, conf, m.timestamps, 640, 480, m.duration).validate()
    e = ops.smooth(m2, max_gap=0.2)
    out = e.motion.keypoints
    assert abs(out[40, lw, 0] - m.keypoints[40, lw, 0]) < 3, "the spike must be gone"
    assert np.isfinite(out[60:63]).all(), "a 0.1 s gap is interpolated"
    assert np.isnan(out[100:130]).all(), "a 1 s gap stays unknown"
    assert e.result["outliers_replaced"] >= 1 and e.result["missing_interpolated"] == 3 * 33


def test_smooth_options_are_checked():
    m = make_motion()
    for kw, words in (({"cutoff": 20}, "half the frame rate"), ({"method": "kalman"}, "method"),
                      ({"cutoff": 0}, "> 0"), ({"window": 1}, "window")):
        with pytest.raises(InputError, match=words):
            ops.smooth(m, **kw)


def test_loop_finds_the_period_and_blends_the_seam():
    # 1.25 Hz wave: period 0.8 s = 24 frames; best loops are multiples of it
    m = make_motion(T=180, wave_hz=1.25, wave_px=40, noise=0.5, seed=3)
    e = ops.loop(m, min_length=1.0)
    n = e.motion.frames
    assert n % 24 in (0, 1, 23), n
    assert e.motion.duration >= 1.0
    assert e.result["seam_ratio"] < 1.6
    assert e.result["seam_distance_px"] <= e.result["seam_distance_before_blend_px"] + 1e-6
    # playing it twice: the wrap from the last frame to the first is as smooth as any step
    rw = SK.index("right_wrist")
    y = np.concatenate([e.motion.keypoints[:, rw, 1]] * 2)
    steps = np.abs(np.diff(y))
    assert steps[n - 1] < 3 * np.median(steps) + 2


def test_loop_says_whether_it_loops_and_strict_refuses_a_pop():
    good = ops.loop(make_motion(T=180, wave_hz=1.25, wave_px=40, noise=0.5, seed=3), min_length=1.0)
    assert good.result["loops"] and good.result["verdict"] == "seamless" and not good.warnings
    # a wrist drifting one way (no pose ever comes back) looped with no blending: the wrap pops
    m = make_motion(T=120, wave_hz=0.0, noise=0.3, seed=1)
    rw = SK.index("right_wrist")
    m.keypoints[:, rw, 0] += np.linspace(0, 300, m.frames, dtype=np.float32)
    bad = ops.loop(m, min_length=1.0, blend=0)
    assert not bad.result["loops"] and bad.result["verdict"] == "does not loop"
    assert bad.result["seam_vs_typical_step"] > ops.LOOP_OK
    assert bad.warnings and bad.warnings[0].startswith("does not loop")
    with pytest.raises(MotionlibError, match="does not loop"):
        ops.loop(m, min_length=1.0, blend=0, strict=True)


def test_loop_on_a_clip_too_short_fails_clearly():
    with pytest.raises(InputError, match="min_length"):  # the library's name; the CLI says --min-length
        ops.loop(make_motion(T=20), min_length=1.0)


def test_mirror_swaps_sides_and_flips_x():
    m = make_motion()
    e = ops.mirror(m)
    lw, rw = SK.index("left_wrist"), SK.index("right_wrist")
    np.testing.assert_allclose(e.motion.keypoints[:, lw, 0], 640 - m.keypoints[:, rw, 0])
    np.testing.assert_allclose(e.motion.keypoints[:, lw, 1], m.keypoints[:, rw, 1])
    back = ops.mirror(e.motion).motion
    np.testing.assert_allclose(back.keypoints, m.keypoints, atol=1e-4)
    assert not e.aligned


def test_in_place_removes_travel_and_keeps_the_movement():
    m = make_motion(T=180, travel=(60.0, 0.0), wave_hz=2.0, wave_px=30)
    centre, _ = body_centre_and_scale(m.keypoints, m.skeleton)
    assert np.ptp(centre[:, 0]) > 300
    e = ops.in_place(m)
    c2, _ = body_centre_and_scale(e.motion.keypoints, e.motion.skeleton)
    assert np.ptp(c2[:, 0]) < 10
    assert abs(np.median(c2[:, 0]) - 320) < 5, "centred in the frame"
    rw = SK.index("right_wrist")
    rel = e.motion.keypoints[:, rw] - c2
    rel0 = m.keypoints[:, rw] - centre
    np.testing.assert_allclose(rel, rel0, atol=1e-3)
    # pinned (cutoff 0): exactly constant
    pinned = ops.in_place(m, cutoff=0)
    c3, _ = body_centre_and_scale(pinned.motion.keypoints, pinned.motion.skeleton)
    assert np.ptp(c3[:, 0]) < 1e-3


def test_retime_speed_and_fps():
    m = make_motion(T=150, travel=(30.0, 0.0))
    fast = ops.retime(m, speed=2.0)
    assert fast.motion.duration == pytest.approx(2.5) and fast.motion.frames == 75
    np.testing.assert_allclose(fast.motion.keypoints[10, 0], m.keypoints[20, 0], atol=1e-3)
    slow = ops.retime(m, speed=0.5)
    assert slow.motion.frames == 300
    # linear travel: frame 1 of the slow one is half-way between frames 0 and 1
    np.testing.assert_allclose(slow.motion.keypoints[1, 11, 0], (m.keypoints[0, 11, 0] + m.keypoints[1, 11, 0]) / 2, atol=1e-3)
    at24 = ops.retime(m, fps=24)
    assert at24.motion.frames == 120 and at24.motion.fps == pytest.approx(24)
    with pytest.raises(InputError):
        ops.retime(m)
    with pytest.raises(InputError):
        ops.retime(m, speed=-1)


def test_retime_turns_variable_rate_into_constant():
    m = make_motion(T=100, travel=(30.0, 0.0))
    ts = np.cumsum(np.where(np.arange(100) % 2, 1 / 20, 1 / 40))
    ts -= ts[0]
    vfr = Motion(SK, m.keypoints, m.confidence, ts, 640, 480, float(ts[-1] + 1 / 30)).validate()
    e = ops.retime(vfr, fps=30)
    d = np.diff(e.motion.timestamps)
    assert np.allclose(d, 1 / 30)


def test_fill_gaps_fills_short_and_marks_long():
    m = make_motion(T=150, travel=(30.0, 0.0))
    kp, conf = m.keypoints.copy(), m.confidence.copy()
    kp[30:35] = np.nan
    conf[30:35] = 0
    kp[80:110] = np.nan
    conf[80:110] = 0
    gappy = Motion(SK, kp, conf, m.timestamps, 640, 480, m.duration).validate()
    e = ops.fill_gaps(gappy, 0.5)
    still = [j for j in range(33) if j != SK.index("right_wrist")]  # the waving wrist is not linear
    np.testing.assert_allclose(e.motion.keypoints[30:35, still], m.keypoints[30:35, still], atol=1e-3)
    assert (e.motion.confidence[30:35] > 0.9).all()
    assert np.isnan(e.motion.keypoints[80:110]).all() and (e.motion.confidence[80:110] == 0).all()
    assert e.result["frames_filled"] == 5
    assert e.result["gaps_left"] == [{"start": pytest.approx(80 / 30, abs=1e-3), "end": pytest.approx(110 / 30, abs=1e-3), "frames": 30}]


def test_smoothing_the_real_clip(demo_library):
    """The figures of the closing note: jitter before/after and the lag the smoothing adds."""
    from motionlib.library import Library

    m = Library(demo_library[0]).load("demo")
    before = assess_motion(m)
    e = ops.smooth(m)
    after = assess_motion(e.motion)
    print(f"\njitter {before.scores['jitter']} (raw {before.raw['jitter']}) -> {after.scores['jitter']} "
          f"(raw {after.raw['jitter']}), lag {e.result['lag_frames']} frames")
    assert after.scores["jitter"] > before.scores["jitter"] + 0.1
    assert after.raw["jitter"] < 0.5 * before.raw["jitter"], "smoothing halves the noise"
    assert abs(e.result["lag_frames"]) < 0.25
    lp = ops.loop(e.motion)
    print(f"loop {lp.result}")
    assert lp.result["seam_ratio"] < 2.0
