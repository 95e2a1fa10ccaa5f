"""A motion's 3D world landmarks as a BVH skeleton: rest pose, bone lengths, per-frame rotations.

MediaPipe's world landmarks are metres with the origin between the hips, x to the image's right,
y down and z away from the camera. BVH (and Blender's importer, with its default "-Z forward, Y
up") wants Y up, so every point becomes ``(x, -y, -z)``: a half turn about x, no mirroring. The
performer facing the camera then faces +Z, with their left at +X.

The skeleton (``JOINTS``) is the usual one of animation tools, rest pose a T-pose, every joint
carrying ``Zrotation Xrotation Yrotation`` (Blender reads these as its YXZ Euler order) and the
root also ``Xposition Yposition Zposition``::

    Hips ─ LeftUpLeg ─ LeftLeg ─ LeftFoot ─ (toe)          Hips: between the hips
         ─ RightUpLeg ─ RightLeg ─ RightFoot ─ (toe)
         ─ Spine ─ Chest ─ Neck ─ Head ─ (nose)            Spine starts at the hips; Neck, and
                         ─ LeftShoulder ─ LeftArm ─ LeftForeArm ─ LeftHand ─ (knuckles)
                         ─ RightShoulder ─ ...               both shoulders, at their midpoint

Bone lengths are constant: the median over the frames of each landmark-to-landmark distance,
left and right averaged (``symmetric=False``: each side its own). MediaPipe's own bone lengths
wander from frame to frame, so no skeleton with fixed bones can meet every landmark; each frame's
rotations aim every bone from where forward kinematics has put its parent joint at its own
landmark (``_aim``), so that a joint misses its landmark by about its own bone's deviation
rather than by the deviations of every bone between it and the hips added up (as turning each
bone onto its landmarks' direction would). ``target_positions`` is where the joints land.

A bone's direction leaves its twist free; it is chosen so that rotations mean what animators
expect: the pelvis and chest follow the hip and shoulder lines, thighs and upper arms turn so
that knees and elbows bend about their hinge (when they bend at all), feet roll with the heel,
hands with the index-to-pinky line, the head with the ears; the rest swing from their parent.

Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from motionlib.core.errors import InputError

# The MediaPipe axes -> BVH axes (Y up): a half turn about x.
TO_BVH = np.diag([1.0, -1.0, -1.0])

# the points the skeleton is built on, as averages of named landmarks
POINTS: dict[str, tuple[str, ...]] = {
    "mid_hip": ("left_hip", "right_hip"),
    "mid_shoulder": ("left_shoulder", "right_shoulder"),
    "mid_spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
    "mid_ear": ("left_ear", "right_ear"),
    "left_knuckles": ("left_index", "left_pinky"),
    "right_knuckles": ("right_index", "right_pinky"),
}
LANDMARKS: tuple[str, ...] = (
    "nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)


@dataclass(frozen=True)
class Joint:
    name: str
    parent: str | None
    at: str  # the point (landmark or POINTS) this joint sits on
    to: str  # the point its bone points at (its children's, or its End Site's)
    rest: tuple[float, float, float]  # the bone's direction in the rest pose (a unit axis)
    length: str  # the bone's constant length (LENGTHS); an End Site's offset is rest * length
    offset: tuple[tuple[float, float, float], str | None] = ((0.0, 0.0, 0.0), None)  # from the parent
    end: bool = False  # the bone ends in an End Site (no child joint on it)


_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
_NX, _NY = (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)

# In file order (a parent before its children). Spine sits on the hips, Neck and both shoulders
# on the shoulders' midpoint: offsets of zero or equal length keep every landmark reachable
# whatever the angles between the hip line, the spine and the shoulder line.
JOINTS: tuple[Joint, ...] = (
    Joint("Hips", None, "mid_hip", "mid_shoulder", _Y, "spine_half"),  # its rotation: the pelvis (_rotations)
    Joint("LeftUpLeg", "Hips", "left_hip", "left_knee", _NY, "thigh", (_X, "hip")),
    Joint("LeftLeg", "LeftUpLeg", "left_knee", "left_ankle", _NY, "shin", (_NY, "thigh")),
    Joint("LeftFoot", "LeftLeg", "left_ankle", "left_foot_index", _Z, "foot", (_NY, "shin"), end=True),
    Joint("RightUpLeg", "Hips", "right_hip", "right_knee", _NY, "thigh", (_NX, "hip")),
    Joint("RightLeg", "RightUpLeg", "right_knee", "right_ankle", _NY, "shin", (_NY, "thigh")),
    Joint("RightFoot", "RightLeg", "right_ankle", "right_foot_index", _Z, "foot", (_NY, "shin"), end=True),
    Joint("Spine", "Hips", "mid_hip", "mid_spine", _Y, "spine_half"),
    Joint("Chest", "Spine", "mid_spine", "mid_shoulder", _Y, "spine_half", (_Y, "spine_half")),
    Joint("Neck", "Chest", "mid_shoulder", "mid_ear", _Y, "neck", (_Y, "spine_half")),
    Joint("Head", "Neck", "mid_ear", "nose", _Z, "head", (_Y, "neck"), end=True),
    Joint("LeftShoulder", "Chest", "mid_shoulder", "left_shoulder", _X, "clavicle", (_Y, "spine_half")),
    Joint("LeftArm", "LeftShoulder", "left_shoulder", "left_elbow", _X, "upper_arm", (_X, "clavicle")),
    Joint("LeftForeArm", "LeftArm", "left_elbow", "left_wrist", _X, "forearm", (_X, "upper_arm")),
    Joint("LeftHand", "LeftForeArm", "left_wrist", "left_knuckles", _X, "hand", (_X, "forearm"), end=True),
    Joint("RightShoulder", "Chest", "mid_shoulder", "right_shoulder", _NX, "clavicle", (_Y, "spine_half")),
    Joint("RightArm", "RightShoulder", "right_shoulder", "right_elbow", _NX, "upper_arm", (_NX, "clavicle")),
    Joint("RightForeArm", "RightArm", "right_elbow", "right_wrist", _NX, "forearm", (_NX, "upper_arm")),
    Joint("RightHand", "RightForeArm", "right_wrist", "right_knuckles", _NX, "hand", (_NX, "forearm"), end=True),
)
BY_NAME = {j.name: j for j in JOINTS}
CHANNELS_ROOT = "Xposition Yposition Zposition Zrotation Xrotation Yrotation"
CHANNELS = "Zrotation Xrotation Yrotation"

# constant length name -> the landmark pairs whose median distance it is (left and right averaged);
# a number after the pair scales it (half the hip width, half the spine)
LENGTHS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "hip": (("left_hip", "right_hip", 0.5),),
    "thigh": (("left_hip", "left_knee", 1), ("right_hip", "right_knee", 1)),
    "shin": (("left_knee", "left_ankle", 1), ("right_knee", "right_ankle", 1)),
    "foot": (("left_ankle", "left_foot_index", 1), ("right_ankle", "right_foot_index", 1)),
    "spine_half": (("mid_hip", "mid_shoulder", 0.5),),
    "neck": (("mid_shoulder", "mid_ear", 1),),
    "head": (("mid_ear", "nose", 1),),
    "clavicle": (("left_shoulder", "right_shoulder", 0.5),),
    "upper_arm": (("left_shoulder", "left_elbow", 1), ("right_shoulder", "right_elbow", 1)),
    "forearm": (("left_elbow", "left_wrist", 1), ("right_elbow", "right_wrist", 1)),
    "hand": (("left_wrist", "left_knuckles", 1), ("right_wrist", "right_knuckles", 1)),
}

EPS = 1e-9


@dataclass
class BvhMotion:
    """What a BVH file holds, before it is written as text."""

    offsets: dict[str, np.ndarray]  # joint -> [3] rest offset from its parent (metres, BVH axes)
    end_sites: dict[str, np.ndarray]  # joint -> [3] its End Site's offset
    root_position: np.ndarray  # [F, 3]
    rotations: dict[str, np.ndarray]  # joint -> [F, 3] local Euler angles in degrees, (Z, X, Y)
    frame_time: float  # seconds
    lengths: dict[str, float]  # the constant bone lengths (metres)
    points: dict[str, np.ndarray]  # point -> [F, 3] the landmarks the frames were fitted to (BVH axes)
    measured: np.ndarray  # [F] bool: frames that had world landmarks (the others were filled in)
    resampled: bool  # the motion's frames were not evenly spaced: re-sampled at frame_time
    floor: float  # how far below the hips the feet usually are (metres): the root's height
    targets: dict[str, np.ndarray]  # joint (End Site: <joint>_end) -> [F, 3] where the frames put it

    @property
    def frames(self) -> int:
        return int(self.root_position.shape[0])


# --------------------------------------------------------------------------------- small maths
def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, EPS)


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[..., 3, 3]: the orthonormal frame whose first axis is ``a`` and whose second lies in the
    plane of ``a`` and ``b`` (columns)."""
    e1 = _unit(a)
    e2 = _unit(b - np.sum(b * e1, axis=-1, keepdims=True) * e1)
    e3 = np.cross(e1, e2)
    return np.stack([e1, e2, e3], axis=-1)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """[..., 3, 3] rotations by ``angle`` (radians) about unit ``axis`` (Rodrigues)."""
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    c, s = np.cos(angle), np.sin(angle)
    C = 1 - c
    return np.stack([
        np.stack([c + x * x * C, x * y * C - z * s, x * z * C + y * s], axis=-1),
        np.stack([y * x * C + z * s, c + y * y * C, y * z * C - x * s], axis=-1),
        np.stack([z * x * C - y * s, z * y * C + x * s, c + z * z * C], axis=-1),
    ], axis=-2)


