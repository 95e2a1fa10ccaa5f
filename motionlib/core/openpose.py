"""Any stored skeleton as OpenPose points (body 18, hands 2 x 21, face 70), and back.

The mapping is by joint name (see ``docs/posemap.md``):

* body: the 17 OpenPose joints that MediaPipe also has take its points; the **neck** is the
  midpoint of the shoulders, with the lower of the two shoulder confidences;
* hands: MediaPipe's 21 hand points are in OpenPose's order already (wrist, thumb 1-4, index 5-8,
  middle 9-12, ring 13-16, pinky 17-20); a layout without hands (MediaPipe Pose) has none;
* face: 68 of the 468 face-mesh points stand in for the iBUG/dlib 68 that OpenPose's face model
  uses (``FACE_MESH_TO_68``); COCO-WholeBody (DWPose, RTMW) has those 68 itself, in that order; the
  two pupils are the centres of the eye contours;
* toes: MediaPipe's foot index, else COCO-WholeBody's big toe.

Coordinates stay in the motion's pixels; confidence rides along, so drawing can skip joints below a
threshold. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motionlib.core.skeleton import (
    FACE_70,
    HAND_21_NAMES,
    OPENPOSE_18,
    OPENPOSE_18_NAMES,
    OPENPOSE_130,
    Skeleton,
)

# The colour of body joint j (and of limb j) in the OpenPose drawing convention (docs/posemap.md).
LIMB_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 85), (255, 0, 170),
)

# Face-mesh index for each of the 68 iBUG points, in iBUG order ("right" = the performer's right).
FACE_MESH_TO_68: tuple[int, ...] = (
    # jaw, from the performer's right ear round the chin to the left ear (0-16)
    127, 234, 132, 58, 172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 361, 454, 356,
    # right brow outer -> inner (17-21), left brow inner -> outer (22-26)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge top -> tip (27-30), nostrils right -> left (31-35)
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # right eye: outer corner, top, top, inner corner, bottom, bottom (36-41); left eye (42-47)
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips from the right corner clockwise (48-59), inner lips (60-67)
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)
RIGHT_EYE_68 = tuple(range(36, 42))
LEFT_EYE_68 = tuple(range(42, 48))


@dataclass
class OpenPoseFrames:
    """OpenPose points of a motion. NaN where a point is unknown; confidence 0 there."""

    body: np.ndarray  # [T, 18, 2]
    body_conf: np.ndarray  # [T, 18]
    hands: np.ndarray | None = None  # [T, 2, 21, 2]  (left, right)
    hands_conf: np.ndarray | None = None  # [T, 2, 21]
    face: np.ndarray | None = None  # [T, 70, 2]
    face_conf: np.ndarray | None = None  # [T, 70]
    toes: np.ndarray | None = None  # [T, 2, 2] (left, right) big-toe tips, where the layout has them
    toes_conf: np.ndarray | None = None  # [T, 2]

    @property
    def frames(self) -> int:
        return int(self.body.shape[0])

    def frame(self, t: int) -> "OpenPoseFrames":
        """Frame ``t`` alone (still with a leading axis of 1)."""
        sl = slice(t, t + 1)
        pick = lambda a: None if a is None else a[sl]  # noqa: E731
        return OpenPoseFrames(self.body[sl], self.body_conf[sl], pick(self.hands),
                              pick(self.hands_conf), pick(self.face), pick(self.face_conf),
                              pick(self.toes), pick(self.toes_conf))


def _gather(kp: np.ndarray, conf: np.ndarray, skeleton: Skeleton, names) -> tuple[np.ndarray, np.ndarray]:
    T = kp.shape[0]
    out = np.full((T, len(names), 2), np.nan, np.float32)
    c = np.zeros((T, len(names)), np.float32)
    for k, n in enumerate(names):
        j = skeleton.find(n)
        if j is not None:
            out[:, k] = kp[:, j]
            c[:, k] = conf[:, j]
    return out, c


def to_openpose(motion) -> OpenPoseFrames:
    """The OpenPose points of ``motion`` (any known layout)."""
    sk, kp, conf = motion.skeleton, motion.keypoints, motion.confidence
    body, body_conf = _gather(kp, conf, sk, OPENPOSE_18_NAMES)
    if sk.find("neck") is None:
        ls, rs = sk.find("left_shoulder"), sk.find("right_shoulder")
        if ls is not None and rs is not None:
            body[:, 1] = (kp[:, ls] + kp[:, rs]) / 2
            body_conf[:, 1] = np.minimum(conf[:, ls], conf[:, rs])
    hands = hands_conf = None
    if sk.find("left_hand_wrist") is not None:
        parts = [_gather(kp, conf, sk, [f"{side}_hand_{n}" for n in HAND_21_NAMES]) for side in ("left", "right")]
        hands = np.stack([p[0] for p in parts], axis=1)
        hands_conf = np.stack([p[1] for p in parts], axis=1)
    face = face_conf = None
    if sk.find("face70_00") is not None:
        face, face_conf = _gather(kp, conf, sk, [f"face70_{i:02d}" for i in range(FACE_70)])
    elif sk.find("face_000") is not None or sk.find("face68_00") is not None:
        if sk.find("face68_00") is not None:  # the iBUG 68 themselves (COCO-WholeBody)
            idx = [sk.index(f"face68_{i:02d}") for i in range(68)]
        else:
            base = sk.index("face_000")
            idx = [base + i for i in FACE_MESH_TO_68]
        T = kp.shape[0]
        face = np.full((T, FACE_70, 2), np.nan, np.float32)
        face_conf = np.zeros((T, FACE_70), np.float32)
        face[:, :68] = kp[:, idx]
        face_conf[:, :68] = conf[:, idx]
        with np.errstate(invalid="ignore"):
            face[:, 68] = face[:, list(RIGHT_EYE_68)].mean(axis=1)
            face[:, 69] = face[:, list(LEFT_EYE_68)].mean(axis=1)
        face_conf[:, 68] = face_conf[:, list(RIGHT_EYE_68)].min(axis=1)
        face_conf[:, 69] = face_conf[:, list(LEFT_EYE_68)].min(axis=1)
    unknown = ~np.isfinite(body).all(axis=2)
    body_conf[unknown] = 0.0
    toes = toes_conf = None
    for stem in ("foot_index", "big_toe"):
        if sk.find(f"left_{stem}") is not None and sk.find(f"right_{stem}") is not None:
            t, tc = _gather(kp, conf, sk, [f"left_{stem}", f"right_{stem}"])
            tc[~np.isfinite(t).all(axis=2)] = 0.0
            toes, toes_conf = t, tc
            break
    return OpenPoseFrames(body, body_conf, hands, hands_conf, face, face_conf, toes, toes_conf)


def openpose_skeleton(frames: OpenPoseFrames) -> Skeleton:
    return OPENPOSE_130 if (frames.hands is not None or frames.face is not None) else OPENPOSE_18


def from_openpose(frames: OpenPoseFrames) -> tuple[Skeleton, np.ndarray, np.ndarray]:
    """(skeleton, keypoints [T,J,2], confidence [T,J]) in the ``openpose_18``/``openpose_130`` layout."""
    sk = openpose_skeleton(frames)
    T = frames.frames
    kp = np.full((T, sk.num_joints, 2), np.nan, np.float32)
    conf = np.zeros((T, sk.num_joints), np.float32)
    kp[:, :18], conf[:, :18] = frames.body, frames.body_conf
    if sk is OPENPOSE_130:
        if frames.hands is not None:
            kp[:, 18:60] = frames.hands.reshape(T, 42, 2)
            conf[:, 18:60] = frames.hands_conf.reshape(T, 42)
        if frames.face is not None:
            kp[:, 60:130] = frames.face
            conf[:, 60:130] = frames.face_conf
    conf[~np.isfinite(kp).all(axis=2)] = 0.0
    return sk, kp, conf
