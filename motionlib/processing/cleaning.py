"""Clean a raw single-person track: left/right swaps, track breaks, other people, wrong bodies.

The estimator's raw output is kept beside the result; what this returns is the *stored* track that
scores, edits, exports and renders use. Every change is reported (docs/fidelity.md):

1. **Left/right swaps** (``repair_swaps``). For each part - the whole body, then each pair of arms
   and of legs relative to the corrected body - a two-state chain (labels as given / swapped) is
   solved exactly (Viterbi). Moving from frame a to the next detected frame b costs the distance
   the part's joints travel, in torso lengths, under the labels chosen for a and b; a swapped
   frame costs ``SWAP_PRIOR`` more than one left as given. A flicker or a run of swapped frames
   between correct ones therefore comes back, because keeping it costs two jumps of the whole
   left/right separation; a long run that starts at the first frame comes back only if it is
   shorter than what its one jump costs. Frames more than ``LINK_GAP`` apart are not linked.
2. **Breaks** (``segment``). Consecutive detected frames that the body could not join - the
   joints land further from where their speed put them than ``BREAK_POSE`` torso lengths (plus
   ``BREAK_SPEED`` per second of missing frames), the torso turns by more than ``BREAK_TURN``
   degrees in one frame, or its length changes by more than ``BREAK_SCALE`` x - split the track
   into segments. A frame the body broke into, after which the body goes on from the frame before
   it (as if it had been missed), is a one-frame excursion: the body breaks out of it too.
3. **Who is who** (``follow``). Segments are joined into people by appearance (the chromaticity of
   the torso and thighs measured while tracking, compared where one segment ends and the other
   starts) and, where appearance is unknown, by where the body
   is. The person with most frames is the performer; frames of anyone else are rejected
   (``other person``). A short segment of the performer (under ``GLITCH_SECONDS``) whose body is
   less plausible than the performer's usual body - bones out of proportion, torso turned away
   from how the performer stands around it - is rejected (``implausible body``). A break between
   two long segments of the performer, with no frames of anybody between, is a **jump cut**.
4. **Plausibility per frame and joint** (``plausibility``). A bone longer than ``LONG_BONE`` x
   the performer's robust length for it (scaled by the frame's torso) cannot be right - perspective
   only shortens bones - so the confidence of its outer joint is capped at ``DOUBT``. A frame whose
   trunk and legs are far out of the performer's proportions or whose torso is turned far from how
   the performer stands (implausibility over ``ODD_FRAME`` and ``ODD_RATIO`` x the clip's median)
   has every body joint capped at ``DOUBT``.

Stored confidence therefore means: the estimator's visibility, capped at ``DOUBT`` (below the 0.5
that counts as visible) where the body says that joint is wrong, and 0 where the frame was
rejected. Pure numpy; arrays are [T, J, D] with NaN = unknown.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from motionlib.core.skeleton import Skeleton
from motionlib.processing.signal import runs

SWAP_PRIOR = 0.01  # torso lengths a swapped frame costs (the estimator is usually right)
LINK_GAP = 0.5  # seconds: frames further apart are not compared for swaps
BREAK_POSE = 0.6  # torso lengths: median joint distance from where its speed put it
BREAK_SPEED = 3.0  # torso lengths per second of missing frames
BREAK_TURN = 55.0  # degrees the torso may turn between consecutive frames
BREAK_TURN_SPEED = 720.0  # degrees per second of missing frames (a flip turns ~900 deg/s)
BREAK_SCALE = 1.6  # torso length ratio between consecutive frames
GLITCH_SECONDS = 0.5  # a performer segment shorter than this may be a wrong body
SAME_LOOK = 0.009  # mean chromaticity difference under which two segments look like one person
LOOK_FRAMES = 5  # frames at each end of a segment that say how it looks
CANDIDATES = 8  # people a new segment is compared with: this many most recent, this many biggest
SPIKE_MIN = 0.03  # body-box mean RGB change (0-1) of a jump cut's frame ...
SPIKE_RATIO = 2.5  # ... at least this many times that of the frames either side ...
SPIKE_MOVE = 0.3  # ... and the body moved this many torso lengths across it (settled 3 frames on)
LONG_BONE = 1.5
ODD_FRAME = 1.0  # implausibility (mean |log| proportion error + turn / 90 deg) of a doubted frame
ODD_RATIO = 4.0  # ... and at least this many times the clip's median
DOUBT = 0.3  # confidence cap of a joint the body says is wrong
MIN_CONF = 0.3  # joints below this are not used to judge breaks

ARM_JOINTS = ("elbow", "wrist", "pinky", "index", "thumb")
LEG_JOINTS = ("knee", "ankle", "heel", "foot_index", "big_toe", "small_toe")
TORSO_JOINTS = ("shoulder", "hip")
BONES = (
    ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"), ("right_hip", "right_knee"),
    ("left_knee", "left_ankle"), ("right_knee", "right_ankle"),
    ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
)


@dataclass
class CleanReport:
    swaps: list[dict] = field(default_factory=list)  # {"part", "start_frame", "end_frame", "start", "end", "frames"}
    rejected: list[dict] = field(default_factory=list)  # {"reason", "start_frame", "end_frame", "start", "end", "frames"}
    jump_cuts: list[dict] = field(default_factory=list)  # {"time", "frame", "kind": "jump"}
    doubted_joints: int = 0  # (frame, joint) confidences capped at DOUBT
    people: int = 0

    def as_dict(self) -> dict:
        return {
            "swaps": self.swaps,
            "rejected": self.rejected,
            "jump_cuts": self.jump_cuts,
            "doubted_joints": self.doubted_joints,
            "people": self.people,
            "swapped_frames": swapped_frames(self.swaps),
            "rejected_frames": int(sum(r["frames"] for r in self.rejected)),
        }


def swapped_frames(swaps: list[dict]) -> int:
    """Frames with at least one part swapped back."""
    return len({f for s in swaps for f in range(s["start_frame"], s["end_frame"])})


@dataclass
class Cleaned:
    keypoints: np.ndarray
    confidence: np.ndarray
    world: np.ndarray | None
    presence: np.ndarray | None
    report: CleanReport


# --------------------------------------------------------------------------- helpers
class _Layout:
    """Joint indices the cleaner needs, by name, for any layout that has them."""

    def __init__(self, skeleton: Skeleton):
        s = skeleton
        self.ok = all(s.find(f"{side}_{j}") is not None for side in ("left", "right") for j in TORSO_JOINTS)
        if not self.ok:
            return
        self.ls, self.rs = s.index("left_shoulder"), s.index("right_shoulder")
        self.lh, self.rh = s.index("left_hip"), s.index("right_hip")
        self.body = np.array(s.body)
        names = s.joint_names

        def pairs(stems: tuple[str, ...]) -> list[tuple[int, int]]:
            return [(a, b) for a, b in s.mirror_pairs if names[a][len("left_"):] in stems]

        self.torso_pairs = pairs(TORSO_JOINTS)
        self.arm_pairs = pairs(ARM_JOINTS)
        self.leg_pairs = pairs(LEG_JOINTS)
        hand = [(a, b) for a, b in s.mirror_pairs if names[a].startswith("left_hand_")]
        self.all_pairs = list(s.mirror_pairs)  # a swapped body takes face, hands and feet along
        self.arm_all = self.arm_pairs + hand  # a swapped arm takes its hand block along
        present = [(a, b) for a, b in BONES if s.find(a) is not None and s.find(b) is not None]
        self.bones = [(s.index(a), s.index(b)) for a, b in present]
        self.bone_names = present


def body_centre_and_scale(keypoints: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """[T, 2] hip centre and [T] torso length (shoulder centre to hip centre), NaN if unknown."""
    ls, rs, lh, rh = (skeleton.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    hips = (keypoints[:, lh] + keypoints[:, rh]) / 2
    shoulders = (keypoints[:, ls] + keypoints[:, rs]) / 2
    return hips, np.linalg.norm(shoulders - hips, axis=1)


def torso_vectors(kp: np.ndarray, L: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[T,2] hip centre, [T,2] hip->shoulder vector, [T] its length."""
    hips = (kp[:, L.lh] + kp[:, L.rh]) / 2
    up = (kp[:, L.ls] + kp[:, L.rs]) / 2 - hips
    return hips, up, np.linalg.norm(up, axis=1)


