"""Skeleton layouts: joint names, bones, left/right symmetry and the joint groups quality uses.

Layouts are named and stored with every motion, so a stored asset always says which joint is which.

* ``mediapipe_pose_33`` - MediaPipe Pose / BlazePose GHUM, 33 landmarks, the estimator's native order.
* ``mediapipe_holistic_543`` - the 33 pose landmarks, then 21 left-hand, 21 right-hand and 468 face
  landmarks (MediaPipe Holistic without iris refinement). "Left" is the performer's left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

POSE_33_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

POSE_33_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)

HAND_21_NAMES: tuple[str, ...] = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)

HAND_21_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)

FACE_468 = 468

# Joint groups of the 33-point body, used by quality scoring and its warnings.
BODY_GROUPS: dict[str, tuple[int, ...]] = {
    "face": tuple(range(0, 11)),
    "shoulders": (11, 12),
    "elbows": (13, 14),
    "wrists": (15, 16),
    "hands": (17, 18, 19, 20, 21, 22),
    "hips": (23, 24),
    "knees": (25, 26),
    "ankles": (27, 28),
    "feet": (29, 30, 31, 32),
}
# The joints that define "the whole body is in frame".
CORE_BODY: tuple[int, ...] = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def _mirror_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, n in enumerate(names):
        if n.startswith("left_"):
            j = index.get("right_" + n[len("left_"):])
            if j is not None:
                pairs.append((i, j))
    return tuple(pairs)


@dataclass(frozen=True)
class Skeleton:
    """A named joint layout. Joint indices refer to the motion's J axis."""

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    mirror_pairs: tuple[tuple[int, int], ...]
    # Index of each of the 33 body joints in this layout (the body block), for scoring.
    body: tuple[int, ...] = field(default=tuple(range(33)))

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint: str) -> int:
        return self.joint_names.index(joint)


def _holistic() -> Skeleton:
    names = (
        POSE_33_NAMES
        + tuple("left_hand_" + n for n in HAND_21_NAMES)
        + tuple("right_hand_" + n for n in HAND_21_NAMES)
        + tuple(f"face_{i:03d}" for i in range(FACE_468))
    )
    lh, rh = 33, 33 + 21
    edges = (
        POSE_33_EDGES
        + tuple((a + lh, b + lh) for a, b in HAND_21_EDGES)
        + tuple((a + rh, b + rh) for a, b in HAND_21_EDGES)
    )
    return Skeleton("mediapipe_holistic_543", names, edges, _mirror_pairs(names))


MEDIAPIPE_POSE_33 = Skeleton(
    "mediapipe_pose_33", POSE_33_NAMES, POSE_33_EDGES, _mirror_pairs(POSE_33_NAMES)
)
MEDIAPIPE_HOLISTIC_543 = _holistic()

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (MEDIAPIPE_POSE_33, MEDIAPIPE_HOLISTIC_543)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        from motionlib.core.errors import InputError

        raise InputError(
            f"unknown skeleton layout {name!r} (known: {', '.join(sorted(SKELETONS))})"
        ) from None
