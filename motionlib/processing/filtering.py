"""Keypoint clean-up: gap interpolation, Hampel outlier rejection, zero-phase Butterworth and
One-Euro smoothing, and a lag measurement. Pure numpy; arrays are [T, J, D] with NaN = unknown.

``smooth`` runs the chain used by ``motionlib smooth`` (see docs/edits.md):

1. points below ``min_confidence`` are treated as unknown while filtering (MediaPipe still guesses
   hidden joints; those guesses are the noisiest part of a track);
2. Hampel filter per joint and coordinate: a point further than ``sigmas`` x 1.4826 x MAD (at
   least ``floor`` pixels) from the median of its ``window``-frame neighbourhood is replaced by
   that median;
3. gaps up to ``max_gap`` seconds between known points are interpolated linearly in time;
4. low-confidence guesses that were not interpolated are put back as they were;
5. every run of known points is low-passed: Butterworth (zero phase, forwards-backwards, so no lag)
   at ``cutoff`` Hz, or One-Euro (causal, adaptive; it lags).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from motionlib.processing.signal import lowpass, runs


def _known(x: np.ndarray) -> np.ndarray:
    """[T, J] True where every coordinate is finite."""
    return np.isfinite(x).all(axis=-1)


def interpolate_gaps(x: np.ndarray, timestamps: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Fill runs of unknown points no longer than ``max_gap`` seconds that have known points on
    both sides, linearly in time. Returns (filled copy, [T, J] mask of filled points, gaps left
    as (joint, start, stop) frame ranges)."""
    out = np.array(x, dtype=np.float32, copy=True)
    T, J = out.shape[:2]
    filled = np.zeros((T, J), bool)
    left: list[tuple[int, int, int]] = []
    ts = np.asarray(timestamps, np.float64)
    step = float(np.median(np.diff(ts))) if T > 1 else 0.0
    known = _known(out)
    for j in range(J):
        for a, b in runs(~known[:, j]):
            if a == 0 or b == T:
                left.append((j, a, b))  # no anchor on one side: leave it
                continue
            span = ts[b] - ts[a - 1] - step  # seconds without data
            if span > max_gap + 1e-9:
                left.append((j, a, b))
                continue
            w = ((ts[a:b] - ts[a - 1]) / (ts[b] - ts[a - 1]))[:, None]
            out[a:b, j] = (1 - w) * out[a - 1, j] + w * out[b, j]
            filled[a:b, j] = True
    return out, filled, left


