"""Skeleton layouts: joint names, bones, left/right symmetry and the joint groups quality uses.

Layouts are named and stored with every motion, so a stored asset always says which joint is which.

* ``mediapipe_pose_33`` - MediaPipe Pose / BlazePose GHUM, 33 landmarks, the estimator's native order.
* ``mediapipe_holistic_543`` - the 33 pose landmarks, then 21 left-hand, 21 right-hand and 468 face
  landmarks (MediaPipe Holistic without iris refinement). "Left" is the performer's left.
* ``openpose_18`` - the OpenPose / ControlNet body (COCO order, with a neck).
* ``openpose_130`` - ``openpose_18``, then 21 left-hand, 21 right-hand and 70 face points (the
  OpenPose hand and face models), as imported from OpenPose JSON with hands and face.
* ``coco_wholebody_133`` - COCO-WholeBody, the native layout of DWPose and RTMW: the 17 COCO body
  joints, 6 foot points (big toe, small toe, heel, left foot first), the 68 iBUG/dlib face points
  (``face68_00``-``face68_67``, the order OpenPose's face uses), then 21 left-hand and 21
  right-hand points (the OpenPose hand order).

Joints with the same meaning have the same name in every layout (``left_wrist``, ``left_hand_wrist``),
so quality scoring, mirroring and the OpenPose mapping work by name (see ``docs/posemap.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

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

# Joint groups of the body, by joint name, used by quality scoring and its warnings. A layout uses
# the names it has (OpenPose has no heels; MediaPipe has no neck).
BODY_GROUP_NAMES: dict[str, tuple[str, ...]] = {
    "face": POSE_33_NAMES[0:11],
    "shoulders": ("left_shoulder", "right_shoulder", "neck"),
    "elbows": ("left_elbow", "right_elbow"),
    "wrists": ("left_wrist", "right_wrist"),
    "hands": ("left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb"),
    "hips": ("left_hip", "right_hip"),
    "knees": ("left_knee", "right_knee"),
    "ankles": ("left_ankle", "right_ankle"),
    "feet": ("left_heel", "right_heel", "left_foot_index", "right_foot_index", "left_big_toe", "right_big_toe",
             "left_small_toe", "right_small_toe"),
}
# The joints that define "the whole body is in frame".
CORE_BODY_NAMES: tuple[str, ...] = (
    "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# The body as OpenPose / ControlNet draws it (COCO-18 order, 1-based in OpenPose's own code).
OPENPOSE_18_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
# The 17 limbs ControlNet's OpenPose annotator draws, in its order (its colours follow this order).
OPENPOSE_18_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
# OpenPose's 70-point face: 68 iBUG/dlib points (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
# mouth 48-67) and the two pupils (68 right, 69 left).
FACE_70 = 70
FACE_70_NAMES: tuple[str, ...] = tuple(f"face70_{i:02d}" for i in range(FACE_70))
# The 68 of them without the pupils, as COCO-WholeBody has them.
FACE_68 = 68
FACE_68_NAMES: tuple[str, ...] = tuple(f"face68_{i:02d}" for i in range(FACE_68))
# Each of the 68 points on the performer's left with its counterpart on the right (points on the
# middle line - chin, nose bridge and tip, lip centres - have none): jaw, brows, nostrils, eyes,
# outer and inner lips. Mirroring and swap repair exchange them like left_/right_ joints.
FACE_68_MIRROR: tuple[tuple[int, int], ...] = (
    tuple((16 - i, i) for i in range(8))
    + tuple((26 - i, 17 + i) for i in range(5))
    + ((35, 31), (34, 32))
    + ((45, 36), (44, 37), (43, 38), (42, 39), (47, 40), (46, 41))
    + ((54, 48), (53, 49), (52, 50), (59, 55), (58, 56), (64, 60), (63, 61), (67, 65))
)
# COCO-WholeBody's 17 body joints and 6 foot points, in its order.
COCO_23_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)
# COCO's limbs (as mmpose draws them) and the feet.
COCO_23_EDGES: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    (15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22),
)
# The face's outline: jaw, brows, nose bridge and nostrils, eyes and lips (closed loops).
FACE_68_EDGES: tuple[tuple[int, int], ...] = tuple(
    (a, a + 1) for lo, hi in ((0, 16), (17, 21), (22, 26), (27, 30), (31, 35), (36, 41), (42, 47), (48, 59), (60, 67))
    for a in range(lo, hi)
) + ((41, 36), (47, 42), (59, 48), (67, 60))


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

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint: str) -> int:
        return self.joint_names.index(joint)

    def find(self, joint: str) -> int | None:
        """Index of ``joint``, or None when this layout lacks it."""
        return self._positions.get(joint)

    def indices(self, joints) -> tuple[int, ...]:
        """Indices of those of ``joints`` this layout has, in the order given."""
        return tuple(self._positions[j] for j in joints if j in self._positions)

    @property
    def _positions(self) -> dict[str, int]:
        cache = self.__dict__.get("_pos")
        if cache is None:
            cache = {n: i for i, n in enumerate(self.joint_names)}
            object.__setattr__(self, "_pos", cache)
        return cache

    @property
    def groups(self) -> dict[str, tuple[int, ...]]:
        """Body joint groups present in this layout (see BODY_GROUP_NAMES)."""
        out = {g: self.indices(names) for g, names in BODY_GROUP_NAMES.items()}
        return {g: idx for g, idx in out.items() if idx}

    @property
    def body(self) -> tuple[int, ...]:
        """The body joints (no hand or face blocks), in layout order."""
        return tuple(sorted(i for idx in self.groups.values() for i in idx))

    @property
    def core(self) -> tuple[int, ...]:
        return self.indices(CORE_BODY_NAMES)

    def block(self, prefix: str) -> tuple[int, ...]:
        """Indices of the joints whose names start with ``prefix`` (``left_hand_``, ``face``)."""
        return tuple(i for i, n in enumerate(self.joint_names) if n.startswith(prefix))


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


def _openpose(hands_face: bool) -> Skeleton:
    names = OPENPOSE_18_NAMES
    edges = OPENPOSE_18_LIMBS
    if hands_face:
        names = (
            names
            + tuple("left_hand_" + n for n in HAND_21_NAMES)
            + tuple("right_hand_" + n for n in HAND_21_NAMES)
            + FACE_70_NAMES
        )
        lh, rh = 18, 18 + 21
        edges = (
            edges
            + tuple((a + lh, b + lh) for a, b in HAND_21_EDGES)
            + tuple((a + rh, b + rh) for a, b in HAND_21_EDGES)
        )
    return Skeleton("openpose_130" if hands_face else "openpose_18", names, edges, _mirror_pairs(names))


def _coco_wholebody() -> Skeleton:
    names = (
        COCO_23_NAMES
        + FACE_68_NAMES
        + tuple("left_hand_" + n for n in HAND_21_NAMES)
        + tuple("right_hand_" + n for n in HAND_21_NAMES)
    )
    face, lh, rh = 23, 23 + FACE_68, 23 + FACE_68 + 21
    edges = (
        COCO_23_EDGES
        + tuple((a + face, b + face) for a, b in FACE_68_EDGES)
        + tuple((a + lh, b + lh) for a, b in HAND_21_EDGES)
        + tuple((a + rh, b + rh) for a, b in HAND_21_EDGES)
    )
    pairs = _mirror_pairs(names) + tuple((a + face, b + face) for a, b in FACE_68_MIRROR)
    return Skeleton("coco_wholebody_133", names, edges, pairs)


MEDIAPIPE_POSE_33 = Skeleton(
    "mediapipe_pose_33", POSE_33_NAMES, POSE_33_EDGES, _mirror_pairs(POSE_33_NAMES)
)
MEDIAPIPE_HOLISTIC_543 = _holistic()
OPENPOSE_18 = _openpose(False)
OPENPOSE_130 = _openpose(True)
COCO_WHOLEBODY_133 = _coco_wholebody()

SKELETONS: dict[str, Skeleton] = {
    s.name: s for s in (MEDIAPIPE_POSE_33, MEDIAPIPE_HOLISTIC_543, OPENPOSE_18, OPENPOSE_130, COCO_WHOLEBODY_133)
}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        from motionlib.core.errors import InputError

        raise InputError(
            f"unknown skeleton layout {name!r} (known: {', '.join(sorted(SKELETONS))})"
        ) from None