def _detected(kp: np.ndarray, L: _Layout) -> np.ndarray:
    _, _, s = torso_vectors(kp, L)
    return np.isfinite(s) & (s > 0)


def _span(kind: str, value: str, a: int, b: int, ts: np.ndarray, end: float) -> dict:
    return {kind: value, "start_frame": int(a), "end_frame": int(b), "start": round(float(ts[a]), 3),
            "end": round(float(ts[b]) if b < len(ts) else end, 3), "frames": int(b - a)}


def _swap(arr: np.ndarray | None, t: np.ndarray, pairs) -> None:
    """Swap the joints of ``pairs`` in frames ``t`` of [T, J, ...] in place."""
    if arr is None or not len(t) or not pairs:
        return
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    left = arr[t[:, None], a[None, :]].copy()
    arr[t[:, None], a[None, :]] = arr[t[:, None], b[None, :]]
    arr[t[:, None], b[None, :]] = left


# --------------------------------------------------------------------------- 1. swaps
def _chain(kp, conf, idx, pairs, scale) -> tuple[np.ndarray, np.ndarray]:
    """Costs of linking consecutive detected frames idx[k-1] -> idx[k] with the same labels
    (``same``) or with one of them swapped (``cross``), in torso lengths, weighted by confidence."""
    a, b = idx[:-1], idx[1:]
    same = np.zeros(len(a))
    cross = np.zeros(len(a))
    for l, r in pairs:
        la, ra, lb, rb = kp[a, l], kp[a, r], kp[b, l], kp[b, r]
        w = 0.25 + 0.75 * np.minimum.reduce([conf[a, l], conf[a, r], conf[b, l], conf[b, r]])
        s = np.linalg.norm(lb - la, axis=1) + np.linalg.norm(rb - ra, axis=1)
        c = np.linalg.norm(lb - ra, axis=1) + np.linalg.norm(rb - la, axis=1)
        ok = np.isfinite(s) & np.isfinite(c)
        same[ok] += (w * s)[ok]
        cross[ok] += (w * c)[ok]
    return same / scale, cross / scale


