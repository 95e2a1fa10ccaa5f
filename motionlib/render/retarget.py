"""Retargeting: a stored motion's keypoints fitted to an identity's body, in the identity image.

``global`` (as MimicMotion does): one scale s and offset t for the whole clip, fitted by least
squares on the body joints seen both in the identity and in the motion's median pose:
``out = s * keypoints + t``. Proportions stay the performer's.

``bones`` (default; as UniAnimate and Wan-Animate do): the skeleton is rebuilt along a tree rooted
at the hip centre. Each bone keeps the performer's direction in every frame and gets the identity's
length: it is scaled by ``identity length / performer length``, where the performer's length is the
90th percentile over the clip (2-D foreshortening only ever shortens a bone, so a high percentile
is its true length; per-frame foreshortening is kept). Bones the identity image does not show
(legs of a half-body portrait) take the torso's ratio. Hands (21-point blocks) are re-rooted at the
retargeted wrists, scaled like the forearm; face points at the nose, scaled like the head. The
root follows the performer's travel, scaled by the torso ratio, around the identity's hip centre.

Both return a Motion of the same skeleton in identity-image pixels, and a report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from motionlib.core.errors import InputError
from motionlib.core.motion import Motion
from motionlib.core.skeleton import MEDIAPIPE_POSE_33

METHODS = ("bones", "global")
RETARGET_VERSION = 1
VISIBLE = 0.5

# (parent, child) by joint name, parents before children. "hip_centre" is the hips' midpoint;
# "neck" is the shoulders' midpoint where a layout has no neck joint.
TREE: tuple[tuple[str, str], ...] = (
    ("hip_centre", "left_hip"), ("hip_centre", "right_hip"), ("hip_centre", "neck"),
    ("neck", "left_shoulder"), ("neck", "right_shoulder"), ("neck", "nose"),
    ("nose", "left_eye_inner"), ("nose", "left_eye"), ("nose", "left_eye_outer"),
    ("nose", "right_eye_inner"), ("nose", "right_eye"), ("nose", "right_eye_outer"),
    ("nose", "mouth_left"), ("nose", "mouth_right"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("left_wrist", "left_pinky"),
    ("left_wrist", "left_index"), ("left_wrist", "left_thumb"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("right_wrist", "right_pinky"),
    ("right_wrist", "right_index"), ("right_wrist", "right_thumb"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_heel"),
    ("left_ankle", "left_foot_index"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_heel"),
    ("right_ankle", "right_foot_index"),
)
# The bones whose identity/performer ratio scales each non-tree block.
FOREARM = {"left": ("left_elbow", "left_wrist"), "right": ("right_elbow", "right_wrist")}
HEAD = ("neck", "nose")
TORSO = ("hip_centre", "neck")


@dataclass
class IdentityBody:
    """An identity's pose: MediaPipe-33 points in image pixels, confidence, image size."""

    keypoints: np.ndarray  # [33, 2]
    confidence: np.ndarray  # [33]
    width: int
    height: int

    @classmethod
    def from_record(cls, record) -> "IdentityBody":
        kp = np.array([[np.nan, np.nan] if p is None else p for p in record.pose["keypoints"]], np.float32)
        return cls(kp, np.asarray(record.pose["confidence"], np.float32), record.width, record.height)

    def seen(self) -> np.ndarray:
        x, y = self.keypoints[:, 0], self.keypoints[:, 1]
        with np.errstate(invalid="ignore"):
            inside = (x >= 0) & (x <= self.width) & (y >= 0) & (y <= self.height)
        return (self.confidence >= VISIBLE) & inside & np.isfinite(self.keypoints).all(axis=1)


@dataclass
class Retargeted:
    motion: Motion  # in identity-image pixels
    method: str
    report: dict = field(default_factory=dict)


def _points(kp: np.ndarray, conf: np.ndarray, skeleton) -> tuple[dict, dict]:
    """name -> [..., 2] positions and [...] confidences, with the virtual hip centre and neck."""
    pos, c = {}, {}
    for i, n in enumerate(skeleton.joint_names):
        pos[n], c[n] = kp[..., i, :], conf[..., i]
    for virt, (a, b) in (("hip_centre", ("left_hip", "right_hip")), ("neck", ("left_shoulder", "right_shoulder"))):
        if virt not in pos and a in pos and b in pos:
            pos[virt] = (pos[a] + pos[b]) / 2
            c[virt] = np.minimum(c[a], c[b])
    return pos, c


