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
NEAR_DUPLICATE = 0.995  # copies of one take score 0.965-1.0 (median 0.996), distinct takes up to 0.995
MIN_FRAMES = 8  # frames showing the torso, below which a motion gets no descriptor
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
    """The 17 per-frame angles ([frames, 17], radians; NaN where a joint it uses is not seen);
    None when the skeleton lacks those joints. A left/right pair seen on one side only (a side
    view hides the far limb) takes that side's value for both."""
    sk = motion.skeleton
    try:
        idx = {(s, p): sk.index(f"{s}_{p}") for s in SIDES for p in PARTS}
    except (KeyError, ValueError):
        return None
    p = {}
    for k, j in idx.items():
        xy = motion.keypoints[:, j].astype(np.float64)
        xy[~(motion.confidence[:, j] >= CONFIDENCE) | ~np.isfinite(xy).all(axis=1)] = np.nan
        p[k] = xy
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
    left = np.where(np.isnan(left), right, left)
    right = np.where(np.isnan(right), left, right)
    lean = _angle(-down, np.array([0.0, -1.0]))
    return np.concatenate([np.minimum(left, right), np.maximum(left, right), lean[:, None]], axis=1)


def _soft_hist(values: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """Per column of ``values`` [n, F] (NaN: not seen): a histogram of ``bins`` over [lo, hi],
    each value split between its two nearest bin centres (a small change moves weight smoothly),
    normalised per column over its seen values -> [F, bins] (a column never seen: zeros)."""
    seen = np.isfinite(values)
    x = np.clip((np.where(seen, values, lo) - lo) / (hi - lo) * bins - 0.5, 0, bins - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, bins - 1)
    w1 = x - i0
    out = np.zeros((values.shape[1], bins))
    f = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    np.add.at(out, (f[seen], i0[seen]), (1 - w1)[seen])
    np.add.at(out, (f[seen], i1[seen]), w1[seen])
    return out / np.maximum(1, seen.sum(axis=0))[:, None]


def descriptor(motion: Motion) -> np.ndarray | None:
    """The motion's descriptor (float32, SIZE values, unit length), or None when fewer than
    MIN_FRAMES frames show the torso (both shoulders and hips)."""
    a = angles(motion)
    if a is None or np.isfinite(a[:, -1]).sum() < MIN_FRAMES:
        return None
    pose = _soft_hist(a, POSE_BINS, 0.0, np.pi)
    # angular speed between consecutive frames, each its own time step, where both are seen
    step = np.diff(motion.timestamps)[:, None]
    speed = np.abs(np.diff(a, axis=0)) / step
    finite = speed[np.isfinite(speed)]
    typical = float(np.median(finite[finite > 0])) if (finite > 0).any() else 0.0
    moves = np.zeros((FEATURES, len(SPEED_EDGES) + 1))
    if typical > 0:
        seen = np.isfinite(speed)
        which = np.searchsorted(np.asarray(SPEED_EDGES), np.where(seen, speed, 0) / typical)
        for k in range(len(SPEED_EDGES) + 1):
            moves[:, k] = ((which == k) & seen).sum(axis=0) / np.maximum(1, seen.sum(axis=0))
    vec = np.concatenate([np.sqrt(pose).ravel(), SPEED_WEIGHT * np.sqrt(moves).ravel()])
    norm = float(np.linalg.norm(vec))
    return (vec / norm).astype(np.float32) if norm > 0 else None


def stored(vec: np.ndarray) -> dict:
    """How a version's manifest keeps its descriptor (so that reindex brings it back)."""
    return {"version": VERSION, "values": [round(float(v), 6) for v in vec]}


def packed(manifest: dict) -> tuple[int, bytes] | None:
    """(kind, packed values) of the descriptor a manifest keeps, for the index; None when it
    keeps none of this kind."""
    d = manifest.get("descriptor") or {}
    values = d.get("values") or []
    if d.get("version") != VERSION or len(values) != SIZE:
        return None
    return VERSION, to_blob(np.asarray(values, np.float32))


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
