"""Edits: pure functions Motion -> Edit (a new Motion plus what was done and measured).

The library stores each Edit as the next version with ``parent``, ``operation`` and ``params``
(see docs/edits.md). Nothing here touches disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from motionlib.core.errors import InputError, MotionlibError
from motionlib.core.motion import Motion
from motionlib.processing import filtering
from motionlib.processing.signal import lowpass, runs
from motionlib.processing.cleaning import body_centre_and_scale

OPERATIONS = ("trim", "smooth", "loop", "mirror", "in-place", "retime", "fill-gaps")


@dataclass
class Edit:
    motion: Motion
    operation: str
    params: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)
    span: tuple[float, float] | None = None  # parent seconds kept (trim, loop); None: all
    time_scale: float = 1.0  # child seconds = (parent seconds - span start) / time_scale
    aligned: bool = True  # frames still sit on the source clip's frames (preview --over-source)
    warnings: list[str] = field(default_factory=list)  # the edit's own, stored with the version's
    tempo: dict | None = None  # the parent's tempo the edit measured (when none was stored), parent time


def _derive(m: Motion, **changes) -> Motion:
    out = replace(m, attrs={}, **changes)
    out.confidence[~np.isfinite(out.keypoints).all(axis=2)] = 0.0
    return out.validate()


def _frame_durations(m: Motion) -> np.ndarray:
    ts = m.timestamps
    return np.diff(np.append(ts, m.duration))


def _r(x: float | None, n: int = 4):
    return None if x is None or not math.isfinite(x) else round(float(x), n)


# ---------------------------------------------------------------------------------------- trim
def trim(m: Motion, start: float | None = None, end: float | None = None) -> Edit:
    """Keep the frames whose timestamps lie in [start, end) seconds."""
    start = 0.0 if start is None else float(start)
    end = m.duration if end is None else float(end)
    if start < 0:
        raise InputError("{start} must be >= 0 seconds", params=["start"])
    if start >= m.duration:
        raise InputError(f"{{start}} {start:g}s is past the end of the motion ({m.duration:.2f}s)", params=["start"])
    if end <= start:
        raise InputError(f"{{end}} {end:g}s must be after {{start}} {start:g}s", params=["end", "start"])
    if end > m.duration + 1e-6:
        raise InputError(f"{{end}} {end:g}s is past the end of the motion ({m.duration:.2f}s)", params=["end"])
    keep = np.flatnonzero((m.timestamps >= start - 1e-9) & (m.timestamps < end - 1e-9))
    if keep.size < 2:
        raise InputError(f"the range {start:g}-{end:g}s holds {keep.size} frame(s); a motion needs at least 2")
    a, b = int(keep[0]), int(keep[-1]) + 1
    t0 = float(m.timestamps[a])
    t_end = min(end, float(m.timestamps[b - 1] + _frame_durations(m)[b - 1]))
    out = _slice(m, a, b, t0, t_end - t0)
    return Edit(out, "trim", {"start": start, "end": end}, {"frames": out.frames, "duration": _r(out.duration)},
                span=(t0, t_end))


def _slice(m: Motion, a: int, b: int, t0: float, duration: float) -> Motion:
    sl = slice(a, b)
    return _derive(
        m, keypoints=m.keypoints[sl].copy(), confidence=m.confidence[sl].copy(),
        timestamps=m.timestamps[sl] - t0, duration=duration,
        world=None if m.world is None else m.world[sl].copy(),
        presence=None if m.presence is None else m.presence[sl].copy(),
    )


# -------------------------------------------------------------------------------------- smooth
MAX_WINDOW = 301  # Hampel window, frames: 10 s at 30 fps


def smooth(m: Motion, *, method: str = "butterworth", cutoff: float = 6.0, max_gap: float = 0.2,
           min_confidence: float = 0.5, window: int = 7, sigmas: float = 3.0, beta: float = 0.01) -> Edit:
    fs = m.fps
    if method not in ("butterworth", "one-euro"):
        raise InputError(f"{{method}} {method!r}: choose butterworth or one-euro", params=["method"])
    if not cutoff > 0:
        raise InputError("{cutoff} must be > 0 Hz", params=["cutoff"])
    if method == "butterworth" and cutoff >= fs / 2:
        raise InputError(f"{{cutoff}} {cutoff:g} Hz must be below half the frame rate ({fs / 2:.1f} Hz)",
                         params=["cutoff"])
    if m.frames < 4:
        raise InputError("smoothing needs at least 4 frames")
    if not 3 <= window <= MAX_WINDOW:
        raise InputError(f"{{window}} must be 3 to {MAX_WINDOW} frames (an outlier is judged by its neighbours)",
                         params=["window"])
    if max_gap < 0:
        raise InputError("{max_gap} must be >= 0 seconds", params=["max_gap"])
    torso = _torso(m)
    kp, conf, counts = filtering.smooth_keypoints(
        m.keypoints, m.confidence, m.timestamps, fs=fs, method=method, cutoff=cutoff,
        min_confidence=min_confidence, max_gap=max_gap, window=window, sigmas=sigmas,
        floor=0.02 * torso if torso else 1.0, beta=beta,
    )
    world = m.world
    if world is not None:
        world = filtering.butterworth(world, fs, min(cutoff, 0.45 * fs)) if method == "butterworth" \
            else filtering.one_euro(world, m.timestamps, min_cutoff=cutoff, beta=beta)
    out = _derive(m, keypoints=kp, confidence=conf, world=world)
    reliable = (m.confidence >= min_confidence) & np.isfinite(m.keypoints).all(axis=2)
    lag = filtering.lag_frames(m.keypoints, kp, reliable)
    params = {"method": method, "cutoff_hz": cutoff, "max_gap": max_gap, "min_confidence": min_confidence,
              "hampel_window": window, "hampel_sigmas": sigmas}
    if method == "one-euro":
        params["beta"] = beta
    return Edit(out, "smooth", params, dict(counts, lag_frames=_r(lag, 3)))


def _torso(m: Motion) -> float | None:
    from motionlib.processing.quality import torso_length

    return torso_length(m.keypoints, m.skeleton)


# ------------------------------------------------------------------------------------ fill-gaps
def fill_gaps(m: Motion, max_gap: float = 0.5) -> Edit:
    """Interpolate dropouts up to ``max_gap`` seconds; longer ones stay unknown (NaN, confidence 0)
    and are listed in the result."""
    if max_gap <= 0:
        raise InputError("{max_gap} must be > 0 seconds", params=["max_gap"])
    kp, filled, left = filtering.interpolate_gaps(m.keypoints, m.timestamps, max_gap)
    conf = m.confidence.copy()
    known = np.isfinite(m.keypoints).all(axis=2)
    anchor = filtering._anchor_confidence(conf, known)
    conf[filled] = anchor[filled]
    world = m.world
    if world is not None:
        world, _, _ = filtering.interpolate_gaps(world, m.timestamps, max_gap)
    out = _derive(m, keypoints=kp, confidence=conf, world=world)
    frames_filled = filled.any(axis=1)
    # gaps left, as whole-body frame ranges (a frame counts when no joint is known)
    empty = ~np.isfinite(out.keypoints).all(axis=2).any(axis=1)
    dur = _frame_durations(m)
    gaps = [{"start": _r(m.timestamps[a], 3), "end": _r(m.timestamps[b - 1] + dur[b - 1], 3), "frames": b - a}
            for a, b in runs(empty)]
    return Edit(out, "fill-gaps", {"max": max_gap}, {
        "frames_filled": int(frames_filled.sum()),
        "points_filled": int(filled.sum()),
        "gaps_filled": _count_runs(filled),
        "gaps_left": gaps,
        "joint_gaps_left": len(left),
    })


def _count_runs(mask: np.ndarray) -> int:
    return int(sum(len(runs(mask[:, j])) for j in range(mask.shape[1])))


# --------------------------------------------------------------------------------------- mirror
def mirror(m: Motion) -> Edit:
    """Swap left and right joints and flip x. Face-mesh points are flipped, not re-indexed."""
    perm = np.arange(m.skeleton.num_joints)
    for a, b in m.skeleton.mirror_pairs:
        perm[a], perm[b] = b, a
    kp = m.keypoints[:, perm].copy()
    kp[..., 0] = m.width - kp[..., 0]
    world = None
    if m.world is not None:
        world = m.world[:, perm].copy()
        world[..., 0] = -world[..., 0]
    out = _derive(m, keypoints=kp, confidence=m.confidence[:, perm].copy(), world=world,
                  presence=None if m.presence is None else m.presence[:, perm].copy())
    return Edit(out, "mirror", {}, {"pairs_swapped": len(m.skeleton.mirror_pairs)}, aligned=False)


# ------------------------------------------------------------------------------------- in-place
def in_place(m: Motion, *, axes: str = "x", cutoff: float = 1.0) -> Edit:
    """Remove the root's travel: the hip centre's path, low-passed at ``cutoff`` Hz (0: the raw
    path, pinning the hips), is subtracted, and the performer is placed at the frame's centre
    (x) or at the median height (y)."""
    if axes not in ("x", "y", "xy"):
        raise InputError("{axes} must be x, y or xy", params=["axes"])
    if cutoff < 0:
        raise InputError("{cutoff} must be >= 0 Hz (0 pins the hips)", params=["cutoff"])
    centre, _ = body_centre_and_scale(m.keypoints, m.skeleton)
    known = np.isfinite(centre).all(axis=1)
    if known.sum() < 2:
        raise InputError("in-place needs the hips in at least 2 frames")
    idx = np.flatnonzero(known)
    root = np.stack([np.interp(m.timestamps, m.timestamps[idx], centre[idx, k]) for k in range(2)], axis=1)
    fs = m.fps
    if cutoff > 0:
        if cutoff >= fs / 2:
            raise InputError(f"{{cutoff}} {cutoff:g} Hz must be below half the frame rate ({fs / 2:.1f} Hz)",
                         params=["cutoff"])
        root = lowpass(root, fs, cutoff)
    target = np.array([m.width / 2, float(np.median(root[:, 1]))])
    shift = np.zeros_like(root)
    for k, axis in enumerate("xy"):
        if axis in axes:
            shift[:, k] = target[k] - root[:, k]
    kp = m.keypoints + shift[:, None, :].astype(np.float32)
    before = np.ptp(centre[known], axis=0)
    after = np.ptp((centre + shift)[known], axis=0)
    out = _derive(m, keypoints=kp.astype(np.float32), confidence=m.confidence.copy())
    return Edit(out, "in-place", {"axes": axes, "cutoff_hz": cutoff},
                {"hip_travel_px_before": [_r(v, 1) for v in before], "hip_travel_px_after": [_r(v, 1) for v in after]},
                aligned=False)


# --------------------------------------------------------------------------------------- retime
def retime(m: Motion, *, fps: float | None = None, speed: float = 1.0, bpm: float | None = None) -> Edit:
    """Resample by timestamps: play ``speed`` times as fast, at ``fps`` frames per second (default:
    the current mean rate). Variable-rate motions come out at a constant rate. ``bpm`` instead of
    ``speed``: the speed that brings the motion's tempo (stored with the version, else measured
    from the motion: processing.tempo) to ``bpm`` beats a minute, ``bpm / tempo``."""
    if speed <= 0 or not math.isfinite(speed):
        raise InputError("{speed} must be a positive number", params=["speed"])
    if fps is not None and not (0 < fps <= 1000):
        raise InputError("{fps} must lie in (0, 1000]", params=["fps"])
    used = None
    if bpm is not None:
        if not (math.isfinite(bpm) and 0 < bpm <= MAX_BPM):
            raise InputError(f"{{bpm}} must be a tempo in (0, {MAX_BPM}] beats a minute", params=["bpm"])
        if speed != 1.0:
            raise InputError("give {bpm} or {speed}, not both", params=["bpm", "speed"])
        used = tempo_of(m, "speed")
        speed = bpm / used.bpm
    elif fps is None and speed == 1.0:
        raise InputError("give {fps}, {speed} and/or {bpm}", params=["fps", "speed", "bpm"])
    rate = float(fps) if fps else m.fps
    duration = m.duration / speed
    n = max(1, int(round(duration * rate)))
    if n < 2:
        raise InputError(f"that leaves {n} frame; a motion needs at least 2")
    new_t = np.arange(n) / rate
    src_t = new_t * speed
    kp = _resample(m.keypoints, m.timestamps, src_t)
    conf = _resample(m.confidence[..., None], m.timestamps, src_t)[..., 0]
    conf = np.nan_to_num(conf, nan=0.0)
    world = None if m.world is None else _resample(m.world, m.timestamps, src_t)
    presence = None if m.presence is None else np.nan_to_num(_resample(m.presence[..., None], m.timestamps, src_t)[..., 0])
    out = _derive(m, keypoints=kp, confidence=conf.astype(np.float32), timestamps=new_t,
                  duration=n / rate, world=world, presence=presence)
    params: dict[str, Any] = {"fps": fps, "speed": speed}
    result: dict[str, Any] = {"frames": n, "fps": _r(rate, 3), "duration": _r(n / rate)}
    if used is not None:
        params.update(speed=_r(speed, 6), bpm=bpm, tempo=used.summary())
        result["bpm"] = _r(used.bpm * speed, 3)
    return Edit(out, "retime", params, result, time_scale=speed, aligned=False, tempo=_measured(m, used))


MAX_BPM = 1000.0


def tempo_of(m: Motion, instead: str):
    """The tempo an edit fits to (processing.tempo.stored_or_measured); without one, the error
    suggests the parameter ``instead``."""
    from motionlib.processing.tempo import stored_or_measured

    return stored_or_measured(m, instead)


def _measured(m: Motion, used) -> dict | None:
    """The tempo an edit measured itself (none was stored), for the child to keep."""
    from motionlib.processing.tempo import stored_of

    stored = stored_of(m)
    if used is None or (isinstance(stored, dict) and stored.get("bpm")):
        return None
    return used.as_dict()


def _resample(x: np.ndarray, ts: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Linear in time between known neighbours; nearest when one side is unknown and the known
    one is within half a frame; NaN otherwise. Times past the last frame hold it. Computed a
    block of output frames at a time (float64 inside, float32 out), so a long take's float64
    copies are never whole."""
    T = x.shape[0]
    step = float(np.median(np.diff(ts))) if T > 1 else 1.0
    out = np.empty((len(at),) + x.shape[1:], np.float32)
    for k in range(0, len(at), 16384):
        out[k : k + 16384] = _resample_block(x, ts, at[k : k + 16384], step)
    return out


