"""Face crops for backends that take a face video (Wan-Animate): square crops around the face
points, from the kept source clip frame by frame, or from the identity picture when the motion's
frames no longer sit on a source clip."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from motionlib.render.retarget import IdentityBody

FACE_WORDS = ("nose", "eye", "ear", "mouth")
SCALE = 2.2  # crop side / extent of the face points (eyes to mouth and ears)
NECK_SCALE = 1.5  # crop side / nose-to-shoulder-centre distance: a floor when the face is seen side-on
MIN_SIDE = 24.0
DECODE_SIDE = 1280  # source frames are decoded at most this large before cropping


def face_joints(skeleton) -> list[int]:
    return [i for i, n in enumerate(skeleton.joint_names)
            if any(w in n for w in FACE_WORDS) and not n.startswith(("hand", "left_hand", "right_hand"))]


def face_boxes(keypoints: np.ndarray, confidence: np.ndarray, skeleton, threshold: float = 0.3) -> np.ndarray | None:
    """[T, 3] (centre x, centre y, side) per frame, gaps filled from the nearest known frame and
    smoothed over 5 frames; None when no frame shows a face."""
    idx = face_joints(skeleton)
    if not idx:
        return None
    kp = keypoints[:, idx, :2].astype(np.float64)
    ok = (confidence[:, idx] >= threshold) & np.isfinite(kp).all(axis=2)
    neck = _neck_lengths(keypoints, confidence, skeleton, threshold)
    boxes = np.full((len(kp), 3), np.nan)
    for t in range(len(kp)):
        pts = kp[t][ok[t]]
        if len(pts) >= 2:
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            side = max(MIN_SIDE, SCALE * float((hi - lo).max()), NECK_SCALE * neck[t] if np.isfinite(neck[t]) else 0.0)
            boxes[t] = [*(lo + hi) / 2, side]
    known = np.flatnonzero(np.isfinite(boxes[:, 0]))
    if len(known) == 0:
        return None
    t = np.arange(len(boxes))
    nearest = known[np.clip(np.searchsorted(known, t), 0, len(known) - 1)]
    before = known[np.clip(np.searchsorted(known, t) - 1, 0, len(known) - 1)]
    pick = np.where(np.abs(before - t) < np.abs(nearest - t), before, nearest)
    boxes = boxes[pick]
    out = boxes.copy()
    for i in range(len(boxes)):  # a running median keeps the crop from shaking
        out[i] = np.median(boxes[max(0, i - 2): i + 3], axis=0)
    return out


def _neck_lengths(keypoints, confidence, skeleton, threshold) -> np.ndarray:
    """Per frame, the distance from the nose to the middle of the shoulders (NaN if unseen)."""
    out = np.full(len(keypoints), np.nan)
    nose, left, right = (skeleton.find(n) for n in ("nose", "left_shoulder", "right_shoulder"))
    if None in (nose, left, right):
        return out
    seen = (confidence[:, [nose, left, right]] >= threshold).all(axis=1)
    mid = (keypoints[:, left, :2] + keypoints[:, right, :2]) / 2
    d = np.linalg.norm(keypoints[:, nose, :2] - mid, axis=1)
    out[seen] = d[seen]
    return out


def crop(image: np.ndarray, box, size: int) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``image`` around ``box`` (cx, cy, side), black outside it."""
    import cv2

    cx, cy, side = (float(v) for v in box)
    s = size / side
    # affine map from image to crop: scale about the box centre
    m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def identity_face(image: np.ndarray, body: "IdentityBody", size: int) -> np.ndarray | None:
    """The identity picture's face, from its pose (None when it shows no face points)."""
    from motionlib.core.skeleton import MEDIAPIPE_POSE_33

    boxes = face_boxes(body.keypoints[None], body.confidence[None], MEDIAPIPE_POSE_33)
    return None if boxes is None else crop(image, boxes[0], size)


def source_faces(motion, source, offset: float, size: int) -> list[np.ndarray] | None:
    """One face crop per motion frame from the kept source clip (``motion`` in source pixels,
    aligned with it); None when no frame shows a face."""
    from motionlib.media import video

    boxes = face_boxes(motion.keypoints, motion.confidence, motion.skeleton)
    if boxes is None:
        return None
    info = video.probe(source)
    if (info.width, info.height) != (motion.width, motion.height):
        return None
    sw, sh = info.scaled_size(DECODE_SIDE)
    boxes = boxes * (sw / motion.width)
    return [crop(frame, boxes[t], size)
            for t, frame in enumerate(video.aligned_frames(info, motion.timestamps, motion.duration, offset,
                                                          DECODE_SIDE, (sw, sh)))]