def hampel(x: np.ndarray, window: int = 7, sigmas: float = 3.0, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Hampel filter along axis 0 of [T, ...] (NaN ignored). Returns (copy with outliers replaced
    by the local median, mask of replaced values)."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(x, dtype=np.float64)
    half = max(1, window // 2)
    T = x.shape[0]
    flat = x.reshape(T, -1)
    out = flat.copy()
    mask = np.zeros(flat.shape, bool)
    if T < 3:
        return out.reshape(x.shape), mask.reshape(x.shape)
    pad = np.pad(flat, ((half, half), (0, 0)), mode="constant", constant_values=np.nan)
    # columns in blocks keep the windowed copy small on long clips with many joints: about 2 M
    # windowed values a block
    cols = max(1, min(64, 2_000_000 // max(1, T * (2 * half + 1))))
    for c0 in range(0, flat.shape[1], cols):
        block = pad[:, c0 : c0 + cols]
        win = sliding_window_view(block, 2 * half + 1, axis=0)  # [T, C, W]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, as wanted
            med = np.nanmedian(win, axis=2)
            mad = 1.4826 * np.nanmedian(np.abs(win - med[..., None]), axis=2)
        thr = sigmas * np.maximum(mad, floor)
        xs = flat[:, c0 : c0 + cols]
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(xs) & np.isfinite(med) & (np.abs(xs - med) > thr)
        out[:, c0 : c0 + cols][bad] = med[bad]
        mask[:, c0 : c0 + cols] = bad
    return out.reshape(x.shape), mask.reshape(x.shape)


def butterworth(x: np.ndarray, fs: float, cutoff: float, min_run: int = 4) -> np.ndarray:
    """Zero-phase low-pass of each run of known points of [T, J, D] (shorter runs kept as is)."""
    out = np.array(x, dtype=np.float32, copy=True)
    known = _known(out)
    for j in range(out.shape[1]):
        for a, b in runs(known[:, j]):
            if b - a >= min_run:
                out[a:b, j] = lowpass(out[a:b, j], fs, cutoff)
    return out


def one_euro(x: np.ndarray, timestamps: np.ndarray, min_cutoff: float = 1.0, beta: float = 0.01,
             d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) along time for [T, J, D]; restarts after each gap.
    Causal: it adapts its cutoff to speed, and lags less the faster a point moves."""
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    ts = np.asarray(timestamps, np.float64)

    def alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    known = _known(x)
    for j in range(x.shape[1]):
        for a, b in runs(known[:, j]):
            prev = x[a, j]
            dprev = np.zeros_like(prev)
            for t in range(a + 1, b):
                dt = max(ts[t] - ts[t - 1], 1e-6)
                dx = (x[t, j] - prev) / dt
                ad = alpha(d_cutoff, dt)
                dprev = ad * dx + (1 - ad) * dprev
                cutoff = min_cutoff + beta * np.abs(dprev)
                a_ = 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) / dt)
                prev = a_ * x[t, j] + (1 - a_) * prev
                out[t, j] = prev
    return out.astype(np.float32)


def lag_frames(raw: np.ndarray, smoothed: np.ndarray, reliable: np.ndarray, max_shift: int = 8) -> float | None:
    """How many frames ``smoothed`` trails ``raw`` (positive: it lags).

    For every joint coordinate whose movement clearly exceeds its noise (standard deviation of
    the smoothed track at least 3x the raw track's noise, estimated from its second differences),
    the shift s minimising the mean
    squared difference between smoothed[t + s] and raw[t] is found (refined to a fraction of a
    frame with a parabola); the result is their mean weighted by the movement's variance.
    Joints that hardly move say nothing about lag (and their noise would bias towards 0)."""
    raw = np.asarray(raw, np.float64)
    sm = np.asarray(smoothed, np.float64)
    T = raw.shape[0]
    if T <= 2 * max_shift + 10:
        return None
    ok = reliable[..., None] & np.isfinite(raw) & np.isfinite(sm)
    lags, weights = [], []
    for j in range(raw.shape[1]):
        for k in range(raw.shape[2]):
            m = ok[:, j, k]
            if m.sum() < 2 * max_shift + 10:
                continue
            motion = np.std(sm[m, j, k])
            # white noise of std n has second differences of std n * sqrt(6)
            noise = np.std(np.diff(raw[m, j, k], 2)) / math.sqrt(6)
            if motion < 3 * max(noise, 1e-6):
                continue
            errs = []
            for s in range(-max_shift, max_shift + 1):
                a = slice(max(0, -s), T - max(0, s))  # raw[t]
                b = slice(max(0, s), T - max(0, -s))  # smoothed[t + s]
                mm = m[a] & m[b]
                if mm.sum() < 10:
                    errs.append(np.inf)
                    continue
                d = sm[b, j, k][mm] - raw[a, j, k][mm]
                errs.append(float(np.mean(d * d)))
            errs = np.asarray(errs)
            i = int(np.argmin(errs))
            if not np.isfinite(errs[i]):
                continue
            shift = float(i - max_shift)
            if 0 < i < len(errs) - 1 and np.isfinite(errs[i - 1 : i + 2]).all():
                e0, e1, e2 = errs[i - 1 : i + 2]
                denom = e0 - 2 * e1 + e2
                if denom > 0:
                    shift += 0.5 * (e0 - e2) / denom
            lags.append(shift)
            weights.append(motion**2)
    if not lags:
        return None
    return float(np.average(lags, weights=weights))


def smooth_keypoints(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    timestamps: np.ndarray,
    *,
    fs: float,
    method: str = "butterworth",
    cutoff: float = 6.0,
    min_confidence: float = 0.5,
    max_gap: float = 0.2,
    window: int = 7,
    sigmas: float = 3.0,
    floor: float = 0.0,
    beta: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The ``smooth`` chain (module docstring) on [T, J, 2] pixels. Returns (keypoints, confidence,
    counts of what changed)."""
    kp = np.asarray(keypoints, np.float32)
    conf = np.asarray(confidence, np.float32).copy()
    known = _known(kp)
    unreliable = known & (conf < min_confidence)
    work = kp.copy()
    work[unreliable] = np.nan
    cleaned, outliers = hampel(work, window=window, sigmas=sigmas, floor=floor)
    cleaned = cleaned.astype(np.float32)
    filled_work, filled, _left = interpolate_gaps(cleaned, timestamps, max_gap)
    # new points where the estimator had nothing: confidence of the weaker anchor
    missing_filled = filled & ~known
    if missing_filled.any():
        anchor = _anchor_confidence(conf, known & ~unreliable)
        conf[missing_filled] = anchor[missing_filled]
    restore = unreliable & ~filled
    filled_work[restore] = kp[restore]
    if method == "butterworth":
        out = butterworth(filled_work, fs, cutoff)
    elif method == "one-euro":
        out = one_euro(filled_work, timestamps, min_cutoff=cutoff, beta=beta)
    else:
        raise ValueError(f"unknown smoothing method {method!r}")
    counts = {
        "outliers_replaced": int(outliers.any(axis=-1).sum()),
        "low_confidence_interpolated": int((unreliable & filled).sum()),
        "missing_interpolated": int(missing_filled.sum()),
    }
    return out, conf, counts


def _anchor_confidence(conf: np.ndarray, good: np.ndarray) -> np.ndarray:
    """For each point, the lower confidence of the nearest good points before and after it."""
    T, J = conf.shape
    before = np.zeros((T, J), np.float32)
    after = np.zeros((T, J), np.float32)
    last = np.zeros(J, np.float32)
    for t in range(T):
        before[t] = last
        last = np.where(good[t], conf[t], last)
    last = np.zeros(J, np.float32)
    for t in range(T - 1, -1, -1):
        after[t] = last
        last = np.where(good[t], conf[t], last)
    return np.minimum(before, after)