def _viterbi(same: np.ndarray, cross: np.ndarray, linked: np.ndarray, prior: float) -> np.ndarray:
    """Two-state chain over N frames (N-1 links): state 1 = swapped. Exact minimum. Plain Python
    floats: per step, numpy's call overhead would cost more than the arithmetic."""
    n = len(same) + 1
    c0, c1 = 0.0, prior
    back0 = bytearray(n)  # best previous state given state 0 / 1 here
    back1 = bytearray(n)
    for k, (s, c, link) in enumerate(zip(same.tolist(), cross.tolist(), linked.tolist()), start=1):
        if not link:
            s = c = 0.0
        stay0, from1_0 = c0 + s, c1 + c
        stay1, from0_1 = c1 + s, c0 + c
        back0[k] = 0 if stay0 <= from1_0 else 1
        back1[k] = 1 if stay1 <= from0_1 else 0
        c0, c1 = min(stay0, from1_0), min(stay1, from0_1) + prior
    states = np.zeros(n, np.int8)
    state = 0 if c0 <= c1 else 1
    states[-1] = state
    for k in range(n - 1, 0, -1):
        state = back1[k] if state else back0[k]
        states[k - 1] = state
    return states


def repair_swaps(kp, conf, ts, L: _Layout, *, others=()) -> list[tuple[str, np.ndarray]]:
    """Fix left/right swaps in place (``others``: more [T, J, ...] arrays swapped alike).
    Returns (part, swapped frame indices) per part."""
    det = _detected(kp, L)
    idx = np.flatnonzero(det)
    if idx.size < 2:
        return []
    _, _, torso = torso_vectors(kp, L)
    scale = np.nanmedian(torso[idx])
    linked = np.diff(ts[idx]) <= LINK_GAP
    done = []
    parts = [("body", L.torso_pairs, L.all_pairs), ("arms", L.arm_pairs, L.arm_all), ("legs", L.leg_pairs, L.leg_pairs)]
    for part, judged, moved in parts:
        if not judged:
            continue
        same, cross = _chain(kp, conf, idx, judged, scale)
        states = _viterbi(same, cross, linked, SWAP_PRIOR * len(judged))
        t = idx[states == 1]
        if t.size:
            for arr in (kp, conf, *others):
                _swap(arr, t, moved)
            done.append((part, t))
    return done


