"""Zero-phase Butterworth low-pass in plain numpy (scipy.signal costs ~1 s to import), with
scipy's compiled recursion for long signals (``LONG``).

A second-order section designed with the bilinear transform (cutoff pre-warped), run forwards then
backwards (``filtfilt``): zero phase, effective order 4, -6 dB at the cutoff. Edges are padded
with an odd reflection, like scipy's default, so the ends do not ring.
"""

from __future__ import annotations

import math

import numpy as np


def butter2_lowpass(cutoff_hz: float, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of a 2nd-order Butterworth low-pass, a[0] == 1."""
    if not 0 < cutoff_hz < fs_hz / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie in (0, {fs_hz / 2}) Hz")
    k = math.tan(math.pi * cutoff_hz / fs_hz)
    q = 1 / math.sqrt(2)
    norm = 1 / (1 + k / q + k * k)
    b0 = k * k * norm
    b = np.array([b0, 2 * b0, b0])
    a = np.array([1.0, 2 * (k * k - 1) * norm, (1 - k / q + k * k) * norm])
    return b, a


def _biquad(x: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Direct form II transposed along axis 0, state started at steady state for x[0]."""
    y = np.empty_like(x)
    z1 = (b[1] + b[2] - a[1] - a[2]) * x[0]
    z2 = (b[2] - a[2]) * x[0]
    b0, b1, b2, a1, a2 = b[0], b[1], b[2], a[1], a[2]
    for t in range(x.shape[0]):
        xt = x[t]
        yt = b0 * xt + z1
        z1 = b1 * xt - a1 * yt + z2
        z2 = b2 * xt - a2 * yt
        y[t] = yt
    return y


def lowpass(x: np.ndarray, fs_hz: float, cutoff_hz: float) -> np.ndarray:
    """Zero-phase low-pass of ``x`` along axis 0 (no NaNs allowed; at least 2 samples)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        return x.copy()
    b, a = butter2_lowpass(cutoff_hz, fs_hz)
    pad = min(n - 1, 12)
    head = 2 * x[0] - x[pad:0:-1]
    tail = 2 * x[-1] - x[-2 : -pad - 2 : -1]
    ext = np.concatenate([head, x, tail])
    run = _biquad_c if n >= LONG else _biquad
    y = run(ext, b, a)
    y = run(y[::-1], b, a)[::-1]
    return y[pad : pad + n]


LONG = 2048  # samples from which scipy's compiled filter runs the same recursion (the Python loop
# costs ~1.5 us a sample; scipy's import ~1 s, so short clips - most ingests - never pay it)


def _biquad_c(x: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``_biquad`` by scipy.signal.lfilter (also direct form II transposed), the same start."""
    from scipy.signal import lfilter

    zi = np.array([b[1] + b[2] - a[1] - a[2], b[2] - a[2]]).reshape((2,) + (1,) * (x.ndim - 1)) * x[0]
    y, _ = lfilter(b, a, x, axis=0, zi=zi)
    return y


# ---------------------------------------------------------------------------- many runs at once
BLOCK = 1 << 18  # values a batch holds (arrays of 2 MB), however long the motion


def lowpass_runs(x: np.ndarray, col: np.ndarray, start: np.ndarray, stop: np.ndarray, fs_hz: float,
                 cutoff_hz: float, out: np.ndarray) -> None:
    """``out[a:b, c] = lowpass(x[a:b, c])`` for every run (c, a, b) of ``(col, start, stop)`` on
    2-D ``x`` [T, C] (runs of one column must not overlap; ``out`` may be ``x``), the same numbers
    as run by run (bit for bit below ``LONG`` samples), in a few array operations per time step
    instead of a Python loop per sample: a gappy track has thousands of short runs.

    Runs of a similar length (within a factor of 2) are stacked as the columns of one array, each
    padded at its end, and the recursion steps along them all at once; a run of ``LONG`` samples
    or more goes through ``lowpass`` alone (scipy's compiled recursion)."""
    col, start, stop = (np.asarray(v, np.int64) for v in (col, start, stop))
    n = stop - start
    b, a = butter2_lowpass(cutoff_hz, fs_hz)
    for k in np.flatnonzero(n >= LONG):
        c = int(col[k])
        out[start[k] : stop[k], c] = lowpass(x[start[k] : stop[k], c], fs_hz, cutoff_hz)
    if n.size and n.min() == 1:  # lowpass keeps a single sample as it is
        one = n == 1
        out[start[one], col[one]] = x[start[one], col[one]]
    short = np.flatnonzero((n >= 2) & (n < LONG))
    if not short.size:
        return
    # bins of lengths [2^k, 2^(k+1)): at most half of a bin's array is padding
    level = np.floor(np.log2(n[short])).astype(np.int64)
    for lv in np.unique(level):
        members = short[level == lv]
        width = int(n[members].max()) + 2 * 12
        step = max(1, BLOCK // width)
        for k0 in range(0, members.size, step):
            _lowpass_batch(x, col[members[k0 : k0 + step]], start[members[k0 : k0 + step]],
                           n[members[k0 : k0 + step]], b, a, out)


def _lowpass_batch(x, col, start, n, b, a, out) -> None:
    """``lowpass`` of runs stacked as columns [time, run] (see ``lowpass_runs``)."""
    pad = np.minimum(n - 1, 12)
    ext_len = n + 2 * pad
    L = int(ext_len.max())
    p = np.arange(L)[:, None]
    # the extended signal of lowpass(): odd reflections of `pad` samples at each end
    head = p < pad
    tail = p >= pad + n
    inner = np.clip(p - pad, 0, n - 1)
    q = np.clip(p - pad - n, 0, None)  # position within the tail
    src = np.where(head, pad - p, np.where(tail, n - 2 - q, inner))
    src = np.clip(src, 0, n - 1) + start
    v = x[src, col].astype(np.float64)
    first = x[start, col].astype(np.float64)
    last = x[start + n - 1, col].astype(np.float64)
    ext = np.where(head, 2 * first - v, np.where(tail & (p < ext_len), 2 * last - v, v))
    del v, src, inner, q
    y = _biquad_steps(ext, b, a)
    # backwards: each run's forward output reversed, its own length
    back = np.clip(ext_len - 1 - p, 0, None)
    rev = np.take_along_axis(y, back, axis=0)
    y2 = _biquad_steps(rev, b, a)
    # lowpass() returns the reversed second pass, without the padding: sample k of the run is
    # y2[ext_len - 1 - (pad + k)]
    k = np.arange(int(n.max()))[:, None]
    valid = k < n
    at = np.clip(ext_len - 1 - pad - k, 0, None)
    vals = np.take_along_axis(y2, at, axis=0)
    rows = (start + k)[valid]
    cols = np.broadcast_to(col, valid.shape)[valid]
    out[rows, cols] = vals[valid]


def _biquad_steps(x: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``_biquad`` down each column of [time, run] (each started at steady state for its first
    sample): the same operations, one time step for all runs at once. Past a run's end the
    output is not used."""
    y = np.empty_like(x)
    z1 = (b[1] + b[2] - a[1] - a[2]) * x[0]
    z2 = (b[2] - a[2]) * x[0]
    b0, b1, b2, a1, a2 = b[0], b[1], b[2], a[1], a[2]
    for t in range(x.shape[0]):
        xt = x[t]
        yt = b0 * xt + z1
        z1 = b1 * xt - a1 * yt + z2
        z2 = b2 * xt - a2 * yt
        y[t] = yt
    return y


def column_runs(mask: np.ndarray, min_len: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column, start, stop) of every run of True down the columns of a 2-D mask [T, C] at least
    ``min_len`` long, column by column, in order."""
    m = np.asarray(mask, bool)
    T, C = m.shape
    edge = np.zeros((T + 1, C), np.int8)
    edge[:T] = m
    edge[1:] -= m
    # +1 where a run starts (at that row), -1 one past where it stops; read column by column
    c_up, t_up = np.nonzero(edge.T == 1)
    c_dn, t_dn = np.nonzero(edge.T == -1)
    keep = (t_dn - t_up) >= min_len
    return c_up[keep], t_up[keep], t_dn[keep]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges where a 1-D boolean mask is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
