"""Quality scores of a motion, each in [0, 1], higher is better, with the raw metric beside it.

The formulas (also in docs/quality.md):

occlusion
    A body joint counts as *visible* in a frame when its confidence is >= 0.5 and it lies inside
    the frame. raw = weighted mean, over the frames where the performer was found, of the visible
    fraction, with weights wrists/ankles 3, elbows/knees 1.5, shoulders/hips 1, hand and foot tips
    0.5, face points 0.25 each (wrists and ankles drift first, so they count most).
    score = raw.
jitter
    Each visible joint track (runs of at least max(8, fps/2) frames) is low-passed with a
    zero-phase Butterworth filter (cutoff min(6 Hz, 0.4 x frame rate)); the residual is the
    high-frequency part. raw = its robust standard deviation (1.4826 x the median absolute
    residual, per coordinate) divided by the performer's median torso length: the noise level,
    which a few glitch frames do not dominate (cleaning rejects or doubts those), so equivalent
    inputs score alike. score = exp(-raw / 0.02): noise of 0.5 % of the torso scores 0.78, 1 %
    0.61, 2 % 0.37. The worst joint group is named in the warning.
    Unknown (None) when no joint is visible long enough.
framing
    detection = share of frames in which the performer was found.
    joints_inside = share of (frame, core joint) pairs, over detected frames, where the joint lies
    inside the frame with a margin of 2 % of the short side (core joints: nose, shoulders, elbows,
    wrists, hips, knees, ankles). This is the raw metric.
    whole_body = share of detected frames with every core joint inside.
    inside = (joints_inside + whole_body) / 2.
    size = min(1, median body height (or width, if larger) as a share of the frame / 0.35).
    drift = 1 - clip((spread - 0.25) / 0.5) with spread the larger of the 5-95 % ranges of the hip
    centre's x and y, as shares of the frame width and height.
    score = detection x inside x size x drift x 0.5 ^ (number of hard cuts).
cuts
    Mean absolute difference of consecutive grey thumbnails; a cut where it exceeds 0.15 and five
    times the local median (+0.01) of the 30 surrounding differences.
overall
    Geometric mean of the known scores: any one poor score pulls it down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from motionlib.core.skeleton import MEDIAPIPE_POSE_33, Skeleton
from motionlib.processing.signal import column_runs, lowpass_runs
from motionlib.processing.cleaning import body_centre_and_scale

VISIBLE = 0.5
JITTER_SCALE = 0.02
ROBUST_SIGMA = 1.4826  # median absolute residual -> standard deviation, for Gaussian noise
CUT_MIN_DIFF = 0.15
CUT_RATIO = 5.0
CUT_WINDOW = 15
WARN_HIDDEN = 0.2

GROUP_WEIGHTS = {
    "face": 0.25, "shoulders": 1.0, "elbows": 1.5, "wrists": 3.0, "hands": 0.5,
    "hips": 1.0, "knees": 1.5, "ankles": 3.0, "feet": 0.5,
}


def _weights(skeleton: Skeleton, body: list[int]) -> np.ndarray:
    w = np.zeros(skeleton.num_joints)
    for g, joints in skeleton.groups.items():
        w[list(joints)] = GROUP_WEIGHTS[g]
    return w[body]


@dataclass
class QualityReport:
    overall: float | None
    scores: dict[str, float | None]
    raw: dict[str, float | None]
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "scores": self.scores,
            "raw": self.raw,
            "details": self.details,
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QualityReport":
        return cls(d.get("overall"), d["scores"], d["raw"], d.get("details", {}), d.get("warnings", []))


def _r(x: float | None, n: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), n)


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def _inside(xy: np.ndarray, width: int, height: int, margin: float = 0.0) -> np.ndarray:
    x, y = xy[..., 0], xy[..., 1]
    with np.errstate(invalid="ignore"):
        return (x >= margin) & (x <= width - margin) & (y >= margin) & (y <= height - margin)


def occlusion(keypoints, confidence, width, height, skeleton) -> tuple[float | None, float | None, dict, list[str]]:
    body = list(skeleton.body)
    kp, conf = keypoints[:, body], confidence[:, body]
    det = np.isfinite(kp).all(axis=2).any(axis=1)
    if not det.any():
        return 0.0, 0.0, {"hidden": {}}, []
    vis = (conf[det] >= VISIBLE) & _inside(kp[det], width, height)
    per_joint = vis.mean(axis=0)
    weights = _weights(skeleton, body)
    raw = float((per_joint * weights).sum() / weights.sum())
    hidden = {}
    warnings = []
    column = {j: k for k, j in enumerate(body)}
    groups = skeleton.groups
    for group in ("wrists", "ankles", "elbows", "knees", "hips", "shoulders", "face"):
        if group not in groups:
            continue
        frac = float((~vis[:, [column[j] for j in groups[group]]]).any(axis=1).mean())
        hidden[group] = _r(frac, 3)
        if frac >= WARN_HIDDEN:
            warnings.append(f"{group} hidden in {_pct(frac)} of frames")
    return raw, raw, {"hidden": hidden, "visible_per_joint": [_r(v, 3) for v in per_joint]}, warnings


def torso_length(keypoints: np.ndarray, skeleton: Skeleton = MEDIAPIPE_POSE_33) -> float | None:
    _, scale = body_centre_and_scale(keypoints, skeleton)
    scale = scale[np.isfinite(scale) & (scale > 0)]
    return float(np.median(scale)) if scale.size else None


def jitter(keypoints, confidence, timestamps, duration, skeleton) -> tuple[float | None, float | None, dict, list[str]]:
    T = keypoints.shape[0]
    fs = T / duration if duration > 0 else 0.0
    torso = torso_length(keypoints, skeleton)
    if T < 8 or fs <= 0 or not torso:
        return None, None, {"reason": "too few frames"}, ["too short to measure jitter"]
    cutoff = min(6.0, 0.4 * fs)
    min_run = max(8, int(math.ceil(fs / 2)))
    group_of = {j: g for g, joints in skeleton.groups.items() for j in joints}
    residuals = _residuals(keypoints, confidence, list(skeleton.body), fs, cutoff, min_run,
                           [group_of.get(j, "other") for j in skeleton.body])
    if not residuals:
        return None, None, {"reason": "no joint visible long enough"}, ["too little visible motion to measure jitter"]
    per_group = {g: _r(ROBUST_SIGMA * float(np.median(r)) / torso, 4) for g, r in residuals.items()}
    every = np.concatenate(list(residuals.values()))
    residuals.clear()
    count = int(every.size)
    raw = ROBUST_SIGMA * float(np.median(every, overwrite_input=True)) / torso
    score = math.exp(-raw / JITTER_SCALE)
    worst = max(per_group, key=per_group.get)
    warnings = []
    if score < 0.6:
        warnings.append(
            f"jittery keypoints: noise {raw * 100:.1f}% of torso length (robust SD), worst at {worst}"
        )
    details = {"cutoff_hz": _r(cutoff, 2), "torso_px": _r(torso, 1), "samples": count, "per_group": per_group}
    return score, raw, details, warnings


def _residuals(keypoints, confidence, joints: list[int], fs: float, cutoff: float, min_run: int,
               groups: list[str]) -> dict[str, np.ndarray]:
    """|x - low-passed x| of every visible run of at least ``min_run`` frames of each joint, both
    coordinates, gathered by the joint's group: all runs filtered together
    (``signal.lowpass_runs``), a few joints at a time so a long take is not copied whole."""
    T = keypoints.shape[0]
    per = max(1, min(len(joints), (1 << 21) // max(1, 2 * T)))  # joints a block: ~16 MB of float64
    found: dict[str, list[np.ndarray]] = {}
    for j0 in range(0, len(joints), per):
        js = joints[j0 : j0 + per]
        x = keypoints[:, js].astype(np.float64).reshape(T, 2 * len(js))
        ok = (confidence[:, js] >= VISIBLE) & np.isfinite(keypoints[:, js]).all(axis=2)
        col, a, b = column_runs(ok, min_run)
        if not col.size:
            continue
        cols = (col[:, None] * 2 + np.arange(2)).ravel()
        low = np.full_like(x, np.nan)
        lowpass_runs(x, cols, np.repeat(a, 2), np.repeat(b, 2), fs, cutoff, out=low)
        for k, j in enumerate(js):
            part = low[:, 2 * k : 2 * k + 2]
            sel = ~np.isnan(part[:, 0])
            if sel.any():
                found.setdefault(groups[j0 + k], []).append(np.abs(x[sel, 2 * k : 2 * k + 2] - part[sel]).ravel())
    return {g: np.concatenate(rs) for g, rs in found.items()}


def detect_cuts(frame_diffs: np.ndarray, timestamps: np.ndarray) -> list[dict]:
    """Hard cuts from consecutive-thumbnail differences; time is the first frame after the cut."""
    d = np.asarray(frame_diffs, dtype=np.float64)
    cuts = []
    for t in np.flatnonzero(d > CUT_MIN_DIFF):
        lo, hi = max(0, t - CUT_WINDOW), min(d.size, t + CUT_WINDOW + 1)
        around = np.concatenate([d[lo:t], d[t + 1 : hi]])
        local = float(np.median(around)) if around.size else 0.0
        if d[t] > CUT_RATIO * (local + 0.01):
            cuts.append({"time": round(float(timestamps[t + 1]), 3), "frame": int(t + 1), "difference": _r(d[t], 3)})
    return cuts


def framing(keypoints, width, height, timestamps, frame_diffs, track: dict | None,
            skeleton: Skeleton = MEDIAPIPE_POSE_33, cuts: list[dict] | None = None):
    T = keypoints.shape[0]
    core = keypoints[:, list(skeleton.core)]
    det = np.isfinite(keypoints[:, list(skeleton.body)]).all(axis=2).any(axis=1)
    detection = float(det.mean()) if T else 0.0
    warnings: list[str] = []
    if cuts is None:
        cuts = detect_cuts(frame_diffs, timestamps) if frame_diffs is not None and len(frame_diffs) else []
    if not det.any():
        return 0.0, 0.0, {"detection": 0.0, "cuts": cuts}, ["no person found"]
    margin = 0.02 * min(width, height)
    inside_pairs = _inside(core[det], width, height, margin)
    joints_inside = float(inside_pairs.mean())
    out_frames = float((~inside_pairs).any(axis=1).mean())
    inside = (joints_inside + (1.0 - out_frames)) / 2
    ext = np.nanmax(core[det], axis=1) - np.nanmin(core[det], axis=1)
    body_share = np.nanmedian(np.maximum(ext[:, 1] / height, ext[:, 0] / width))
    size = float(min(1.0, body_share / 0.35))
    centre, _ = body_centre_and_scale(keypoints, skeleton)
    c = centre[det & np.isfinite(centre).all(axis=1)]
    if len(c):
        p5, p95 = np.percentile(c, [5, 95], axis=0)
        spread = float(max((p95[0] - p5[0]) / width, (p95[1] - p5[1]) / height))
    else:
        spread = 0.0
    drift = float(np.clip(1 - (spread - 0.25) / 0.5, 0, 1))
    score = detection * inside * size * drift * 0.5 ** len(cuts)
    if detection < 0.9:
        warnings.append(f"performer found in only {_pct(detection)} of frames")
    if out_frames >= 0.1:
        warnings.append(f"body partly outside the frame in {_pct(out_frames)} of frames")
    if size < 0.6:
        warnings.append(f"performer small in frame ({_pct(body_share)} of frame height)")
    if drift < 0.8:
        warnings.append(f"performer drifts across {_pct(spread)} of the frame")
    for cut in cuts:
        if cut.get("kind") == "jump":
            warnings.append(f"jump cut at {cut['time']:.1f} s: the performer teleports while the scene stays")
        else:
            warnings.append(f"cut at {cut['time']:.1f} s (a clip with a cut is a poor motion source)")
    warnings.extend(track_warnings(track))
    details = {
        "detection": _r(detection),
        "inside": _r(inside),
        "joints_inside": _r(joints_inside),
        "frames_partly_outside": _r(out_frames),
        "size": _r(size),
        "body_share": _r(float(body_share)),
        "drift": _r(drift),
        "spread": _r(spread),
        "cuts": cuts,
    }
    return score, joints_inside, details, warnings


def _spans(spans: list[dict], most: int = 3) -> str:
    times = list(dict.fromkeys(f"{s['start']:.2f}-{s['end']:.2f} s" for s in spans))  # parts share frames
    text = ", ".join(times[:most])
    return text + (f" and {len(times) - most} more" if len(times) > most else "")


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


def track_warnings(track: dict | None) -> list[str]:
    """Warnings for what cleaning did (processing.cleaning) - or, for versions stored before it,
    the old track report's jumps."""
    track = track or {}
    out = []
    for reason in ("other person", "implausible body"):
        spans = [r for r in track.get("rejected", []) if r.get("reason") == reason]
        if spans:
            frames = sum(r["frames"] for r in spans)
            what = "of another person" if reason == "other person" else "with an implausible body"
            out.append(f"{_frames(frames)} {what} rejected ({_spans(spans)})")
    swaps = track.get("swaps", [])
    if swaps:
        frames = len({f for s in swaps for f in range(s["start_frame"], s["end_frame"])})
        out.append(f"left/right swaps repaired in {_frames(frames)} ({_spans(swaps)})")
    for jump in track.get("jumps", []):  # versions stored before cleaning existed
        what = "back to the performer" if jump.get("to_performer") else "to another person"
        out.append(f"track jumped {what} at {jump['time']:.1f} s")
    if track.get("dropped_frames"):
        out.append(f"{track['dropped_frames']} frames of other people dropped")
    return out


