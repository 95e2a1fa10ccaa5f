"""What a fit of a motion onto an identity looks like before any GPU time: the anchor frame's error
against her joints, a proportions table, risk flags with a risk score, and a contact sheet.

Risk flags (each with a weight; risk = 1 - product of (1 - weight) over the flags raised):

* ``view``: the performer faces the camera, turns their back or stands side-on at the anchor frame,
  and the identity another way (front/back from which side the left shoulder is on; side when the
  shoulders are under 35 % of the torso length apart). 0.5 for front vs back, 0.3 with a side view.
* ``roll``: the performer's torso leans more than 20 degrees further from upright than hers, over
  the median frame (a camera held at an angle, or lying down). 0.3.
* ``posture``: sitting (thighs within 35 degrees of horizontal in most frames) in one and standing
  in the other. 0.4.
* ``half_body``: her picture shows no legs while the motion moves them (ankles visible in most
  frames): legs are drawn where the picture has none. 0.2.
* ``hands`` / ``face``: her picture hides both wrists / her face while the motion shows them. 0.2
  each.
* ``leaves_picture``: the fitted head, or hips (shoulders for a half-body picture, whose hips are
  below it anyway), are outside her picture in 5 % of frames or more. 0.3, or 0.5 from 25 %.
"""

from __future__ import annotations

import math

import numpy as np

from motionlib.core.skeleton import MEDIAPIPE_POSE_33

VISIBLE = 0.5
SIDE_ON = 0.35  # shoulder width / torso length under which a body is seen side-on
ROLL_DEGREES = 20.0
SITTING_DEGREES = 35.0
WEIGHTS = {"view": 0.5, "view_side": 0.3, "roll": 0.3, "posture": 0.4, "half_body": 0.2, "hands": 0.2,
           "face": 0.2, "leaves_picture": 0.3, "leaves_picture_often": 0.5}
