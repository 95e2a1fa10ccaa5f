"""A motion's descriptor for "more like this": a fixed-length vector that does not change with
where the performer stands, how large they are in the frame, which way they face (mirroring) or
how fast they move (tempo), so two takes of one movement - or a motion and its edits - land close.

Per frame, 17 joint angles, all unsigned (0..pi) so they ignore position, scale and a left-right
flip: at each elbow, shoulder, hip and knee, and each upper arm, forearm, thigh and shin against
the torso's axis, plus the torso's lean from upright. Each left/right pair is taken as (smaller,
larger) per frame, so swapping the sides changes nothing.

Over the motion, each angle's distribution (a soft histogram of 8 bins over 0..pi) - tempo drops
out, since a faster take visits the same poses in fewer frames - and the distribution of its
angular speed divided by the motion's own typical speed (4 bins), which keeps how the movement
moves (held poses against sweeps) without its tempo. Histograms are square-rooted (so the cosine
of two descriptors is the Bhattacharyya coefficient of their distributions), the speed part
weighted 0.5, and the whole L2-normalised: the similarity of two motions is the dot product of
their descriptors, 1 for the same movement.
"""

from __future__ import annotations

import numpy as np

from motionlib.core.motion import Motion

VERSION = 1  # of the descriptor: versions of the index and the store compare only equal ones
POSE_BINS = 8
SPEED_EDGES = (0.5, 1.0, 2.0)  # speed / typical speed: held, slow, typical, fast
SPEED_WEIGHT = 0.5
MIN_FRAMES = 8  # frames with every joint seen, below which a motion gets no descriptor
CONFIDENCE = 0.5
SIDES = ("left", "right")
PARTS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
FEATURES = 17
SIZE = FEATURES * (POSE_BINS + len(SPEED_EDGES) + 1)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unsigned angle between vectors ``u`` and ``v`` ([..., 2]), radians."""
    dot = (u * v).sum(axis=-1)
    cross = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    return np.abs(np.arctan2(cross, dot))


def angles(motion: Motion) -> np.ndarray | None:
    """The 17 per-frame angles ([frames seen, 17], radians), over the frames where every joint
    they use is seen; None when the skeleton lacks those joints."""
    sk = motion.skeleton
    try:
        idx = {(s, p): sk.index(f"{s}_{p}") for s in SIDES for p in PARTS}
    except (KeyError, ValueError):
        return None
    cols = list(idx.values())
    kp = motion.keypoints[:, cols].astype(np.float64)
    ok = (motion.confidence[:, cols] >= CONFIDENCE).all(axis=1) & np.isfinite(kp).all(axis=(1, 2))
    p = {k: motion.keypoints[ok, j].astype(np.float64) for k, j in idx.items()}
    if not ok.any():
        return np.zeros((0, FEATURES))
    mid_sh = (p["left", "shoulder"] + p["right", "shoulder"]) / 2
    mid_hip = (p["left", "hip"] + p["right", "hip"]) / 2
    down = mid_hip - mid_sh  # the torso's axis, pointing to the feet
    per_side = []
    for s in SIDES:
        sh, el, wr = p[s, "shoulder"], p[s, "elbow"], p[s, "wrist"]
        hp, kn, an = p[s, "hip"], p[s, "knee"], p[s, "ankle"]
        per_side.append(np.stack([
            _angle(sh - el, wr - el),  # elbow
            _angle(hp - sh, el - sh),  # shoulder
            _angle(sh - hp, kn - hp),  # hip
            _angle(hp - kn, an - kn),  # knee
            _angle(el - sh, down), _angle(wr - el, down),  # upper arm, forearm against the torso
            _angle(kn - hp, down), _angle(an - kn, down),  # thigh, shin
        ], axis=1))
    left, right = per_side
    lean = _angle(-down, np.array([0.0, -1.0]))
    return np.concatenate([np.minimum(left, right), np.maximum(left, right), lean[:, None]], axis=1)


def _soft_hist(values: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """Per column of ``values`` [n, F]: a histogram of ``bins`` over [lo, hi], each value split
    between its two nearest bin centres (so a small change moves weight smoothly) -> [F, bins]."""
    x = np.clip((values - lo) / (hi - lo) * bins - 0.5, 0, bins - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, bins - 1)
    w1 = x - i0
    out = np.zeros((values.shape[1], bins))
    f = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    np.add.at(out, (f, i0), 1 - w1)
    np.add.at(out, (f, i1), w1)
    return out / max(1, values.shape[0])


def descriptor(motion: Motion) -> np.ndarray | None:
    """The motion's descriptor (float32, SIZE values, unit length), or None when fewer than
    MIN_FRAMES frames show every joint it needs."""
    a = angles(motion)
    if a is None or a.shape[0] < MIN_FRAMES:
        return None
    pose = _soft_hist(a, POSE_BINS, 0.0, np.pi)
    # angular speed over the seen frames, each frame's own time step; consecutive seen frames only
    core = [motion.skeleton.index(f"{s}_{p}") for s in SIDES for p in PARTS]
    seen = (motion.confidence[:, core] >= CONFIDENCE).all(axis=1) & np.isfinite(
        motion.keypoints[:, core].astype(np.float64)).all(axis=(1, 2))
    frames = np.flatnonzero(seen)
    ts = motion.timestamps[frames]
    step = np.diff(ts)
    adjacent = np.diff(frames) == 1
    speed = np.abs(np.diff(a, axis=0))[adjacent] / step[adjacent][:, None]
    typical = float(np.median(speed[speed > 0])) if (speed > 0).any() else 0.0
    moves = np.zeros((FEATURES, len(SPEED_EDGES) + 1))
    if speed.shape[0] and typical > 0:
        which = np.searchsorted(np.asarray(SPEED_EDGES), speed / typical)
        for k in range(len(SPEED_EDGES) + 1):
            moves[:, k] = (which == k).mean(axis=0)
    vec = np.concatenate([np.sqrt(pose).ravel(), SPEED_WEIGHT * np.sqrt(moves).ravel()])
    norm = float(np.linalg.norm(vec))
    return (vec / norm).astype(np.float32) if norm > 0 else None


def to_blob(vec: np.ndarray) -> bytes:
    return np.asarray(vec, "<f4").tobytes()


def from_blobs(blobs: list[bytes]) -> np.ndarray:
    """Descriptors stored as blobs, as one [n, SIZE] matrix."""
    if not blobs:
        return np.zeros((0, SIZE), np.float32)
    return np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), SIZE)


def rank(query: np.ndarray, matrix: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` rows of ``matrix`` most similar to ``query``: (row indices, similarities),
    best first."""
    sims = matrix @ query
    top = min(top, sims.size)
    if top <= 0:
        return np.zeros(0, int), np.zeros(0, np.float32)
    part = np.argpartition(-sims, top - 1)[:top]
    order = part[np.argsort(-sims[part], kind="stable")]
    return order, sims[order]
