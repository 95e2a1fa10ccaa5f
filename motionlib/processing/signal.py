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


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges where a 1-D boolean mask is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