REPORT_JOINTS = ("nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
                 "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                 "right_knee", "left_ankle", "right_ankle")


def _view(kp: np.ndarray, conf: np.ndarray, skeleton) -> str | None:
    """front / back / side of one frame's body ([J, 2]), or None when the torso is not seen."""
    ls, rs, lh, rh = (skeleton.find(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    if None in (ls, rs, lh, rh) or min(conf[ls], conf[rs], conf[lh], conf[rh]) < VISIBLE:
        return None
    torso = np.linalg.norm((kp[ls] + kp[rs]) / 2 - (kp[lh] + kp[rh]) / 2)
    width = kp[ls, 0] - kp[rs, 0]  # the performer's left on the picture's right when facing it
    if not np.isfinite(torso) or torso <= 0:
        return None
    if abs(width) < SIDE_ON * torso:
        return "side"
    return "front" if width > 0 else "back"


def _lean(kp: np.ndarray, skeleton) -> np.ndarray:
    """[T] degrees the hip->neck line leans from upright (NaN where unknown)."""
    ls, rs, lh, rh = (skeleton.find(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    up = (kp[..., ls, :] + kp[..., rs, :]) / 2 - (kp[..., lh, :] + kp[..., rh, :]) / 2
    return np.degrees(np.arctan2(np.abs(up[..., 0]), -up[..., 1]))


def _sitting(kp: np.ndarray, conf: np.ndarray, skeleton) -> np.ndarray:
    """[T] True where both thighs are within SITTING_DEGREES of horizontal, NaN-safe."""
    out = np.ones(kp.shape[0], bool)
    known = np.zeros(kp.shape[0], bool)
    for side in ("left", "right"):
        h, k = skeleton.find(f"{side}_hip"), skeleton.find(f"{side}_knee")
        if h is None or k is None:
            return np.zeros(kp.shape[0], bool)
        d = kp[:, k] - kp[:, h]
        ang = np.degrees(np.arctan2(np.abs(d[:, 1]), np.abs(d[:, 0])))
        seen = (conf[:, h] >= VISIBLE) & (conf[:, k] >= VISIBLE)
        with np.errstate(invalid="ignore"):
            out &= ang < SITTING_DEGREES
        known |= seen
    return out & known


def risk_flags(motion, fitted, identity, anchor: int, in_place: bool = False) -> list[dict]:
    """The flags of the module docstring: {"flag", "weight", "message"}. ``in_place``: the
    motion was made by ``motionlib in-place`` (so that is no advice for travelling too far)."""
    sk = motion.skeleton
    ik = identity.keypoints[None]
    seen = identity.seen()
    flags: list[dict] = []

    def flag(name: str, weight_key: str, message: str) -> None:
        flags.append({"flag": name, "weight": WEIGHTS[weight_key], "message": message})

    mine = _view(motion.keypoints[anchor], motion.confidence[anchor], sk)
    hers = _view(identity.keypoints, np.where(seen, 1.0, 0.0), MEDIAPIPE_POSE_33)
    if mine and hers and mine != hers:
        key = "view" if {mine, hers} == {"front", "back"} else "view_side"
        flag("view", key, f"the performer is seen from the {mine} at the anchor frame, the identity from "
                          f"the {hers}: the render has to turn her")
    lean_m = float(np.nanmedian(_lean(motion.keypoints, sk))) if motion.detected.any() else float("nan")
    lean_i = float(_lean(ik, MEDIAPIPE_POSE_33)[0]) if seen[[11, 12]].all() else float("nan")
    if math.isfinite(lean_m) and math.isfinite(lean_i) and lean_m - lean_i > ROLL_DEGREES:
        flag("roll", "roll", f"the performer's torso leans {lean_m:.0f} degrees from upright (hers "
                             f"{lean_i:.0f}): a tilted camera, or a body lying down")
    sit_m = float(_sitting(motion.keypoints, motion.confidence, sk).mean())
    hips_knees = [MEDIAPIPE_POSE_33.index(n) for n in ("left_hip", "right_hip", "left_knee", "right_knee")]
    if seen[hips_knees].all():
        sit_i = bool(_sitting(ik, np.where(seen, 1.0, 0.0)[None], MEDIAPIPE_POSE_33)[0])
        if (sit_m > 0.5) != sit_i:
            who = ("the performer sits", "she stands") if sit_m > 0.5 else ("the performer stands", "she sits")
            flag("posture", "posture", f"{who[0]} and {who[1]} in her picture")
    ankles = [i for i in (sk.find("left_ankle"), sk.find("right_ankle")) if i is not None]
    if ankles and (motion.confidence[:, ankles] >= VISIBLE).all(axis=1).mean() > 0.5 \
            and not seen[[27, 28]].any():
        flag("half_body", "half_body", "her picture shows no legs while the motion moves them: the legs "
                                       "are drawn below or over what the picture has")
    wrists = [i for i in (sk.find("left_wrist"), sk.find("right_wrist")) if i is not None]
    if wrists and (motion.confidence[:, wrists] >= VISIBLE).any(axis=1).mean() > 0.5 and not seen[[15, 16]].any():
        flag("hands", "hands", "her picture hides both hands while the motion shows them")
    nose = sk.find("nose")
    if nose is not None and (motion.confidence[:, nose] >= VISIBLE).mean() > 0.5 and not seen[0]:
        flag("face", "face", "her picture does not show her face while the motion does")
    body = "hips" if seen[[23, 24]].all() else "shoulders"
    out = leaving_share(fitted, body)
    if out >= 0.05:
        key = "leaves_picture_often" if out >= 0.25 else "leaves_picture"
        advice = ("choose a picture with more room around her" if in_place else
                  "`motionlib in-place` on the motion keeps the hips put, or choose a picture with more room")
        flag("leaves_picture", key, f"the fitted {body} or head leave her picture in {round(100 * out)}% of frames: "
                                    f"the performer travels further than the picture allows ({advice})")
    return flags


def leaving_share(fitted, body: str = "hips") -> float:
    """Share of frames with the fitted nose, or the centre of the hips (``body`` = "hips") or of
    the shoulders (a half-body picture: its hips are below it anyway), outside the picture."""
    sk = fitted.skeleton
    pts = []
    a, b = (("left_hip", "right_hip") if body == "hips" else ("left_shoulder", "right_shoulder"))
    lh, rh, nose = sk.find(a), sk.find(b), sk.find("nose")
    if lh is not None and rh is not None:
        pts.append((fitted.keypoints[:, lh] + fitted.keypoints[:, rh]) / 2)
    if nose is not None:
        pts.append(fitted.keypoints[:, nose])
    if not pts:
        return 0.0
    known = np.zeros(fitted.frames, bool)
    outside = np.zeros(fitted.frames, bool)
    for p in pts:
        ok = np.isfinite(p).all(axis=1)
        known |= ok
        with np.errstate(invalid="ignore"):
            outside |= ok & ((p[:, 0] < 0) | (p[:, 0] > fitted.width) | (p[:, 1] < 0) | (p[:, 1] > fitted.height))
    return float(outside[known].mean()) if known.any() else 0.0


def risk_score(flags: list[dict]) -> float:
    keep = 1.0
    for f in flags:
        keep *= 1.0 - f["weight"]
    return round(1.0 - keep, 3)


def anchor_errors(fitted, identity, anchor: int, mirrored: bool = False) -> dict:
    """The anchor frame's distance to each joint her picture shows: pixels, and as a share of her
    shown height (nose to the lowest joint she shows). ``mirrored``: the fit took her left and
    right the other way round (retarget's ``identity_mirrored``), and so does the comparison."""
    seen = identity.seen()
    ik = identity.keypoints
    if mirrored:
        flip = list(range(len(ik)))
        for a, b in MEDIAPIPE_POSE_33.mirror_pairs:
            flip[a], flip[b] = b, a
        ik, seen = ik[flip], seen[flip]
    core = [MEDIAPIPE_POSE_33.index(n) for n in REPORT_JOINTS]
    shown = [j for j in core if seen[j]]
    height = float(np.ptp(ik[shown, 1])) if len(shown) >= 2 else float("nan")
    out = {}
    for name in REPORT_JOINTS:
        j, f = MEDIAPIPE_POSE_33.index(name), fitted.skeleton.find(name)
        if f is None or not seen[j] or not np.isfinite(fitted.keypoints[anchor, f]).all():
            continue
        d = float(np.linalg.norm(fitted.keypoints[anchor, f] - ik[j]))
        out[name] = {"px": round(d, 2), "of_height": round(d / height, 4) if height > 0 else None}
    return {"joints": out, "height_px": round(height, 1) if math.isfinite(height) else None}


def contact_sheet(image: np.ndarray, fitted, frames: list[int], tile: int = 256) -> np.ndarray:
    """The fitted skeleton over her picture at ``frames``, side by side ([tile, tile * n, 3])."""
    import cv2

    from motionlib.core.openpose import to_openpose
    from motionlib.render import posemap

    h, w = image.shape[:2]
    scale = tile / max(w, h)
    tw, th = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
    small = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    op = to_openpose(fitted)
    place = posemap.Placement(scale, (0.0, 0.0))
    tiles = []
    for t in frames:
        canvas = (small.astype(np.uint16) * 3 // 5).astype(np.uint8)
        canvas = posemap.draw(op.frame(t), tw, th, placement=place, canvas=canvas)
        cv2.putText(canvas, f"frame {t}", (4, th - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(canvas)
    return np.concatenate(tiles, axis=1)


def key_frames(fitted, anchor: int, count: int = 6) -> list[int]:
    """The anchor frame and ``count - 1`` frames spread over the rest of the motion."""
    spread = np.linspace(0, fitted.frames - 1, count).round().astype(int).tolist()
    return sorted(set([anchor] + [f for f in spread if f != anchor][: count - 1]))