def _p90_length(a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> float | None:
    d = np.linalg.norm(b - a, axis=-1)
    d = d[ok & np.isfinite(d)]
    return float(np.percentile(d, 90)) if d.size >= 3 else None


def retarget(motion, identity: IdentityBody, method: str = "bones") -> Retargeted:
    if method not in METHODS:
        raise InputError(f"{{retarget}} {method!r}: choose {' or '.join(METHODS)}", params=["retarget"])
    if method == "global":
        return _global(motion, identity)
    return _bones(motion, identity)


def _identity_points(identity: IdentityBody):
    seen = identity.seen()
    pos, conf = _points(identity.keypoints, np.where(seen, 1.0, 0.0).astype(np.float32), MEDIAPIPE_POSE_33)
    return pos, {n: bool(v >= VISIBLE) for n, v in conf.items()}


def _global(motion, identity: IdentityBody) -> Retargeted:
    ipos, iseen = _identity_points(identity)
    mpos, mconf = _points(motion.keypoints, motion.confidence, motion.skeleton)
    pairs = []
    for n in motion.skeleton.joint_names:
        if n not in ipos or not iseen.get(n) or n not in MEDIAPIPE_POSE_33.joint_names:
            continue
        ok = (mconf[n] >= VISIBLE) & np.isfinite(mpos[n]).all(axis=-1)
        if ok.sum() >= 3:
            pairs.append((np.median(mpos[n][ok], axis=0), ipos[n]))
    if len(pairs) < 3:
        raise InputError("too few body joints seen both in the identity and in the motion to fit them")
    m = np.array([p[0] for p in pairs], np.float64)
    i = np.array([p[1] for p in pairs], np.float64)
    mc, ic = m - m.mean(axis=0), i - i.mean(axis=0)
    s = float((mc * ic).sum() / max((mc * mc).sum(), 1e-9))
    t = i.mean(axis=0) - s * m.mean(axis=0)
    out = (motion.keypoints.astype(np.float64) * s + t).astype(np.float32)
    fitted = s * m + t
    residual = float(np.linalg.norm(fitted - i, axis=1).mean())
    new = _as_identity_motion(motion, out, identity)
    return Retargeted(new, "global", {"method": "global", "scale": round(s, 5), "offset": [round(float(v), 2) for v in t],
                                      "joints_fitted": len(pairs), "fit_residual_px": round(residual, 2)})


def _as_identity_motion(motion, keypoints: np.ndarray, identity: IdentityBody):
    conf = motion.confidence.copy()
    conf[~np.isfinite(keypoints).all(axis=2)] = 0.0
    return replace(motion, keypoints=keypoints, confidence=conf, width=int(identity.width),
                   height=int(identity.height), world=None, attrs={}).validate()


def _bones(motion, identity: IdentityBody) -> Retargeted:
    sk = motion.skeleton
    ipos, iseen = _identity_points(identity)
    mpos, mconf = _points(motion.keypoints.astype(np.float64), motion.confidence, sk)
    for needed in ("hip_centre", "neck"):
        if needed not in mpos:
            raise InputError(f"the {sk.name} layout has no hips and shoulders to retarget by bones")

    def visible(n):
        return (mconf[n] >= VISIBLE) & np.isfinite(mpos[n]).all(axis=-1)

    if not visible("hip_centre").any():
        raise InputError("the motion never shows the hips, so bones cannot be rooted; use {retarget=global}",
                         params=["retarget"])
    # torso ratio: the fallback for bones the identity does not show
    lt_m = _p90_length(mpos["hip_centre"], mpos["neck"], visible("hip_centre") & visible("neck"))
    if not (iseen.get("left_shoulder") and iseen.get("right_shoulder")):
        raise InputError("the identity's shoulders are not both visible")
    lt_i = float(np.linalg.norm(ipos["neck"] - ipos["hip_centre"]))
    if not lt_m or not math.isfinite(lt_i) or lt_i <= 0:
        raise InputError("cannot measure the torso in the motion or the identity")
    torso_ratio = lt_i / lt_m

    ratios, fallback, lengths_id = {}, [], {}
    for p, c in TREE:
        if c not in mpos or p not in mpos:
            continue
        lm = _p90_length(mpos[p], mpos[c], visible(p) & visible(c))
        li = None
        if p in ipos and c in ipos and iseen.get(p, True) and iseen.get(c):
            li = float(np.linalg.norm(ipos[c] - ipos[p]))
        if lm and li:
            ratios[(p, c)] = li / lm
            lengths_id[(p, c)] = li
        else:
            ratios[(p, c)] = torso_ratio
            if lm:
                fallback.append(f"{p}-{c}")

    # root: the performer's travel around their median position, scaled, around the identity's hips
    root = mpos["hip_centre"]
    known = np.isfinite(root).all(axis=1)
    if not known.any():
        raise InputError("the motion never shows the hips")
    ref = np.median(root[known], axis=0)
    anchor = ipos["hip_centre"].astype(np.float64)
    if not np.isfinite(anchor).all():
        raise InputError("the identity's hips cannot be placed")
    out: dict[str, np.ndarray] = {"hip_centre": anchor + torso_ratio * (root - ref)}
    for (p, c), r in ratios.items():
        if p in out:
            out[c] = out[p] + r * (mpos[c] - mpos[p])

    kp = np.full(motion.keypoints.shape, np.nan, np.float64)
    for j, n in enumerate(sk.joint_names):
        if n in out:
            kp[:, j] = out[n]
    # blocks outside the tree: hands at the wrists, face at the nose
    for side in ("left", "right"):
        block = sk.block(f"{side}_hand_")
        wrist = sk.find(f"{side}_hand_wrist")
        if block and wrist is not None and f"{side}_wrist" in out:
            r = ratios.get(FOREARM[side], torso_ratio)
            kp[:, list(block)] = out[f"{side}_wrist"][:, None] + r * (
                motion.keypoints[:, list(block)] - motion.keypoints[:, [wrist]])
    face = sk.block("face")
    if face and "nose" in out and sk.find("nose") is not None:
        r = ratios.get(HEAD, torso_ratio)
        nose = sk.index("nose")
        kp[:, list(face)] = out["nose"][:, None] + r * (motion.keypoints[:, list(face)] - motion.keypoints[:, [nose]])

    new = _as_identity_motion(motion, kp.astype(np.float32), identity)
    report = {
        "method": "bones",
        "torso_ratio": round(torso_ratio, 5),
        "bones_from_identity": len(lengths_id),
        "bones_by_torso_ratio": fallback,
        "anchor": [round(float(v), 2) for v in anchor],
        **bone_errors(new, identity, lengths_id),
    }
    return Retargeted(new, "bones", report)


def bone_errors(motion, identity: IdentityBody, lengths_id: dict | None = None) -> dict:
    """Relative error of the retargeted bones against the identity's, over bones the identity
    shows: of each bone's 90th-percentile length (what retargeting sets), and frame by frame (which
    also counts the performer's foreshortening, kept on purpose)."""
    if lengths_id is None:
        ipos, iseen = _identity_points(identity)
        lengths_id = {(p, c): float(np.linalg.norm(ipos[c] - ipos[p])) for p, c in TREE
                      if p in ipos and c in ipos and iseen.get(p, True) and iseen.get(c)}
    pos, conf = _points(motion.keypoints.astype(np.float64), motion.confidence, motion.skeleton)
    p90_err, frame_err = [], []
    for (p, c), li in lengths_id.items():
        if p not in pos or c not in pos or li <= 0:
            continue
        ok = (conf[p] >= VISIBLE) & (conf[c] >= VISIBLE)
        d = np.linalg.norm(pos[c] - pos[p], axis=-1)
        d = d[ok & np.isfinite(d)]
        if d.size < 3:
            continue
        p90_err.append(abs(np.percentile(d, 90) - li) / li)
        frame_err.append(float(np.mean(np.abs(d - li) / li)))
    return {
        "bone_length_error": round(float(np.mean(p90_err)), 5) if p90_err else None,
        "bone_length_error_per_frame": round(float(np.mean(frame_err)), 5) if frame_err else None,
        "bones_measured": len(p90_err),
    }