def _resample_block(x: np.ndarray, ts: np.ndarray, at: np.ndarray, step: float) -> np.ndarray:
    T = x.shape[0]
    i = np.clip(np.searchsorted(ts, at, side="right") - 1, 0, T - 1)
    j = np.minimum(i + 1, T - 1)
    span = np.where(j > i, ts[j] - ts[i], 1.0)
    w = np.clip((at - ts[i]) / span, 0.0, 1.0)
    w = np.where(j > i, w, 0.0)
    shape = (-1,) + (1,) * (x.ndim - 1)
    xi, xj = x[i].astype(np.float64), x[j].astype(np.float64)
    out = (1 - w.reshape(shape)) * xi + w.reshape(shape) * xj
    near_i = (at - ts[i]) <= step / 2
    fallback = np.where(near_i.reshape(shape), xi, xj)
    known_i = np.isfinite(xi)
    known_j = np.isfinite(xj)
    one_side = known_i ^ known_j
    near_ok = np.where(near_i.reshape(shape), known_i, known_j)
    out = np.where(one_side & near_ok, fallback, out)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------- loop
LOOP_SEAMLESS = 1.5  # seam at most this many typical frame steps: the wrap is an ordinary step
LOOP_OK = 2.5  # up to this: it loops with a small jump; beyond: it pops (does not loop)
MAX_LOOP_BEATS = 10_000


