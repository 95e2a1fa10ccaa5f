"""Mining a long performance for the parts worth keeping: ranked candidate segments of ``min_length``
to ``max_length`` seconds that are clean, well framed and full of movement.

Every window (starts every STEP seconds, lengths from ``min_length`` to ``max_length`` in STEP
steps) gets four scores in [0, 1] from per-frame signals, each a mean over its frames (cumulative
sums, so a one-hour take is thousands of windows in milliseconds):

* ``presence`` - frames that show at least half the body;
* ``clean`` - frames the cleaning left alone (no left/right repair, not rejected: ``track``);
* ``framing`` - the body joints seen inside the frame (2 % margin), times the body's size
  (torso over a sixth of the frame height scores 1);
* ``movement`` - the body's speed in torso lengths per second, 1 - exp(-speed / 0.6): a held pose
  scores low, ordinary movement close to 1.

The score is their product; a window under MIN_SCORE, or holding a hard or jump cut, is never a
candidate. The best windows are taken greedily, each overlapping the ones already taken by at most
MAX_OVERLAP of the shorter, up to ``top``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motionlib.core.errors import InputError
from motionlib.core.motion import Motion

STEP = 0.5  # seconds between window starts and between lengths
MAX_OVERLAP = 0.25
SPEED_SCALE = 0.6  # torso lengths per second for a movement score of 1 - 1/e
MARGIN = 0.02
MIN_DRAWN = 0.3  # confidence of a joint drawn (as pose maps draw)
MIN_SCORE = 0.2  # below this a window is not worth offering


@dataclass
class Candidate:
    start: float  # seconds in the motion
    end: float
    score: float
    presence: float
    clean: float
    framing: float
    movement: float

    def to_json(self) -> dict:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def frame_signals(motion: Motion, track: dict | None = None, cuts: list[float] = ()) -> dict[str, np.ndarray]:
    """Per frame: ``presence``, ``clean``, ``framing``, ``speed`` (torso lengths / s) and ``cut``
    (a hard or jump cut just before this frame)."""
    T = motion.frames
    body = list(motion.skeleton.body)
    kp = motion.keypoints[:, body].astype(np.float64)
    drawn = (motion.confidence[:, body] >= MIN_DRAWN) & np.isfinite(kp).all(axis=2)
    presence = drawn.mean(axis=1) >= 0.5
    clean = np.ones(T, bool)
    for key in ("swaps", "rejected"):
        for span in (track or {}).get(key, []):
            clean[int(span["start_frame"]):int(span["end_frame"])] = False
    w, h = motion.width, motion.height
    inside = (kp[..., 0] >= -MARGIN * w) & (kp[..., 0] <= (1 + MARGIN) * w) & \
             (kp[..., 1] >= -MARGIN * h) & (kp[..., 1] <= (1 + MARGIN) * h)
    with np.errstate(all="ignore"):
        seen_inside = np.where(drawn.any(axis=1), (inside & drawn).sum(axis=1) / np.maximum(1, drawn.sum(axis=1)), 0)
    from motionlib.processing.cleaning import body_centre_and_scale

    _, torso = body_centre_and_scale(motion.keypoints.astype(np.float64), motion.skeleton)
    size = np.clip(np.nan_to_num(torso / (h / 6.0)), 0, 1)
    framing = seen_inside * size
    typical = float(np.nanmedian(torso)) if np.isfinite(torso).any() else float("nan")
    joint_step = np.linalg.norm(np.diff(kp, axis=0), axis=2)  # [T-1, J]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames with no joint seen twice: no step
            moved = np.nanmean(np.where(drawn[1:] & drawn[:-1], joint_step, np.nan), axis=1)
        per_s = moved / np.diff(motion.timestamps) / typical
    speed = np.concatenate([[0.0], np.nan_to_num(per_s)])
    cut = np.zeros(T, bool)
    for t in cuts:
        k = int(np.searchsorted(motion.timestamps, float(t) - 1e-6))
        if 0 < k < T:
            cut[k] = True
    return {"presence": presence.astype(float), "clean": clean.astype(float), "framing": framing,
            "speed": speed, "cut": cut}


def candidates(motion: Motion, *, min_length: float = 3.0, max_length: float = 6.0, top: int = 5,
               track: dict | None = None, cuts: list[float] = ()) -> list[Candidate]:
    """The ``top`` best windows (module docstring), best first."""
    if not 0 < min_length <= max_length:
        raise InputError("{min_length} must be > 0 and at most {max_length}", params=["min_length", "max_length"])
    if top < 1:
        raise InputError("{top} must be at least 1", params=["top"])
    ts = motion.timestamps
    span = float(motion.duration)
    if span < min_length:
        raise InputError(f"the motion is {span:.2f}s long: shorter than {{min_length}} {min_length:g}s",
                         params=["min_length"])
    sig = frame_signals(motion, track, cuts)
    csum = {k: np.concatenate([[0.0], np.cumsum(v.astype(float))]) for k, v in sig.items()}
    lengths = np.arange(min_length, max_length + 1e-9, STEP)
    starts = np.arange(0.0, span - min_length + 1e-9, STEP)
    S, L = np.meshgrid(starts, lengths, indexing="ij")
    S, L = S.ravel(), L.ravel()
    keep = S + L <= span + 1e-9
    S, L = S[keep], L[keep]
    a = np.searchsorted(ts, S - 1e-9)
    b = np.searchsorted(ts, S + L - 1e-9)
    n = np.maximum(1, b - a)

    def mean(k):
        return (csum[k][b] - csum[k][a]) / n

    # a cut strictly inside a window (not at its first frame) rules it out
    cuts_inside = csum["cut"][b] - csum["cut"][np.minimum(a + 1, len(ts))]
    presence, clean, framing = mean("presence"), mean("clean"), mean("framing")
    movement = 1 - np.exp(-mean("speed") / SPEED_SCALE)
    score = presence * clean * framing * movement
    score[(cuts_inside > 0) | (b - a < 2)] = -1
    out: list[Candidate] = []
    for k in np.argsort(-score, kind="stable"):
        if score[k] < MIN_SCORE or len(out) >= top:
            break
        s0, s1 = float(S[k]), float(S[k] + L[k])
        if any(min(s1, c.end) - max(s0, c.start) > MAX_OVERLAP * min(s1 - s0, c.end - c.start) for c in out):
            continue
        out.append(Candidate(s0, s1, float(score[k]), float(presence[k]), float(clean[k]), float(framing[k]),
                             float(movement[k])))
    return out