def _between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[..., 3, 3]: the smallest rotation taking unit ``a`` onto unit ``b`` (a half turn about
    some perpendicular axis when they are opposite)."""
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    angle = np.arctan2(sin, cos)
    # any axis perpendicular to a, for the opposite case
    other = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    fallback = _unit(np.cross(a, other))
    axis = np.where(sin[..., None] > 1e-12, axis / np.maximum(sin, EPS)[..., None], fallback)
    return _axis_angle(axis, angle)


def _swing(parent: np.ndarray, rest: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The global rotation of a bone that points along ``d`` and otherwise turns as its parent
    does: the parent's rotation, then the smallest turn of the bone onto ``d``."""
    return _between(np.einsum("...ij,j->...i", parent, rest), d) @ parent


def _twisted(swing: np.ndarray, d: np.ndarray, rest_side: np.ndarray, side: np.ndarray,
             weight: np.ndarray) -> np.ndarray:
    """``swing`` turned about the bone ``d`` by ``weight`` of the angle that brings its
    ``rest_side`` axis onto the measured ``side`` (weight 0 where the side is unreliable)."""
    now = np.einsum("...ij,j->...i", swing, rest_side)
    want = _unit(side - np.sum(side * d, axis=-1, keepdims=True) * d)
    angle = np.arctan2(np.sum(d * np.cross(now, want), axis=-1), np.sum(now * want, axis=-1))
    return _axis_angle(d, weight * angle) @ swing


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def euler_zxy(R: np.ndarray) -> np.ndarray:
    """[..., 3] angles (z, x, y) in radians with ``R = Rz(z) @ Rx(x) @ Ry(y)``: what BVH's
    ``Zrotation Xrotation Yrotation`` channels hold."""
    x = np.arcsin(np.clip(R[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-R[..., 0, 1], R[..., 1, 1])
    y = np.arctan2(-R[..., 2, 0], R[..., 2, 2])
    # gimbal lock (x = +-90 degrees): put the whole turn in z
    lock = np.abs(R[..., 2, 1]) > 1 - 1e-9
    if np.any(lock):
        z = np.where(lock, np.arctan2(R[..., 1, 0], R[..., 0, 0]), z)
        y = np.where(lock, 0.0, y)
    return np.stack([z, x, y], axis=-1)


def matrix_zxy(angles: np.ndarray) -> np.ndarray:
    """[..., 3, 3] from (z, x, y) radians: ``Rz @ Rx @ Ry``."""
    z, x, y = angles[..., 0], angles[..., 1], angles[..., 2]
    ez = np.array([0.0, 0, 1])
    ex = np.array([1.0, 0, 0])
    ey = np.array([0.0, 1, 0])
    shape = np.shape(z) + (3,)
    return (_axis_angle(np.broadcast_to(ez, shape), z) @ _axis_angle(np.broadcast_to(ex, shape), x)
            @ _axis_angle(np.broadcast_to(ey, shape), y))


def _continuous(angles: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """[F, 3] (z, x, y) Euler angles of ``rotations`` [F, 3, 3], each frame's set chosen among
    its equivalents (the other solution, whole turns) to lie closest to the previous frame's, so
    that curves do not jump by 360 degrees where the turn itself is small; where the joint
    itself turns by more than 90 degrees from one frame to the next (a glitch of the estimator)
    the curve starts again from the plain solution, so it cannot wander off by whole turns."""
    step = np.swapaxes(rotations[:-1], -1, -2) @ rotations[1:]
    turn = np.degrees(np.arccos(np.clip((np.trace(step, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)))
    rows = angles.tolist()  # plain floats: per frame, numpy's call overhead would cost more than the sums
    tau = 2 * math.pi
    for f in range(1, len(rows)):
        if turn[f - 1] > 90:
            continue
        prev = rows[f - 1]
        z, x, y = rows[f]
        best, best_d = rows[f], math.inf
        for cand in ((z, x, y), (z + math.pi, math.pi - x, y + math.pi)):
            c = [v + tau * round((p - v) / tau) for v, p in zip(cand, prev)]
            d = sum((v - p) ** 2 for v, p in zip(c, prev))
            if d < best_d:
                best, best_d = c, d
        rows[f] = best
    return np.asarray(rows, np.float64).reshape(angles.shape)


# ------------------------------------------------------------------------------------ fitting
def _fill(world: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks with unknown frames filled by straight lines between the known ones (held
    before the first and after the last); and which frames were fully known."""
    out = world.astype(np.float64, copy=True)
    known = np.isfinite(out).all(axis=2)  # [T, J]
    for j in range(out.shape[1]):
        k = known[:, j]
        if k.all() or not k.any():
            continue
        for c in range(3):
            out[:, j, c] = np.interp(times, times[k], out[k, j, c])
    return out, known.all(axis=1)


def _points(world: np.ndarray) -> dict[str, np.ndarray]:
    """[T, 3] per landmark (``world`` holds LANDMARKS in order) and per POINTS, in BVH axes."""
    pts = {name: world[:, i] @ TO_BVH.T for i, name in enumerate(LANDMARKS)}
    for name, parts in POINTS.items():
        pts[name] = sum(pts[p] for p in parts) / len(parts)
    return pts


def _lengths(pts: dict[str, np.ndarray], measured: np.ndarray, symmetric: bool = True) -> dict[str, float]:
    """LENGTHS' medians over the measured frames: left and right averaged (``symmetric``), else
    kept apart as ``left_<name>`` and ``right_<name>``."""
    out = {}
    for key, pairs in LENGTHS.items():
        vals = [scale * float(np.median(np.linalg.norm(pts[a][measured] - pts[b][measured], axis=1)))
                for a, b, scale in pairs]
        if symmetric or len(vals) == 1:
            out[key] = float(np.mean(vals))
        else:
            out[f"left_{key}"], out[f"right_{key}"] = vals
    return out


def length_of(lengths: dict[str, float], key: str, joint: str) -> float:
    """The constant length ``key`` as ``joint`` uses it: its side's own when the lengths keep
    left and right apart."""
    side = "left" if joint.startswith("Left") else "right" if joint.startswith("Right") else None
    return lengths[f"{side}_{key}"] if f"{side}_{key}" in lengths else lengths[key]


def _aim(pts: dict[str, np.ndarray], lengths: dict[str, float]) -> dict[str, np.ndarray]:
    """Where forward kinematics puts every joint (and End Site, ``<joint>_end``), root at the
    hips' midpoint: each bone, with its constant length, aimed from its parent joint's position at
    its own landmark (along the landmarks' own direction where the two coincide). [F, 3] each."""
    out: dict[str, np.ndarray] = {}

    def step(start: np.ndarray, length: float, target: str, fallback: np.ndarray) -> np.ndarray:
        d = pts[target] - start
        far = np.linalg.norm(d, axis=-1, keepdims=True) > 1e-6
        return start + length * np.where(far, _unit(d), _unit(fallback))

    for j in _file_order():
        if j.parent is None:
            out[j.name] = pts[j.at]
        else:
            parent = BY_NAME[j.parent]
            if j.offset[1] is None:
                out[j.name] = out[j.parent]
            else:
                out[j.name] = step(out[j.parent], length_of(lengths, j.offset[1], j.name), j.at,
                                   pts[j.at] - pts[parent.at])
        if j.end:
            out[j.name + "_end"] = step(out[j.name], length_of(lengths, j.length, j.name), j.to,
                                        pts[j.to] - pts[j.at])
    return out


def _resample(world: np.ndarray, times: np.ndarray, single: float) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """The frames at one steady rate: as they are when already evenly spaced (every step within
    1% of the median step), else interpolated at the median step. Returns (frames, their times,
    frame time, whether they were re-sampled); ``single`` is the frame time of a lone frame."""
    if len(times) < 2:
        return world, times, single, False
    step = float(np.median(np.diff(times)))
    if np.all(np.abs(np.diff(times) - step) <= 0.01 * step):
        return world, times, step, False
    grid = times[0] + step * np.arange(int(np.floor((times[-1] - times[0]) / step + 1e-6)) + 1)
    flat = world.reshape(len(times), -1)
    out = np.stack([np.interp(grid, times, flat[:, i]) for i in range(flat.shape[1])], axis=1)
    return out.reshape((len(grid),) + world.shape[1:]), grid, step, True


def fit(motion, *, symmetric: bool = True) -> BvhMotion:
    """The BVH skeleton and frames of ``motion`` from its world landmarks (see the module);
    ``symmetric=False``: left and right bones keep their own lengths."""
    sk = motion.skeleton
    if motion.world is None or not np.isfinite(motion.world).any():
        raise InputError("no 3D world landmarks (imported keypoints and fitted renders have none); "
                         "BVH needs a motion ingested from video by MediaPipe")
    missing = [n for n in LANDMARKS if sk.find(n) is None]
    if missing:
        raise InputError(f"its {sk.name} layout lacks {', '.join(missing[:4])}: BVH needs MediaPipe's body landmarks")
    world = np.asarray(motion.world[:, [sk.index(n) for n in LANDMARKS]], np.float64)
    if not np.isfinite(world).all(axis=(1, 2)).any():
        raise InputError("no frame has every body landmark in 3D; BVH needs at least one")
    times = np.asarray(motion.timestamps, np.float64)
    filled, measured = _fill(world, times)
    lengths = _lengths(_points(filled), measured, symmetric)
    filled, grid, frame_time, resampled = _resample(filled, times, motion.duration if motion.duration > 0 else 1 / 30)
    if resampled:  # a new frame counts as measured when the original frame nearest it was
        right = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)
        nearest = np.where(grid - times[right - 1] <= times[right] - grid, right - 1, right)
        measured = measured[nearest]
    pts = _points(filled)
    aimed = _aim(pts, lengths)
    rot = _rotations(_aimed_points(aimed, pts), pts)
    # the root: where MediaPipe puts the hips (their midpoint, about 0: it does not travel),
    # raised so that the feet are about on the floor (y = 0): by the median over the frames of
    # how far the lowest foot point is below the hips
    feet = np.stack([pts[n][:, 1] for n in ("left_heel", "right_heel", "left_foot_index", "right_foot_index")])
    below = pts["mid_hip"][:, 1] - feet.min(axis=0)
    floor = float(np.median(below[measured]))
    position = pts["mid_hip"] + np.array([0.0, floor, 0.0])
    eulers = {}
    for j in JOINTS:
        local = rot[j.name] if j.parent is None else np.swapaxes(rot[j.parent], -1, -2) @ rot[j.name]
        eulers[j.name] = np.degrees(_continuous(euler_zxy(local), local))
    offsets = {j.name: np.asarray(j.offset[0], float) * (length_of(lengths, j.offset[1], j.name) if j.offset[1] else 0.0)
               for j in JOINTS}
    ends = {j.name: np.asarray(j.rest, float) * length_of(lengths, j.length, j.name) for j in JOINTS if j.end}
    shift = position - pts["mid_hip"]
    targets = {k: v + shift for k, v in aimed.items()}
    return BvhMotion(offsets, ends, position, eulers, frame_time, lengths, pts, measured, resampled, floor, targets)


def _aimed_points(aimed: dict[str, np.ndarray], pts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The points the bones run between: the aimed joint positions on the points they stand for."""
    out = dict(pts)
    for j in JOINTS:
        out[j.at] = aimed[j.name]
        if j.end:
            out[j.to] = aimed[j.name + "_end"]
    return out


def _rotations(p: dict[str, np.ndarray], raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each joint's global rotation [F, 3, 3] (rest pose -> frame): bones along the points ``p``
    (the aimed joints), twists from the landmarks ``raw`` (hip and shoulder lines, heels, hands'
    index-to-pinky line, ears)."""
    X, Y, Z = np.eye(3)
    G: dict[str, np.ndarray] = {}

    def bone(a: str, b: str) -> np.ndarray:
        return _unit(p[b] - p[a])

    spine = bone("mid_hip", "mid_shoulder")
    # pelvis: x along the hip line (right hip -> left), y towards the shoulders
    G["Hips"] = _frame(raw["left_hip"] - raw["right_hip"], spine) @ _frame(X, Y).T
    G["Spine"] = _swing(G["Hips"], Y, bone("mid_hip", "mid_spine"))
    # chest: along the spine, turned with the shoulder line (the torso's twist lives here)
    G["Chest"] = _frame(bone("mid_spine", "mid_shoulder"), raw["left_shoulder"] - raw["right_shoulder"]) @ _frame(Y, X).T
    G["Neck"] = _swing(G["Chest"], Y, bone("mid_shoulder", "mid_ear"))
    G["Head"] = _frame(bone("mid_ear", "nose"), raw["left_ear"] - raw["right_ear"]) @ _frame(Z, X).T
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        s = side.lower()
        # legs: the thigh turns so that the knee bends about its hinge (x at rest, shin going back)
        thigh, shin = bone(f"{s}_hip", f"{s}_knee"), bone(f"{s}_knee", f"{s}_ankle")
        G[f"{side}UpLeg"] = _limb(G["Hips"], -Y, X, thigh, shin)
        G[f"{side}Leg"] = _swing(G[f"{side}UpLeg"], -Y, shin)
        # foot: ankle -> toe, rolled so the heel stays in its plane (lateral axis x at rest)
        foot = bone(f"{s}_ankle", f"{s}_foot_index")
        heel = raw[f"{s}_heel"] - raw[f"{s}_ankle"]
        lateral = np.cross(foot, heel)
        sw = _swing(G[f"{side}Leg"], Z, foot)
        G[f"{side}Foot"] = _twisted(sw, foot, X, lateral, _ramp(np.linalg.norm(lateral, axis=-1), 0.005, 0.02))
        # arms: clavicle from the chest, upper arm turned so the elbow bends about its hinge
        # (forearm going forward at rest), hand rolled with the index-to-pinky line
        out = sign * X
        G[f"{side}Shoulder"] = _swing(G["Chest"], out, bone("mid_shoulder", f"{s}_shoulder"))
        upper, fore = bone(f"{s}_shoulder", f"{s}_elbow"), bone(f"{s}_elbow", f"{s}_wrist")
        G[f"{side}Arm"] = _limb(G[f"{side}Shoulder"], out, np.cross(out, Z), upper, fore)
        G[f"{side}ForeArm"] = _swing(G[f"{side}Arm"], out, fore)
        hand = bone(f"{s}_wrist", f"{s}_knuckles")
        across = raw[f"{s}_index"] - raw[f"{s}_pinky"]
        sw = _swing(G[f"{side}ForeArm"], out, hand)
        size = np.linalg.norm(np.cross(hand, across), axis=-1)
        G[f"{side}Hand"] = _twisted(sw, hand, Z, across, _ramp(size, 0.005, 0.02))
    return G


def _limb(parent: np.ndarray, rest: np.ndarray, rest_hinge: np.ndarray, upper: np.ndarray,
          lower: np.ndarray) -> np.ndarray:
    """The upper bone of a two-bone limb along ``upper``, turned about itself so that its
    ``rest_hinge`` axis lies on the measured hinge (upper x lower) when the limb bends more than
    a little (fully from 25 degrees, not at all under 10); else it swings from ``parent``."""
    hinge = np.cross(upper, lower)
    bend = np.degrees(np.arcsin(np.clip(np.linalg.norm(hinge, axis=-1), 0, 1)))
    bend = np.where(np.sum(upper * lower, axis=-1) < 0, 180 - bend, bend)
    return _twisted(_swing(parent, rest, upper), upper, rest_hinge, hinge, _ramp(bend, 10.0, 25.0))


# ------------------------------------------------------------------------------------ writing
def _children(name: str) -> list[Joint]:
    return [j for j in JOINTS if j.parent == name]


def text(b: BvhMotion) -> str:
    """The BVH file: HIERARCHY (offsets in metres) and MOTION (one line per frame)."""
    lines: list[str] = ["HIERARCHY"]

    def num(v: float) -> str:
        s = f"{v:.6f}"
        return "0.000000" if s == "-0.000000" else s

    def joint(j: Joint, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if j.parent is None else 'JOINT'} {j.name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(num(v) for v in b.offsets[j.name])}")
        ch = CHANNELS_ROOT if j.parent is None else CHANNELS
        lines.append(f"{pad}  CHANNELS {len(ch.split())} {ch}")
        for c in _children(j.name):
            joint(c, depth + 1)
        if j.name in b.end_sites:
            lines.extend([f"{pad}  End Site", f"{pad}  {{",
                          f"{pad}    OFFSET {' '.join(num(v) for v in b.end_sites[j.name])}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(JOINTS[0], 0)
    lines += ["MOTION", f"Frames: {b.frames}", f"Frame Time: {b.frame_time:.8f}"]
    order = [j.name for j in _file_order()]
    cols = [b.root_position] + [b.rotations[n] for n in order]
    table = np.concatenate(cols, axis=1)
    for row in table:
        lines.append(" ".join(num(v) for v in row))
    return "\n".join(lines) + "\n"


def _file_order() -> list[Joint]:
    """Joints in the order the HIERARCHY lists them (depth first), which the MOTION lines follow."""
    out: list[Joint] = []

    def walk(j: Joint) -> None:
        out.append(j)
        for c in _children(j.name):
            walk(c)

    walk(JOINTS[0])
    return out


def target_positions(b: BvhMotion) -> dict[str, np.ndarray]:
    """Where forward kinematics must put each joint (and End Site, as ``<joint>_end``): from the
    root, every bone with its constant length aimed from its parent joint at its own landmark
    (``_aim``). [F, 3] each, BVH axes."""
    return dict(b.targets)