SPARSE_BLOCK = 0.5  # a hand or face found in fewer of the performer's frames than this is said


def block_warnings(keypoints: np.ndarray, confidence: np.ndarray, skeleton: Skeleton) -> list[str]:
    """Whole-body layouts: say when the hands or the face were found in few of the frames that
    show the performer (the hand and face models miss small or blurred hands)."""
    body = list(skeleton.body)
    shown = np.isfinite(keypoints[:, body]).all(axis=2).any(axis=1)
    n = int(shown.sum())
    out = []
    for prefix, what in (("left_hand_", "left hand"), ("right_hand_", "right hand"), ("face", "face")):
        block = [j for j in skeleton.block(prefix) if j not in body]
        if not block or not n:
            continue
        found = int(((confidence[:, block] > 0).any(axis=1) & shown).sum())
        if found < SPARSE_BLOCK * n:
            out.append(f"{what} found in only {found} of {n} frames ({_pct(found / n)}): its points are "
                       "missing elsewhere")
    return out


def assess(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    timestamps: np.ndarray,
    duration: float,
    width: int,
    height: int,
    *,
    frame_diffs: np.ndarray | None = None,
    track: dict | None = None,
    skeleton: Skeleton = MEDIAPIPE_POSE_33,
    cuts: list[dict] | None = None,
) -> QualityReport:
    """Score a motion's body joints (hands and face blocks are not scored). ``cuts`` passes hard
    cuts found earlier (derived versions carry their parent's) instead of ``frame_diffs``."""
    occ, occ_raw, occ_d, occ_w = occlusion(keypoints, confidence, width, height, skeleton)
    jit, jit_raw, jit_d, jit_w = jitter(keypoints, confidence, timestamps, duration, skeleton)
    fr, fr_raw, fr_d, fr_w = framing(keypoints, width, height, timestamps, frame_diffs, track, skeleton, cuts)
    scores = {"occlusion": _r(occ), "jitter": _r(jit), "framing": _r(fr)}
    known = [s for s in scores.values() if s is not None]
    overall = math.exp(sum(math.log(max(s, 1e-6)) for s in known) / len(known)) if known else None
    block_w = block_warnings(keypoints, confidence, skeleton)
    return QualityReport(
        overall=_r(overall),
        scores=scores,
        raw={"occlusion": _r(occ_raw, 5), "jitter": _r(jit_raw, 5), "framing": _r(fr_raw, 5)},
        details={"occlusion": occ_d, "jitter": jit_d, "framing": fr_d, "track": track or {}},
        warnings=fr_w + occ_w + jit_w + block_w,
    )


def assess_motion(motion, *, track: dict | None = None, cuts: list[dict] | None = None) -> QualityReport:
    """Score a stored or derived Motion (cuts and track events come from where it was made)."""
    return assess(
        motion.keypoints, motion.confidence, motion.timestamps, motion.duration, motion.width,
        motion.height, track=track, skeleton=motion.skeleton, cuts=cuts or [],
    )