def loop(m: Motion, *, min_length: float | None = None, blend: int = 4, velocity_weight: float = 0.5,
         max_length: float | None = None, strict: bool = False, beats: int | None = None) -> Edit:
    """Find the loop: frames i < j, at least ``min_length`` and at most ``max_length`` seconds
    apart (default: the larger of 4 x ``min_length`` and 10 s), whose poses (and velocities) are
    closest; keep [i, j) so that frame j's pose is where playback wraps to; then spread the
    remaining offset between frame j and frame i over the last ``blend`` frames. The search looks
    at each frame's window only, so time and memory grow with the motion's length, not its square.

    Reported: ``seam_distance`` (mean joint distance, pixels, from the last frame back to the
    first after blending), the same before blending, and both as fractions of the clip's mean
    frame-to-frame motion; and the verdict: the seam against the loop's *typical* frame step
    (the median of its frames' mean joint steps) - ``seamless`` up to LOOP_SEAMLESS, ``small
    jump`` up to LOOP_OK, else ``does not loop`` (a warning; ``strict``: refused).

    ``beats``: a loop of that many beats at the motion's tempo (stored with the version, else
    measured from the motion: processing.tempo), within one frame step: ``min_length`` and
    ``max_length`` are that length less and plus the motion's typical frame step."""
    used = None
    if beats is not None:
        if min_length is not None or max_length is not None:
            raise InputError("give {beats} or {min_length}/{max_length}, not both",
                             params=["beats", "min_length", "max_length"])
        if not (isinstance(beats, (int, np.integer)) and 1 <= beats <= MAX_LOOP_BEATS):
            raise InputError(f"{{beats}} must be a whole number of beats, 1 to {MAX_LOOP_BEATS}", params=["beats"])
        used = tempo_of(m, "min_length")
        length = beats * used.period
        step = float(np.median(np.diff(m.timestamps))) if m.frames > 1 else 1.0 / 30
        if length + step > m.duration + 1e-9:
            raise InputError(
                f"{beats} beats at {used.bpm:.1f} BPM last {length:.2f}s; the motion is {m.duration:.2f}s long: "
                "ask for fewer {beats}", params=["beats"])
        min_length, max_length = length - step, length + step
    min_length = 1.0 if min_length is None else min_length
    if min_length <= 0:
        raise InputError("{min_length} must be > 0 seconds", params=["min_length"])
    if blend < 0:
        raise InputError("{blend} must be >= 0 frames", params=["blend"])
    ts = m.timestamps
    core = list(m.skeleton.core)
    kp = m.keypoints[:, core].astype(np.float64)
    good = (m.confidence[:, core] >= 0.5).all(axis=1) & np.isfinite(kp).all(axis=(1, 2))
    torso = _torso(m) or 1.0
    if m.duration < 2 * min_length and ts[-1] - ts[0] < min_length + 2 / max(m.fps, 1):
        raise InputError(
            f"the motion is {m.duration:.2f}s long; a loop of at least {{min_length}} {min_length:g}s needs "
            "a longer clip (or a shorter {min_length})", params=["min_length"],
        )
    pos = kp.reshape(len(ts), -1) / torso
    vel = np.gradient(pos, ts, axis=0) / max(m.fps, 1)
    feat = np.concatenate([pos, velocity_weight * vel], axis=1)
    cand = np.flatnonzero(good & np.isfinite(feat).all(axis=1))
    best = (np.inf, -1, -1)
    min_gap = min_length - 1e-9
    longest = max(4 * min_length, 10.0) if max_length is None else max_length
    if longest < min_length:
        raise InputError("{max_length} must be at least {min_length}", params=["max_length", "min_length"])
    t_cand = ts[cand]
    for k0 in range(0, cand.size, 256):
        rows = cand[k0 : k0 + 256]
        # the columns any of these rows may pair with: from min_length after the first to
        # max_length after the last
        c0 = int(np.searchsorted(t_cand, ts[rows[0]] + min_gap))
        c1 = int(np.searchsorted(t_cand, ts[rows[-1]] + longest + 1e-9, side="right"))
        cols = cand[c0:c1]
        if not cols.size:
            continue
        d = np.sqrt(((feat[rows, None, :] - feat[None, cols, :]) ** 2).mean(axis=2))
        gap = ts[cols][None, :] - ts[rows][:, None]
        d = np.where((gap >= min_gap) & (gap <= longest + 1e-9), d, np.inf)
        flat = int(np.argmin(d))
        r, c = divmod(flat, d.shape[1])
        if d[r, c] < best[0]:
            best = (float(d[r, c]), int(rows[r]), int(cols[c]))
    if not math.isfinite(best[0]):
        if used is not None:
            raise InputError(
                f"no pair of well-tracked frames {beats} beats ({min_length + (max_length - min_length) / 2:.2f}s) "
                "apart: the motion is too poorly tracked to loop there (try fewer {beats})", params=["beats"])
        raise InputError(
            f"no pair of well-tracked frames at least {min_length:g}s apart: the motion is too short "
            "or too poorly tracked to loop (try a shorter {min_length})", params=["min_length"],
        )
    _, i, j = best
    # distances in pixels over all body joints known in both frames
    body = list(m.skeleton.body)
    step = np.linalg.norm(np.diff(m.keypoints[i:j + 1, body].astype(np.float64), axis=0), axis=2)
    mean_step = float(np.nanmean(step)) if np.isfinite(step).any() else float("nan")
    offset = (m.keypoints[j] - m.keypoints[i]).astype(np.float64)  # [J, 2]
    seam_before = _pose_distance(m.keypoints[j - 1], m.keypoints[i], body)
    out_kp = m.keypoints[i:j].astype(np.float64).copy()
    n = out_kp.shape[0]
    k = min(blend, n - 1)
    if k > 0:
        # weights rise to k/(k+1) on the last frame; frame j itself would get 1
        w = (np.arange(1, k + 1) / (k + 1))[:, None, None]
        off = np.nan_to_num(offset)
        out_kp[n - k:] -= w * off[None]
    seam_after = _pose_distance(out_kp[-1], m.keypoints[i], body)
    per_frame = np.where(np.isfinite(step), step, np.nan)
    with np.errstate(all="ignore"):
        frame_steps = np.nanmean(per_frame, axis=1) if per_frame.size else np.array([])
    frame_steps = frame_steps[np.isfinite(frame_steps)]
    typical = float(np.median(frame_steps)) if frame_steps.size else float("nan")
    ratio = seam_after / typical if typical > 0 else float("nan")
    ratio_before = seam_before / typical if typical > 0 else float("nan")
    verdict = ("seamless" if ratio <= LOOP_SEAMLESS else "small jump" if ratio <= LOOP_OK
               else "does not loop" if math.isfinite(ratio) else "unknown")
    words = (f"the seam is {ratio:.1f}x a typical frame step ({seam_after:.1f} px against {typical:.1f} px; "
             f"{ratio_before:.1f}x before blending)") if math.isfinite(ratio) else "the seam could not be measured"
    warnings = []
    if verdict == "does not loop":
        lengths = ["beats"] if used is not None else ["min_length", "max_length"]
        message = (f"does not loop: {words}; try another {' or '.join('{' + p + '}' for p in lengths)}, "
                   "a larger {blend}, or smooth first")
        if strict:
            raise MotionlibError(message, params=lengths + ["blend"])
        warnings.append(f"does not loop: {words}")
    t0 = float(ts[i])
    duration = float(ts[j] - ts[i])
    out = _derive(
        m, keypoints=out_kp.astype(np.float32), confidence=m.confidence[i:j].copy(),
        timestamps=ts[i:j] - t0, duration=duration,
        world=None if m.world is None else m.world[i:j].copy(),
        presence=None if m.presence is None else m.presence[i:j].copy(),
    )
    result = {
        "start": _r(t0, 4), "end": _r(float(ts[j]), 4), "frames": n, "duration": _r(duration),
        "pose_distance": _r(best[0], 4),
        "seam_distance_px": _r(seam_after, 3),
        "seam_distance_before_blend_px": _r(seam_before, 3),
        "mean_step_px": _r(mean_step, 3),
        "seam_ratio": _r(seam_after / mean_step if mean_step else float("nan"), 3),
        "seam_ratio_before_blend": _r(seam_before / mean_step if mean_step else float("nan"), 3),
        "typical_step_px": _r(typical, 3),
        "seam_vs_typical_step": _r(ratio, 3),
        "verdict": verdict,
        "loops": verdict in ("seamless", "small jump"),
        "verdict_words": f"{verdict}: {words}",
    }
    params: dict[str, Any] = {"min_length": min_length, "blend": blend}
    if used is not None:
        params.update(min_length=_r(min_length, 4), max_length=_r(max_length, 4), beats=beats, tempo=used.summary())
        result["beats"] = _r(duration / used.period, 3)
    return Edit(out, "loop", params, result, span=(t0, float(ts[j])), warnings=warnings, tempo=_measured(m, used))


def _pose_distance(a: np.ndarray, b: np.ndarray, joints) -> float:
    d = np.linalg.norm(a[joints].astype(np.float64) - b[joints].astype(np.float64), axis=1)
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else float("nan")
