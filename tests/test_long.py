"""Long motions (issue 16): batched filtering gives the run-by-run numbers on a real gappy track,
without the per-sample Python loop per run."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from motionlib import exchange
from motionlib.processing import filtering, quality, signal

GOLDEN = Path(__file__).parent / "golden"


def real_track(frames: int):
    """The sample clip's real MediaPipe track (tests/golden/sample_track.npz: 230 frames, the
    performer missing in 27% of them, runs of doubtful joints), played forwards then backwards up
    to ``frames``: a gappy track with thousands of short runs."""
    m = exchange.import_npz(GOLDEN / "sample_track.npz").motion
    order = np.concatenate([np.arange(m.frames), np.arange(m.frames - 2, 0, -1)])
    idx = np.resize(order, frames)
    return replace(m, keypoints=m.keypoints[idx], confidence=m.confidence[idx],
                   timestamps=np.arange(frames) / m.fps, duration=frames / m.fps).validate()


# ------------------------------------------------------------------ run by run, as it was done
def lowpass_each_run(x, fs, cutoff, min_run=4):
    out = np.array(x, np.float32, copy=True)
    known = np.isfinite(out).all(axis=-1)
    for j in range(out.shape[1]):
        for a, b in signal.runs(known[:, j]):
            if b - a >= min_run:
                out[a:b, j] = signal.lowpass(out[a:b, j], fs, cutoff)
    return out


def one_euro_each_run(x, ts, min_cutoff=1.0, beta=0.01, d_cutoff=1.0):
    x = np.asarray(x, np.float64)
    out = x.copy()
    tau_d = 1.0 / (2 * math.pi * d_cutoff)
    known = np.isfinite(x).all(axis=-1)
    for j in range(x.shape[1]):
        for a, b in signal.runs(known[:, j]):
            prev, dprev = x[a, j], np.zeros(x.shape[2])
            for t in range(a + 1, b):
                dt = max(ts[t] - ts[t - 1], 1e-6)
                dx = (x[t, j] - prev) / dt
                ad = 1.0 / (1.0 + tau_d / dt)
                dprev = ad * dx + (1 - ad) * dprev
                cutoff = min_cutoff + beta * np.abs(dprev)
                a_ = 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) / dt)
                prev = a_ * x[t, j] + (1 - a_) * prev
                out[t, j] = prev
    return out.astype(np.float32)


def interpolate_each_gap(x, ts, max_gap):
    out = np.array(x, np.float32, copy=True)
    T, J = out.shape[:2]
    filled = np.zeros((T, J), bool)
    step = float(np.median(np.diff(ts)))
    known = np.isfinite(out).all(axis=-1)
    left = []
    for j in range(J):
        for a, b in signal.runs(~known[:, j]):
            if a == 0 or b == T or ts[b] - ts[a - 1] - step > max_gap + 1e-9:
                left.append((j, a, b))
                continue
            w = ((ts[a:b] - ts[a - 1]) / (ts[b] - ts[a - 1]))[:, None]
            out[a:b, j] = (1 - w) * out[a - 1, j] + w * out[b, j]
            filled[a:b, j] = True
    return out, filled, left


@pytest.fixture
def no_sample_loop(monkeypatch):
    """Fail if the per-sample Python recursion runs (the old path ran it twice per run)."""
    calls = []
    real = signal._biquad
    monkeypatch.setattr(signal, "_biquad", lambda *a: calls.append(1) or real(*a))
    yield calls
    assert not calls, f"the per-sample loop ran {len(calls)} times"


def test_real_track_is_gappy():
    m = real_track(3000)
    known = np.isfinite(m.keypoints).all(axis=2)
    assert 0.2 < 1 - known.any(axis=1).mean() < 0.35
    assert sum(len(signal.runs(known[:, j])) for j in range(33)) > 500


def test_batched_butterworth_is_run_by_run_bit_for_bit(no_sample_loop):
    m = real_track(3000)
    want = lowpass_each_run(m.keypoints, m.fps, 6.0)  # (the reference may loop; checked below)
    no_sample_loop.clear()
    got = filtering.butterworth(m.keypoints, m.fps, 6.0)
    np.testing.assert_array_equal(got, want)


def test_lowpass_runs_long_and_short_runs_match_lowpass():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6000, 3)).cumsum(axis=0)
    runs = [(0, 0, 2), (0, 2, 3), (0, 5, 4000), (1, 10, 17), (1, 17, 2100), (2, 0, 6000)]  # LONG is 2048
    col, a, b = (np.array(v) for v in zip(*runs))
    out = np.full_like(x, np.nan)
    signal.lowpass_runs(x, col, a, b, 30.0, 5.0, out)
    for c, s, e in runs:
        np.testing.assert_allclose(out[s:e, c], signal.lowpass(x[s:e, c], 30.0, 5.0), rtol=0, atol=1e-9)
    assert np.isnan(out[3:5, 0]).all() and np.isnan(out[:10, 1]).all()


def test_column_runs_lists_runs_column_by_column():
    mask = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], bool)
    col, a, b = signal.column_runs(mask)
    assert list(zip(col.tolist(), a.tolist(), b.tolist())) == [(0, 0, 2), (0, 3, 4), (1, 1, 4)]
    col, a, b = signal.column_runs(mask, 2)
    assert list(zip(col.tolist(), a.tolist(), b.tolist())) == [(0, 0, 2), (1, 1, 4)]


def test_batched_one_euro_is_run_by_run_bit_for_bit():
    m = real_track(1500)
    np.testing.assert_array_equal(filtering.one_euro(m.keypoints, m.timestamps),
                                  one_euro_each_run(m.keypoints, m.timestamps))


def test_batched_gap_filling_is_gap_by_gap():
    m = real_track(3000)
    got = filtering.interpolate_gaps(m.keypoints, m.timestamps, 0.2)
    want = interpolate_each_gap(m.keypoints, m.timestamps, 0.2)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == want[2] and want[1].any() and want[2]


def test_anchor_confidence_is_the_nearest_good_points():
    conf = np.array([[0.9], [0.1], [0.2], [0.7], [0.3]], np.float32)
    good = np.array([[True], [False], [False], [True], [False]])
    np.testing.assert_array_equal(filtering._anchor_confidence(conf, good)[:, 0], np.float32([0, 0.7, 0.7, 0, 0]))


def test_hampel_median_is_numpys_nanmedian():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 3, 7))
    a[rng.random(a.shape) < 0.4] = np.nan
    a[0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(a, axis=2)
    np.testing.assert_array_equal(filtering.nanmedian_of([a[..., i] for i in range(7)]), want)


def test_smooth_and_scores_of_a_gappy_track_skip_the_per_sample_loop(no_sample_loop):
    m = real_track(3000)
    kp, conf, counts = filtering.smooth_keypoints(m.keypoints, m.confidence, m.timestamps, fs=m.fps, floor=3.0)
    assert counts["missing_interpolated"] > 0 and np.isfinite(kp).any()
    report = quality.assess_motion(m)
    assert report.scores["jitter"] is not None and report.details["jitter"]["samples"] > 10_000


def test_jitter_is_the_run_by_run_residual():
    m = real_track(3000)
    score, raw, details, _ = quality.jitter(m.keypoints, m.confidence, m.timestamps, m.duration, m.skeleton)
    fs = m.frames / m.duration
    cutoff, min_run = min(6.0, 0.4 * fs), max(8, int(math.ceil(fs / 2)))
    every = []
    for j in m.skeleton.body:
        ok = (m.confidence[:, j] >= quality.VISIBLE) & np.isfinite(m.keypoints[:, j]).all(axis=1)
        for a, b in signal.runs(ok):
            if b - a >= min_run:
                x = m.keypoints[a:b, j].astype(np.float64)
                every.append(np.abs(x - signal.lowpass(x, fs, cutoff)).ravel())
    every = np.concatenate(every)
    torso = quality.torso_length(m.keypoints, m.skeleton)
    assert raw == quality.ROBUST_SIGMA * float(np.median(every)) / torso
    assert details["samples"] == every.size


# ------------------------------------------------------------------ limits and spans
@pytest.fixture
def long_library(tmp_path):
    """A library holding the real track tiled to 3000 frames (100 s), imported as ``take``."""
    from conftest import invoke

    m = real_track(3000)
    npz = exchange.export_npz(m, tmp_path / "take.npz")
    lib = tmp_path / "lib"
    ran = invoke("import", npz, "--format", "npz", library=lib)
    assert ran.returncode == 0, ran.stderr
    return lib, m


@pytest.fixture
def small_limit(monkeypatch):
    """Commands hold at most 1000 frames of 33 joints."""
    from motionlib.core import limits

    monkeypatch.setattr(limits, "BYTES_PER_POINT", (limits.MEMORY_BUDGET - limits.BASE) // (1000 * 33))
    assert limits.max_frames(33) == 1000


@pytest.mark.parametrize("command", [["smooth"], ["loop"], ["mirror"], ["preview", "-o", "p.mp4"],
                                     ["export", "-f", "npz", "-o", "t.npz"],
                                     ["render", "-i", "nobody", "-o", "p.mp4"]])
def test_a_take_past_the_limit_is_refused_in_one_line_before_it_is_read(long_library, small_limit, monkeypatch,
                                                                         tmp_path, command):
    from conftest import assert_one_line_error, invoke

    from motionlib import store

    lib, _ = long_library
    monkeypatch.setattr(store, "read_motion", lambda *a, **k: pytest.fail("read before the check"))
    args = ["-m", "take", *command[1:]] if command[0] == "render" else ["take", *command[1:]]
    ran = invoke(command[0], *args, library=lib, cwd=tmp_path)
    assert ran.returncode == 2
    assert_one_line_error(ran, "take@1 has 3,000 frames")
    assert "at most 1,000 frames of 33 joints" in ran.stderr and "`motionlib trim take@1 --end 33`" in ran.stderr
    assert not (tmp_path / "p.mp4").exists() and not (tmp_path / "t.npz").exists()


def test_trim_and_preview_cut_a_take_past_the_limit_reading_only_the_part(long_library, small_limit, tmp_path):
    from conftest import invoke, invoke_json

    from motionlib.library import Library
    from motionlib.processing import ops
    from motionlib.store import read_motion

    lib, _ = long_library
    part = Library(lib).load("take@1", span=(10.0, 40.0))
    assert part.frames == 901 and part.attrs["first_frame"] == 300  # the part, and the frame after it
    made = invoke_json("trim", "take", "--start", 10, "--end", 40, "--name", "part", library=lib)
    assert made["record"]["frames"] == 900
    whole = read_motion(lib / Library(lib).get("take@1").store_path)  # (past the library's limit)
    want = ops.trim(whole, 10.0, 40.0).motion
    got = Library(lib).load("part@1")
    np.testing.assert_array_equal(got.keypoints, want.keypoints)
    np.testing.assert_array_equal(got.confidence, want.confidence)
    np.testing.assert_array_equal(got.timestamps, want.timestamps)
    assert got.duration == round(want.duration, 6)
    info = invoke_json("preview", "take@1", "--start", 10, "--end", 40, "-o", tmp_path / "p.mp4", library=lib)
    assert info["frames"] == 900 and info["span"] == [10.0, 40.0] and (tmp_path / "p.mp4").stat().st_size > 0
    ran = invoke("preview", "take@1", "--start", 200, "-o", tmp_path / "q.mp4", library=lib)
    assert ran.returncode == 2 and "past the end" in ran.stderr


def test_an_import_past_the_limit_is_refused_from_the_array_header(small_limit, monkeypatch, tmp_path):
    from conftest import assert_one_line_error, invoke

    npz = exchange.export_npz(real_track(3000), tmp_path / "take.npz")
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("arrays read before the check"))
    ran = invoke("import", npz, "--format", "npz", library=tmp_path / "lib")
    assert ran.returncode == 2
    assert_one_line_error(ran, "take.npz: 3,000 frames; a version holds at most 1,000 frames of 33 joints")


def test_an_ingest_past_the_limit_is_refused_before_decoding():
    from motionlib.core.errors import InputError
    from motionlib.ingest.pipeline import _check_length
    from motionlib.core.limits import max_frames

    _check_length(Path("take.mp4"), max_frames(33), 33, 30.0)  # at the limit: fine
    with pytest.raises(InputError, match=r"take.mp4 holds about 1,000,000 frames; .* parts of up to \d+ s with "
                                         r"start and end"):
        _check_length(Path("take.mp4"), 1_000_000, 33, 30.0)


def test_retarget_steady_bone_lengths_are_run_by_run_bit_for_bit(no_sample_loop):
    from motionlib.render import retarget as rt

    m = real_track(3000)
    pos, conf = rt._points(m.keypoints.astype(np.float64), m.confidence, m.skeleton)
    vec = pos["left_wrist"] - pos["left_elbow"]
    ok = (conf["left_wrist"] >= 0.5) & (conf["left_elbow"] >= 0.5)
    length = np.linalg.norm(vec, axis=-1)
    spans = [(a, b) for a, b in signal.runs(ok & np.isfinite(length) & (length > 0)) if b - a >= 8]
    assert len(spans) > 10
    k = spans[3][0] + 2
    want = np.ones(len(length))  # run by run, as it was done
    for a, b in spans:
        smooth = np.maximum(signal.lowpass(length[a:b], m.fps, 3.0), 1e-6)
        factor = smooth / length[a:b]
        if a <= k < b:
            factor = factor * (length[k] / smooth[k - a])
        want[a:b] = factor
    no_sample_loop.clear()
    np.testing.assert_array_equal(rt._steady_lengths(vec, ok, m.fps, k), want)