# --------------------------------------------------------------------------- 2. breaks
def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _median_moved(dist: np.ndarray, ok: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """[n] median over joints of [n, J] distances, over the confident joints (``ok``) where at
    least 4 are, else over all known ones; 0 where none is known."""
    use = np.where((ok.sum(axis=1) >= 4)[:, None], ok, finite)
    d = np.where(use, dist, np.nan)
    out = np.zeros(len(d))
    has = use.any(axis=1)
    if has.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[has] = np.nanmedian(d[has], axis=1)
    return out


def breaks(kp, conf, ts, L: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """(detected frame indices, bool per link idx[k-1] -> idx[k]: the body broke there).
    Vectorised over links; only "no speed carried across a break" is decided in order."""
    det = _detected(kp, L)
    idx = np.flatnonzero(det)
    n = idx.size
    if n < 2:
        return idx, np.zeros(0, bool)
    _, up, torso = torso_vectors(kp, L)
    body = L.body
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 1 / 30
    a, b = idx[:-1], idx[1:]
    dt = ts[b] - ts[a]
    missing = np.maximum(0.0, dt - step)
    ref = np.maximum(torso[a], torso[b])
    ratio = ref / np.maximum(np.minimum(torso[a], torso[b]), 1e-6)
    turn = _angle(up[a], up[b])
    xa, xb = kp[a][:, body], kp[b][:, body]
    ok = (conf[a][:, body] >= MIN_CONF) & (conf[b][:, body] >= MIN_CONF)
    still = _median_moved(np.linalg.norm(xb - xa, axis=-1), ok, np.isfinite(xb).all(-1) & np.isfinite(xa).all(-1))
    # with the speed of the link before (idx[k-2] -> idx[k-1]) carried over
    speed = np.full(n - 1, np.nan)
    if n >= 3:
        a0 = idx[:-2]
        gap0 = ts[a[1:]] - ts[a0]
        v = (kp[a[1:]][:, body] - kp[a0][:, body]) / gap0[:, None, None]
        v = np.where(np.isfinite(v), v, 0.0)
        pred = xa[1:] + v * np.minimum(dt[1:], 2 * step)[:, None, None]
        fin = np.isfinite(xb[1:]).all(-1) & np.isfinite(pred).all(-1)
        moving = _median_moved(np.linalg.norm(xb[1:] - pred, axis=-1), ok[1:], fin)
        speed[1:] = np.where(gap0 <= 3 * step, moving, np.nan)
    with np.errstate(invalid="ignore"):
        hard = (turn > BREAK_TURN + BREAK_TURN_SPEED * missing) | (ratio > BREAK_SCALE)
    limit = (BREAK_POSE + BREAK_SPEED * missing) * ref
    # a one-frame excursion: idx[k+1] joins idx[k-1] as if idx[k] had been missed. Where the body
    # broke into idx[k], that frame was somebody (something) else, and the body breaks out of it
    # too - even when its own way out stays just under the limits (a bigger body's torso makes the
    # limit of the way out generous; the sample's wrong body left with its length 1.59x)
    back = np.zeros(n - 1, bool)
    if n >= 3:
        a2 = idx[:-2]
        dt2 = ts[b[1:]] - ts[a2]
        missing2 = np.maximum(0.0, dt2 - step)
        ref2 = np.maximum(torso[a2], torso[b[1:]])
        ratio2 = ref2 / np.maximum(np.minimum(torso[a2], torso[b[1:]]), 1e-6)
        x2 = kp[a2][:, body]
        ok2 = (conf[a2][:, body] >= MIN_CONF) & (conf[b[1:]][:, body] >= MIN_CONF)
        fin2 = np.isfinite(xb[1:]).all(-1) & np.isfinite(x2).all(-1)
        still2 = _median_moved(np.linalg.norm(xb[1:] - x2, axis=-1), ok2, fin2)
        with np.errstate(invalid="ignore"):
            back[1:] = ((_angle(up[a2], up[b[1:]]) <= BREAK_TURN + BREAK_TURN_SPEED * missing2)
                        & (ratio2 <= BREAK_SCALE) & (dt2 <= 3 * step)
                        & (still2 <= (BREAK_POSE + BREAK_SPEED * missing2) * ref2))
    out = np.zeros(n - 1, bool)
    prev = True  # no speed before the first link
    into = False  # the body broke into idx[k] by its own step (not as the way out of an excursion)
    for k in range(n - 1):
        moved = speed[k] if (not prev and speed[k] == speed[k]) else still[k]
        own = bool(hard[k] or moved > limit[k])
        prev = own or bool(into and back[k])
        into = own
        out[k] = prev
    return idx, out


# --------------------------------------------------------------------------- 3. who is who
def _bone_ratios(kp, L: _Layout, frames) -> tuple[np.ndarray, np.ndarray]:
    """([frames, bones] bone length / torso length, [frames, 2] hip->shoulder vector)."""
    _, up, torso = torso_vectors(kp[frames], L)
    with np.errstate(all="ignore"):
        r = np.stack([np.linalg.norm(kp[frames, i] - kp[frames, j], axis=1) / torso for i, j in L.bones], axis=1)
    return r, up


def _robust_ratios(kp, L: _Layout, frames) -> np.ndarray:
    """[bones] median bone length / torso length over ``frames``."""
    r, _ = _bone_ratios(kp, L, frames)
    with np.errstate(all="ignore"):
        return np.nanmedian(r, axis=0) if len(frames) else np.full(len(L.bones), np.nan)


def implausibility(kp, L: _Layout, frames, ratios, up_ref) -> np.ndarray:
    """Per frame of ``frames``, how far its body is from the performer's: the mean |log|
    bone-proportion error plus the torso's turn from the performer's median (in 90 deg)."""
    r, up = _bone_ratios(kp, L, frames)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        prop = np.nanmean(np.abs(np.log(r / ratios)), axis=1)
        return prop + _angle(up, up_ref[None, :]) / 90.0


def _implausibility(kp, L: _Layout, frames, ratios, up_ref) -> float:
    """The median over a segment's frames of ``implausibility``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(implausibility(kp, L, frames, ratios, up_ref)))


def _chroma(look: np.ndarray) -> np.ndarray:
    """Each patch's colour without its brightness (r, g, b) / (r + g + b): light that changes as
    the performer moves (backlight, shade) barely moves it; other clothes and skin do."""
    rgb = look.reshape(-1, 3)
    with np.errstate(all="ignore"):
        return (rgb / rgb.sum(axis=1, keepdims=True)).ravel()


def _chroma_of(look: np.ndarray | None) -> np.ndarray | None:
    return None if look is None else _chroma(look)


def _look_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Mean difference of two chromaticities (``_chroma``), None when too little is known."""
    if a is None or b is None:
        return None
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.abs(a[ok] - b[ok]).mean()) if ok.sum() >= 3 else None


def follow(kp, conf, ts, L: _Layout, looks: np.ndarray | None, duration: float, cut_frames=()):
    """Split at breaks, join segments into people, pick the performer.
    Returns (keep mask, rejected spans, jump cuts, people)."""
    T = kp.shape[0]
    idx, broke = breaks(kp, conf, ts, L)
    keep = np.zeros(T, bool)
    if idx.size == 0:
        return keep, [], [], 0
    cuts_at = set(int(c) for c in cut_frames)
    bounds = [0] + [k + 1 for k in np.flatnonzero(broke)] + [idx.size]
    segs = [idx[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
    hips, up, torso = torso_vectors(kp, L)

    def look(frames) -> np.ndarray | None:
        if looks is None:
            return None
        v = looks[frames]
        v = v[np.isfinite(v).any(axis=1)]
        if not len(v):
            return None
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(v, axis=0)

    # how each segment looks where it starts and where it ends (a person's look drifts with the
    # light and the pose, so a segment is compared with the nearest frames of the other)
    head = [_chroma_of(look(s[:LOOK_FRAMES])) for s in segs]
    tail = [_chroma_of(look(s[-LOOK_FRAMES:])) for s in segs]
    # people: a segment joins the person it looks like (or, look unknown, continues in place);
    # it is compared with the people seen most recently and the biggest, CANDIDATES of each, so
    # that a long clip with many breaks costs segments x CANDIDATES, not segments squared
    person_of: list[int] = []
    people: list[list[int]] = []
    sizes_so_far: list[int] = []
    for si, seg in enumerate(segs):
        best, best_d = None, np.inf
        recent = sorted(range(len(people)), key=lambda p: people[p][-1], reverse=True)[:CANDIDATES]
        biggest = sorted(range(len(people)), key=lambda p: sizes_so_far[p], reverse=True)[:CANDIDATES]
        for pi in dict.fromkeys(recent + biggest):
            members = people[pi]
            last = segs[members[-1]]
            d = _look_distance(head[si], tail[members[-1]])
            if d is not None:
                if d <= SAME_LOOK and d < best_d:
                    best, best_d = pi, d
                continue
            a, b = last[-1], seg[0]
            dist = np.linalg.norm(hips[b] - hips[a]) / max(torso[a], torso[b])
            ratio = max(torso[a], torso[b]) / max(min(torso[a], torso[b]), 1e-6)
            if dist <= BREAK_POSE + BREAK_SPEED * (ts[b] - ts[a]) and ratio <= BREAK_SCALE and dist < best_d:
                best, best_d = pi, dist
        if best is None:
            people.append([si])
            sizes_so_far.append(len(seg))
            person_of.append(len(people) - 1)
        else:
            people[best].append(si)
            sizes_so_far[best] += len(seg)
            person_of.append(best)
    sizes = [sum(len(segs[s]) for s in m) for m in people]
    performer = int(np.argmax(sizes))
    mine = [s for s in people[performer]]
    # the performer's usual body, from their long segments
    long_frames = np.concatenate([segs[s] for s in mine if ts[segs[s][-1]] - ts[segs[s][0]] >= GLITCH_SECONDS] or [segs[s] for s in mine])
    ratios = _robust_ratios(kp, L, long_frames)
    with np.errstate(all="ignore"):
        up_ref = np.nanmedian(up[long_frames] / torso[long_frames, None], axis=0)
    usual = _implausibility(kp, L, long_frames, ratios, up_ref)
    rejected: list[dict] = []
    jump_cuts: list[dict] = []
    kept_segs: list[int] = []
    for s in mine:
        seg = segs[s]
        seconds = ts[seg[-1]] - ts[seg[0]]
        if seconds < GLITCH_SECONDS and len(mine) > 1:
            score = _implausibility(kp, L, seg, ratios, up_ref)
            if score > max(2 * usual, usual + 0.25):
                rejected.append(_span("reason", "implausible body", seg[0], seg[-1] + 1, ts, duration))
                continue
        kept_segs.append(s)
    for s in kept_segs:
        keep[segs[s]] = True
    for pi, members in enumerate(people):
        if pi == performer:
            continue
        for s in members:
            seg = segs[s]
            # a brief body nobody else owns that the performer's could not be (lying across them,
            # limbs out of proportion) is a wrong body, not a person
            brief = ts[seg[-1]] - ts[seg[0]] < GLITCH_SECONDS
            odd = brief and _implausibility(kp, L, seg, ratios, up_ref) > max(2 * usual, usual + 0.25)
            reason = "implausible body" if odd else "other person"
            rejected.append(_span("reason", reason, seg[0], seg[-1] + 1, ts, duration))
    # jump cuts: consecutive kept performer segments with nobody between them, both long
    for s0, s1 in zip(kept_segs, kept_segs[1:]):
        if s1 != s0 + 1:
            continue
        a, b = segs[s0], segs[s1]
        if ts[a[-1]] - ts[a[0]] >= GLITCH_SECONDS and ts[b[-1]] - ts[b[0]] >= GLITCH_SECONDS:
            f = int(b[0])
            if not any(abs(f - c) <= 1 for c in cuts_at):  # a scene cut is reported as such
                jump_cuts.append({"time": round(float(ts[f]), 3), "frame": f, "kind": "jump"})
    rejected.sort(key=lambda r: r["start_frame"])
    return keep, _merge(rejected, ts, duration), jump_cuts, len(people)


def _merge(spans: list[dict], ts, duration) -> list[dict]:
    out: list[dict] = []
    for s in spans:
        if out and out[-1]["reason"] == s["reason"] and out[-1]["end_frame"] >= s["start_frame"]:
            out[-1] = _span("reason", s["reason"], out[-1]["start_frame"], max(out[-1]["end_frame"], s["end_frame"]), ts, duration)
        else:
            out.append(s)
    return out


def pixel_jump_cuts(kp, ts, L: _Layout, keep: np.ndarray, body_diffs: np.ndarray,
                    frame_diffs: np.ndarray | None) -> list[dict]:
    """Jump cuts seen in the pixels where the body is (module docstring, step 3)."""
    bd = np.asarray(body_diffs, np.float64)
    T = len(bd)
    fd = None if frame_diffs is None else np.concatenate([[np.nan], np.asarray(frame_diffs, np.float64)])
    _, _, torso = torso_vectors(kp, L)
    body = L.body
    out = []
    for t in range(1, T - 3):
        v = bd[t]
        if not (np.isfinite(v) and v >= SPIKE_MIN and keep[t - 1] and keep[min(t + 3, T - 1)]):
            continue
        side = np.nanmax([bd[t - 1], bd[t + 1]]) if np.isfinite([bd[t - 1], bd[t + 1]]).any() else 0.0
        if v < SPIKE_RATIO * side:
            continue
        if fd is not None and t < len(fd) and np.isfinite(fd[t]):
            around = fd[max(1, t - 15):t + 16]
            if fd[t] > 2 * np.nanmedian(around) + 0.01:
                continue  # the whole picture changed: a scene cut, reported as such
        d = np.linalg.norm(kp[t + 3, body] - kp[t - 1, body], axis=1)
        ref = np.nanmax([torso[t - 1], torso[t + 3]])
        with np.errstate(all="ignore"):
            moved = float(np.nanmedian(d)) / ref if np.isfinite(d).any() and ref > 0 else 0.0
        if moved >= SPIKE_MOVE:
            out.append({"time": round(float(ts[t]), 3), "frame": int(t), "kind": "jump"})
    return out


# --------------------------------------------------------------------------- 4. per joint
def plausibility(kp, conf, L: _Layout, keep: np.ndarray) -> np.ndarray:
    """[T, J] True where a joint is doubted: it ends a bone too long for the performer's body,
    or its frame's body is far from the performer's (module docstring, step 4)."""
    T, J = conf.shape
    bad = np.zeros((T, J), bool)
    frames = np.flatnonzero(keep)
    if frames.size < 5:
        return bad
    _, up, torso = torso_vectors(kp, L)
    good = conf >= 0.5
    for i, j in L.bones:
        length = np.linalg.norm(kp[:, i] - kp[:, j], axis=1) / torso
        both = keep & good[:, i] & good[:, j] & np.isfinite(length)
        if both.sum() < 5:
            continue
        typical = np.percentile(length[both], 90)
        with np.errstate(invalid="ignore"):
            long = keep & (length > LONG_BONE * typical)
        bad[long, j] = True
    trunk = _Trunk(L)
    ratios = _robust_ratios(kp, trunk, frames)
    with np.errstate(all="ignore"):
        up_ref = np.nanmedian(up[frames] / torso[frames, None], axis=0)
    score = implausibility(kp, trunk, frames, ratios, up_ref)
    ok = np.isfinite(score)
    if ok.sum() >= 5:
        limit = max(ODD_FRAME, ODD_RATIO * float(np.median(score[ok])))
        with np.errstate(invalid="ignore"):
            odd = frames[score > limit]
        bad[np.ix_(odd, L.body)] = True
    return bad


class _Trunk:
    """The layout seen through its trunk and leg bones only (arms foreshorten too freely)."""

    def __init__(self, L: _Layout):
        self.__dict__.update(L.__dict__)
        arms = {"left_elbow", "right_elbow", "left_wrist", "right_wrist"}
        self.bones = [b for b, name in zip(L.bones, L.bone_names) if not (set(name) & arms)]


# --------------------------------------------------------------------------- entry point
def clean(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    timestamps: np.ndarray,
    duration: float,
    skeleton: Skeleton,
    *,
    world: np.ndarray | None = None,
    presence: np.ndarray | None = None,
    looks: np.ndarray | None = None,
    cut_frames=(),
    body_diffs: np.ndarray | None = None,
    frame_diffs: np.ndarray | None = None,
) -> Cleaned:
    """The four steps of the module docstring on copies of the arrays."""
    kp = np.array(keypoints, np.float32, copy=True)
    conf = np.array(confidence, np.float32, copy=True)
    world = None if world is None else np.array(world, np.float32, copy=True)
    presence = None if presence is None else np.array(presence, np.float32, copy=True)
    ts = np.asarray(timestamps, np.float64)
    report = CleanReport()
    L = _Layout(skeleton)
    if not L.ok or kp.shape[0] < 2:
        return Cleaned(kp, conf, world, presence, report)
    extra = [a for a in (world, presence) if a is not None]
    swapped = repair_swaps(kp, conf, ts, L, others=extra)
    keep, rejected, jump_cuts, people = follow(kp, conf, ts, L, looks, duration, cut_frames)
    drop = _detected(kp, L) & ~keep
    kp[drop] = np.nan
    conf[drop] = 0.0
    if world is not None:
        world[drop] = np.nan
    if presence is not None:
        presence[drop] = 0.0
    if body_diffs is not None:
        seen = [c["frame"] for c in jump_cuts] + [int(c) for c in cut_frames]
        for cut in pixel_jump_cuts(kp, ts, L, keep, body_diffs, frame_diffs):
            if all(abs(cut["frame"] - f) > 3 for f in seen):
                jump_cuts.append(cut)
                seen.append(cut["frame"])
        jump_cuts.sort(key=lambda c: c["frame"])
    report.rejected, report.jump_cuts, report.people = rejected, jump_cuts, people
    for part, frames in swapped:
        mask = np.zeros(kp.shape[0], bool)
        mask[frames] = True
        for a, b in runs(mask & keep):
            report.swaps.append(_span("part", part, a, b, ts, duration))
    report.swaps.sort(key=lambda s: (s["start_frame"], s["part"]))
    bad = plausibility(kp, conf, L, keep)
    doubt = bad & (conf > DOUBT)
    conf[doubt] = DOUBT
    report.doubted_joints = int(doubt.sum())
    return Cleaned(kp, conf, world, presence, report)
