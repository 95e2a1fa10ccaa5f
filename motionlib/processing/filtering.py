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

import numpy as np

from motionlib.processing.signal import column_runs, lowpass_runs


def _known(x: np.ndarray) -> np.ndarray:
    """[T, J] True where every coordinate is finite."""
    return np.isfinite(x).all(axis=-1)


def interpolate_gaps(x: np.ndarray, timestamps: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Fill runs of unknown points no longer than ``max_gap`` seconds that have known points on
    both sides, linearly in time. Returns (filled copy, [T, J] mask of filled points, gaps left
    as (joint, start, stop) frame ranges)."""
    out = np.array(x, dtype=np.float32, copy=True)
    filled, left = _interpolate_into(out, timestamps, max_gap)
    return out, filled, left


FILL_BLOCK = 1 << 20  # points filled per batch


def _interpolate_into(out: np.ndarray, timestamps: np.ndarray, max_gap: float) -> tuple[np.ndarray, list]:
    """``interpolate_gaps`` in place on float32 ``out`` [T, J, D]: every gap of every joint at
    once (runs found by array operations, points filled in batches), the same numbers."""
    T, J = out.shape[:2]
    filled = np.zeros((T, J), bool)
    ts = np.asarray(timestamps, np.float64)
    step = float(np.median(np.diff(ts))) if T > 1 else 0.0
    col, a, b = column_runs(~_known(out))
    inside = (a > 0) & (b < T)  # anchored on both sides
    ai, bi = np.maximum(a - 1, 0), np.minimum(b, T - 1)
    span = ts[bi] - ts[ai] - step  # seconds without data
    fill = inside & ~(span > max_gap + 1e-9)
    left = list(zip(col[~fill].tolist(), a[~fill].tolist(), b[~fill].tolist()))
    col, a, b = col[fill], a[fill], b[fill]
    n = b - a
    ends = np.cumsum(n)
    for r0, r1 in _batches(ends, FILL_BLOCK):
        cnt = n[r0:r1]
        run = np.repeat(np.arange(r0, r1), cnt)
        first = np.cumsum(cnt) - cnt  # where each run begins in this batch
        t = a[run] + np.arange(int(cnt.sum())) - np.repeat(first, cnt)
        j, lo, hi = col[run], a[run] - 1, b[run]
        w = ((ts[t] - ts[lo]) / (ts[hi] - ts[lo]))[:, None]
        out[t, j] = (1 - w) * out[lo, j] + w * out[hi, j]
        filled[t, j] = True
    return filled, left


def _batches(ends: np.ndarray, size: int):
    """[r0, r1) ranges of runs whose lengths (cumulative ``ends``) add up to about ``size``."""
    r0 = 0
    while r0 < ends.size:
        base = ends[r0 - 1] if r0 else 0
        r1 = max(r0 + 1, int(np.searchsorted(ends, base + size, side="right")))
        yield r0, r1
        r0 = r1


def hampel(x: np.ndarray, window: int = 7, sigmas: float = 3.0, floor: float = 0.0,
           dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Hampel filter along axis 0 of [T, ...] (NaN ignored). Returns (copy with outliers replaced
    by the local median, as ``dtype``; mask of replaced values). Computed in float64 a block of
    columns at a time, so a long clip needs one copy of itself, not several."""
    x = np.asarray(x)
    half = max(1, window // 2)
    T = x.shape[0]
    out = np.array(x.reshape(T, -1), dtype=dtype, copy=True)
    mask = np.zeros(out.shape, bool)
    if T < 3:
        return out.reshape(x.shape), mask.reshape(x.shape)
    # columns in blocks keep the windowed values small on long clips with many joints: about 2 M
    # windowed values a block
    cols = max(1, min(64, 2_000_000 // max(1, T * (2 * half + 1))))
    src = x.reshape(T, -1)
    for c0 in range(0, out.shape[1], cols):
        xs = src[:, c0 : c0 + cols].astype(np.float64)
        block = np.pad(xs, ((half, half), (0, 0)), mode="constant", constant_values=np.nan)
        win = [block[i : i + T] for i in range(2 * half + 1)]  # the window's values, as views
        with np.errstate(invalid="ignore"):
            med = nanmedian_of(win)
            mad = 1.4826 * nanmedian_of([np.abs(w - med) for w in win])
        thr = sigmas * np.maximum(mad, floor)
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(xs) & np.isfinite(med) & (np.abs(xs - med) > thr)
        out[:, c0 : c0 + cols][bad] = med[bad]
        mask[:, c0 : c0 + cols] = bad
    return out.reshape(x.shape), mask.reshape(x.shape)


def nanmedian_of(values: list[np.ndarray]) -> np.ndarray:
    """Elementwise ``np.nanmedian`` of equally shaped arrays (no infinities among them), the same
    numbers: NaN where all are NaN, else the middle known value, or the mean of the middle two.

    numpy sorts a masked array of the windows for it; here a sorting network of minimum/maximum
    operations runs over the whole arrays at once (NaN taken as +inf, so it sorts last), several
    times faster on a long take."""
    w = len(values)
    if w > 15:  # the network grows as w^2: sort instead
        s = np.sort(np.stack(values, axis=-1), axis=-1)
        ranked = [s[..., i] for i in range(w)]
    else:
        ranked = [np.where(np.isnan(v), np.inf, v) for v in values]
        for r in range(w):  # odd-even transposition: w rounds sort w values
            for i in range(r % 2, w - 1, 2):
                lo = np.minimum(ranked[i], ranked[i + 1])
                ranked[i + 1] = np.maximum(ranked[i], ranked[i + 1])
                ranked[i] = lo
    k = np.zeros(values[0].shape, np.int64)
    for v in values:
        k += ~np.isnan(v)
    h = k // 2
    lo_at = np.where(k % 2 == 1, h, h - 1)
    low = np.full(k.shape, np.nan)
    high = np.full(k.shape, np.nan)
    for i, r in enumerate(ranked):
        np.copyto(low, r, where=lo_at == i)
        np.copyto(high, r, where=h == i)
    out = (low + high) / 2.0
    out[k == 0] = np.nan
    return out


def butterworth(x: np.ndarray, fs: float, cutoff: float, min_run: int = 4) -> np.ndarray:
    """Zero-phase low-pass of each run of known points of [T, J, D] (shorter runs kept as is).
    Every run of every joint is filtered in one batch (``signal.lowpass_runs``): the same numbers
    as run by run, in array operations rather than a Python loop per sample."""
    out = np.array(x, dtype=np.float32, copy=True)
    _butterworth_into(out, fs, cutoff, min_run)
    return out


def _butterworth_into(out: np.ndarray, fs: float, cutoff: float, min_run: int = 4) -> None:
    T, J, D = out.shape
    col, a, b = column_runs(_known(out), min_run)
    flat = out.reshape(T, J * D)  # a view: filtered in place
    lowpass_runs(flat, (col[:, None] * D + np.arange(D)).ravel(), np.repeat(a, D), np.repeat(b, D), fs, cutoff,
                 out=flat)


def one_euro(x: np.ndarray, timestamps: np.ndarray, min_cutoff: float = 1.0, beta: float = 0.01,
             d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) along time for [T, J, D]; restarts after each gap.
    Causal: it adapts its cutoff to speed, and lags less the faster a point moves.

    Every run of every coordinate steps forward together (runs of similar length side by side,
    read a bounded block of frames at a time): the operations of a run-by-run loop, one time step
    for all runs at once."""
    x = np.asarray(x)
    out = np.array(x, dtype=np.float32, copy=True)  # each value cast once, as from float64 at the end
    ts = np.asarray(timestamps, np.float64)
    T, J, D = x.shape
    col, a, b = column_runs(_known(x), 2)  # a single known frame stays as it is
    lane = (col[:, None] * D + np.arange(D)).ravel()
    start, stop = np.repeat(a, D), np.repeat(b, D)
    src, dst = x.reshape(T, J * D), out.reshape(T, J * D)
    tau_d = 1.0 / (2 * math.pi * d_cutoff)
    n = stop - start
    level = np.floor(np.log2(np.maximum(n, 1))).astype(np.int64)
    for lv in np.unique(level):
        k = np.flatnonzero(level == lv)
        c, s0, s1 = lane[k], start[k], stop[k]
        steps = int((s1 - s0).max())
        prev = src[s0, c].astype(np.float64)
        dprev = np.zeros_like(prev)
        chunk = max(1, BLOCK // k.size)
        for t0 in range(1, steps, chunk):
            t = s0 + np.arange(t0, min(steps, t0 + chunk))[:, None]  # [time, run]
            valid = t < s1
            t = np.minimum(t, s1 - 1)
            xv = src[t, c].astype(np.float64)
            dtv = np.maximum(ts[t] - ts[t - 1], 1e-6)
            res = np.empty_like(xv)
            for i in range(xv.shape[0]):
                dt, xt = dtv[i], xv[i]
                dx = (xt - prev) / dt
                ad = 1.0 / (1.0 + tau_d / dt)
                dprev = ad * dx + (1 - ad) * dprev
                cutoff = min_cutoff + beta * np.abs(dprev)
                a_ = 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) / dt)
                prev = a_ * xt + (1 - a_) * prev
                res[i] = prev
            dst[t[valid], np.broadcast_to(c, t.shape)[valid]] = res[valid]
    return out


BLOCK = 1 << 20  # values of a batch of runs read at once


def lag_frames(raw: np.ndarray, smoothed: np.ndarray, reliable: np.ndarray, max_shift: int = 8) -> float | None:
    """How many frames ``smoothed`` trails ``raw`` (positive: it lags).

    For every joint coordinate whose movement clearly exceeds its noise (standard deviation of
    the smoothed track at least 3x the raw track's noise, estimated from its second differences),
    the shift s minimising the mean
    squared difference between smoothed[t + s] and raw[t] is found (refined to a fraction of a
    frame with a parabola); the result is their mean weighted by the movement's variance.
    Joints that hardly move say nothing about lag (and their noise would bias towards 0)."""
    T = raw.shape[0]
    if T <= 2 * max_shift + 10:
        return None
    lags, weights = [], []
    for j in range(raw.shape[1]):
        for k in range(raw.shape[2]):
            # one coordinate at a time in float64: a long take is not copied whole
            r = np.asarray(raw[:, j, k], np.float64)
            sk = np.asarray(smoothed[:, j, k], np.float64)
            m = reliable[:, j] & np.isfinite(r) & np.isfinite(sk)
            if m.sum() < 2 * max_shift + 10:
                continue
            motion = np.std(sk[m])
            # white noise of std n has second differences of std n * sqrt(6)
            noise = np.std(np.diff(r[m], 2)) / math.sqrt(6)
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
                d = sk[b][mm] - r[a][mm]
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
    if method not in ("butterworth", "one-euro"):
        raise ValueError(f"unknown smoothing method {method!r}")
    kp = np.asarray(keypoints, np.float32)
    conf = np.asarray(confidence, np.float32).copy()
    known = _known(kp)
    unreliable = known & (conf < min_confidence)
    work = kp.copy()
    work[unreliable] = np.nan
    # each step works on the one buffer (float32, like the result): a long take is not copied
    # once per step
    out, outliers = hampel(work, window=window, sigmas=sigmas, floor=floor, dtype=np.float32)
    del work
    filled, _left = _interpolate_into(out, timestamps, max_gap)
    # new points where the estimator had nothing: confidence of the weaker anchor
    missing_filled = filled & ~known
    if missing_filled.any():
        anchor = _anchor_confidence(conf, known & ~unreliable)
        conf[missing_filled] = anchor[missing_filled]
        del anchor
    restore = unreliable & ~filled
    out[restore] = kp[restore]
    if method == "butterworth":
        _butterworth_into(out, fs, cutoff)
    else:
        out = one_euro(out, timestamps, min_cutoff=cutoff, beta=beta)
    counts = {
        "outliers_replaced": int(outliers.any(axis=-1).sum()),
        "low_confidence_interpolated": int((unreliable & filled).sum()),
        "missing_interpolated": int(missing_filled.sum()),
    }
    return out, conf, counts


def _anchor_confidence(conf: np.ndarray, good: np.ndarray) -> np.ndarray:
    """For each point, the lower confidence of the nearest good points before and after it (0
    where there is none), a joint at a time."""
    T, J = conf.shape
    out = np.zeros((T, J), np.float32)
    t = np.arange(T)
    for j in range(J):
        g = good[:, j]
        last = np.maximum.accumulate(np.where(g, t, -1))  # the last good frame up to t
        before = np.full(T, -1)
        before[1:] = last[:-1]
        nxt = np.minimum.accumulate(np.where(g, t, T)[::-1])[::-1]  # the next good frame from t
        after = np.full(T, T)
        after[:-1] = nxt[1:]
        c = np.append(conf[:, j].astype(np.float32), np.float32(0))  # frames -1 and T: none
        out[:, j] = np.minimum(c[before], c[after])
    return out
