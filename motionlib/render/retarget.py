"""Retargeting: a stored motion's keypoints fitted to an identity's body, in the identity image.

``global`` (as MimicMotion does): one scale s and offset t for the whole clip, fitted by least
squares on the body joints seen both in the identity and in the motion's median pose:
``out = s * keypoints + t``. Proportions stay the performer's.

``bones`` (default; as UniAnimate and Wan-Animate do): the skeleton is rebuilt along a tree rooted
at the hip centre and anchored on the identity's body at one *anchor frame* of the motion (the
first showing shoulders and hips, or ``anchor``). Each bone keeps the performer's direction in
every frame and is scaled by ``identity length / performer length at the anchor frame``, so that
frame has her proportions (the performer's 90th-percentile length instead where that ratio is
over ``ANCHOR_RANGE`` off the body's scale: a bone foreshortened in one picture, not the other).
Torso and head bones are turned by a constant angle so that at the anchor frame they lie along
hers. Each bone's per-frame length is low-passed (``STEADY_HZ``): the performer's foreshortening
stays, the estimator's breathing goes. Bones the identity does not show (legs of a half-body portrait) take the body's scale, the
median ratio of the ``SCALE_BONES`` she shows. Hands (21-point blocks) are re-rooted at the
retargeted wrists, scaled like the forearm; face points at the nose, scaled like the head. The
root follows the performer's travel from the anchor frame, scaled by the body's scale; the whole
skeleton is placed so that the anchor frame's hip centre is hers where her picture shows her
hips, else its neck (shoulders' midpoint) is hers.

Both return a Motion of the same skeleton in identity-image pixels, and a report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import numpy as np

from motionlib.core.errors import InputError
from motionlib.core.motion import Motion
from motionlib.core.skeleton import MEDIAPIPE_POSE_33

METHODS = ("bones", "global")
RETARGET_VERSION = 2
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
    ("left_ankle", "left_foot_index"), ("left_ankle", "left_big_toe"), ("left_ankle", "left_small_toe"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_heel"),
    ("right_ankle", "right_foot_index"), ("right_ankle", "right_big_toe"), ("right_ankle", "right_small_toe"),
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


def _r(x: float | None, n: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), n)


def _p90_length(a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> float | None:
    d = np.linalg.norm(b - a, axis=-1)
    d = d[ok & np.isfinite(d)]
    return float(np.percentile(d, 90)) if d.size >= 3 else None


def retarget(motion, identity: IdentityBody, method: str = "bones", anchor: int | None = None) -> Retargeted:
    """``anchor``: the motion frame fitted onto the identity (``bones``; default: the first that
    shows the performer's shoulders and hips)."""
    if method not in METHODS:
        raise InputError(f"{{retarget}} {method!r}: choose {' or '.join(METHODS)}", params=["retarget"])
    if method == "global":
        return _global(motion, identity)
    return _bones(motion, identity, anchor)


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


ANCHOR_BONES = {  # torso and head: at the anchor frame they lie along the identity's own
    ("hip_centre", "left_hip"), ("hip_centre", "right_hip"), ("hip_centre", "neck"),
    ("neck", "left_shoulder"), ("neck", "right_shoulder"), ("neck", "nose"),
    ("nose", "left_eye_inner"), ("nose", "left_eye"), ("nose", "left_eye_outer"),
    ("nose", "right_eye_inner"), ("nose", "right_eye"), ("nose", "right_eye_outer"),
    ("nose", "mouth_left"), ("nose", "mouth_right"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
}
SCALE_BONES = {  # the bones whose ratios give the body's scale, for bones the identity hides
    ("hip_centre", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
}
ANCHOR_RANGE = (0.5, 2.0)  # an anchor-frame ratio this far from the body's scale is not trusted


def _rotate(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


STEADY_HZ = 3.0  # a bone's length changes slower than this (turning, bending); faster is noise


def _steady_lengths(vec: np.ndarray, ok: np.ndarray, fps: float, k: int) -> np.ndarray:
    """[T] factors that replace a bone's per-frame length by its low-passed length (zero phase,
    ``STEADY_HZ``, over each run of frames that show it): the performer's foreshortening stays, the
    estimator's frame-to-frame breathing goes. The anchor frame keeps its length exactly."""
    from motionlib.processing.signal import column_runs, lowpass_runs

    length = np.linalg.norm(vec, axis=-1)
    out = np.ones(len(length))
    cutoff = min(STEADY_HZ, 0.4 * fps)
    col, a, b = column_runs((ok & np.isfinite(length) & (length > 0))[:, None], 8)
    if not a.size:
        return out
    smooth = np.full((len(length), 1), np.nan)
    lowpass_runs(length[:, None], col, a, b, fps, cutoff, out=smooth)  # every run at once
    sel = ~np.isnan(smooth[:, 0])
    smooth = np.maximum(smooth[:, 0], 1e-6)
    out[sel] = smooth[sel] / length[sel]
    pin = np.flatnonzero((a <= k) & (k < b))
    if pin.size:  # pinned: the anchor frame sits on her
        s, e = int(a[pin[0]]), int(b[pin[0]])
        out[s:e] = out[s:e] * (length[k] / smooth[k])
    return out


def _opposite_sides(mpos: dict, ipos: dict, k: int) -> bool:
    """True when the performer's left shoulder is on one side of the right one at frame ``k`` and
    hers on the other, both clearly (shoulders at least a third of the torso apart)."""
    def side(pos, t=None):
        ls, rs = (pos["left_shoulder"], pos["right_shoulder"]) if t is None else (pos["left_shoulder"][t], pos["right_shoulder"][t])
        hip, neck = (pos["hip_centre"], pos["neck"]) if t is None else (pos["hip_centre"][t], pos["neck"][t])
        torso = float(np.linalg.norm(neck - hip))
        width = float(ls[0] - rs[0])
        return 0 if not (math.isfinite(width) and math.isfinite(torso)) or abs(width) < torso / 3 else (1 if width > 0 else -1)

    a, b = side(mpos, k), side(ipos)
    return a != 0 and b != 0 and a != b


def _mirrored(values: dict) -> dict:
    """A name -> value map with left and right exchanged."""
    out = {}
    for n, v in values.items():
        other = ("right_" + n[5:]) if n.startswith("left_") else ("left_" + n[6:]) if n.startswith("right_") else n
        out[other if other in values else n] = v
    return out


def anchor_frame(motion, frame: int | None = None, points: tuple[dict, dict] | None = None) -> int:
    """The frame that is fitted onto the identity: ``frame`` (checked), else the first frame that
    shows the performer's shoulders and hips. ``points``: the motion's ``_points`` in float64,
    when the caller has them."""
    pos, conf = points or _points(motion.keypoints.astype(np.float64), motion.confidence, motion.skeleton)
    both = np.ones(motion.frames, bool)
    for n in ("hip_centre", "neck"):
        both &= (conf[n] >= VISIBLE) & np.isfinite(pos[n]).all(axis=-1)
    if frame is not None:
        if not 0 <= frame < motion.frames:
            raise InputError(f"{{anchor_frame}} {frame} is outside the motion's frames 0-{motion.frames - 1}",
                             params=["anchor_frame"])
        if not both[frame]:
            raise InputError(f"{{anchor_frame}} {frame} does not show the performer's shoulders and hips",
                             params=["anchor_frame"])
        return frame
    if not both.any():
        raise InputError("the motion never shows the performer's shoulders and hips together, so it cannot be fitted")
    return int(np.flatnonzero(both)[0])


def _bones(motion, identity: IdentityBody, frame: int | None = None) -> Retargeted:
    """Bones retargeting anchored on the identity (module docstring)."""
    sk = motion.skeleton
    ipos, iseen = _identity_points(identity)
    mpos, mconf = _points(motion.keypoints.astype(np.float64), motion.confidence, sk)
    for needed in ("hip_centre", "neck"):
        if needed not in mpos:
            raise InputError(f"the {sk.name} layout has no hips and shoulders to retarget by bones")
    if not (iseen.get("left_shoulder") and iseen.get("right_shoulder")):
        raise InputError("the identity's shoulders are not both visible")

    def visible(n):
        return (mconf[n] >= VISIBLE) & np.isfinite(mpos[n]).all(axis=-1)

    k = anchor_frame(motion, frame, (mpos, mconf))
    # her left and right the other way round from the performer's at the anchor frame (her picture
    # seen from behind, or her pose read mirrored): fit her mirrored labels, never turn the torso
    # half round; the fit's view flag says so
    mirrored = _opposite_sides(mpos, ipos, k)
    if mirrored:
        ipos, iseen = _mirrored(ipos), _mirrored(iseen)
    usual_ratio, anchor_ratio, turns, lengths_id = {}, {}, {}, {}
    for p, c in TREE:
        if c not in mpos or p not in mpos:
            continue
        ok = visible(p) & visible(c)
        usual = _p90_length(mpos[p], mpos[c], ok)
        li = None
        if p in ipos and c in ipos and iseen.get(p, True) and iseen.get(c):
            li = float(np.linalg.norm(ipos[c] - ipos[p]))
        if not usual or not li:
            continue
        usual_ratio[(p, c)] = li / usual
        lengths_id[(p, c)] = li
        at_k = float(np.linalg.norm(mpos[c][k] - mpos[p][k])) if ok[k] else 0.0
        if at_k > 0:
            anchor_ratio[(p, c)] = li / at_k
            if (p, c) in ANCHOR_BONES:
                want = ipos[c] - ipos[p]
                have = mpos[c][k] - mpos[p][k]
                turns[(p, c)] = math.atan2(want[1], want[0]) - math.atan2(have[1], have[0])
    scale_ratios = [r for b, r in usual_ratio.items() if b in SCALE_BONES]
    if not scale_ratios:
        raise InputError("cannot measure the body's size in both the motion and the identity")
    scale = float(np.median(scale_ratios))
    # each bone the identity shows gets her length at the anchor frame (so that frame sits on her),
    # unless that ratio is far from the body's scale (the bone is foreshortened in one picture and
    # not in the other): then her length against the performer's usual one
    ratios, source = {}, {}
    for b, r in usual_ratio.items():
        at = anchor_ratio.get(b)
        trusted = at is not None and ANCHOR_RANGE[0] * scale <= at <= ANCHOR_RANGE[1] * scale
        ratios[b] = at if trusted else r
        source[b] = "hers at the anchor" if trusted else "hers, vs usual"
    from_identity = set(ratios)
    fallback = []
    for p, c in TREE:
        if c in mpos and p in mpos and (p, c) not in ratios:
            ratios[(p, c)] = scale
            source[(p, c)] = "body scale"
            if _p90_length(mpos[p], mpos[c], visible(p) & visible(c)):
                fallback.append(f"{p}-{c}")
    table = []  # the proportions of the main bones: hers, the performer's usual, the ratio used
    for p, c in TREE:
        if (p, c) in SCALE_BONES and (p, c) in ratios:
            usual = _p90_length(mpos[p], mpos[c], visible(p) & visible(c))
            table.append({"bone": f"{p}-{c}", "identity_px": _r(lengths_id.get((p, c))),
                          "performer_px": _r(usual), "ratio": _r(ratios[(p, c)], 4), "from": source[(p, c)]})

    # the tree from the hip centre; the performer's travel relative to the anchor frame, scaled
    root = mpos["hip_centre"]
    out: dict[str, np.ndarray] = {"hip_centre": scale * (root - root[k])}
    fps = motion.fps or 30.0
    for p, c in TREE:  # parents before children
        if (p, c) in ratios and p in out:
            steady = _steady_lengths(mpos[c] - mpos[p], visible(p) & visible(c), fps, k)
            out[c] = out[p] + ratios[(p, c)] * steady[:, None] * _rotate(mpos[c] - mpos[p], turns.get((p, c), 0.0))
    # anchor: the identity's hips where the picture shows them, else her neck (never guessed hips)
    anchor_name = "hip_centre" if (iseen.get("left_hip") and iseen.get("right_hip")) else "neck"
    anchor = ipos[anchor_name].astype(np.float64)
    shift = anchor - out[anchor_name][k]
    if not np.isfinite(shift).all():
        raise InputError("the identity's body cannot be placed")
    for n in out:
        out[n] = out[n] + shift

    kp = np.full(motion.keypoints.shape, np.nan, np.float32)  # each float64 point cast once, as it is stored
    for j, n in enumerate(sk.joint_names):
        if n in out:
            kp[:, j] = out[n]
    # blocks outside the tree: hands at the wrists, face at the nose
    for side in ("left", "right"):
        block = sk.block(f"{side}_hand_")
        wrist = sk.find(f"{side}_hand_wrist")
        if block and wrist is not None and f"{side}_wrist" in out:
            r = ratios.get(FOREARM[side], scale)
            kp[:, list(block)] = out[f"{side}_wrist"][:, None] + r * (
                motion.keypoints[:, list(block)] - motion.keypoints[:, [wrist]])
    face = sk.block("face")
    if face and "nose" in out and sk.find("nose") is not None:
        r = ratios.get(HEAD, scale)
        nose = sk.index("nose")
        kp[:, list(face)] = out["nose"][:, None] + r * (motion.keypoints[:, list(face)] - motion.keypoints[:, [nose]])

    del out, mpos, mconf  # a long take's float64 copies go before the result is measured
    new = _as_identity_motion(motion, kp, identity)
    report = {
        "method": "bones",
        "anchor_frame": k,
        "anchored_at": anchor_name,
        "identity_mirrored": mirrored,
        "scale": round(scale, 5),
        "bones_from_identity": len(from_identity),
        "bones_by_scale": fallback,
        "turned_to_identity": sorted(f"{p}-{c}" for p, c in turns),
        "anchor": [round(float(v), 2) for v in anchor],
        "bones": table,
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
    # float64 positions of the joints measured only (not a float64 copy of the whole take)
    needed = {n for bone in lengths_id for n in bone}
    columns = [j for j, n in enumerate(motion.skeleton.joint_names)
               if n in needed or n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")]
    names = SimpleNamespace(joint_names=[motion.skeleton.joint_names[j] for j in columns])
    pos, conf = _points(motion.keypoints[:, columns].astype(np.float64), motion.confidence[:, columns], names)
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
